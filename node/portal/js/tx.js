// The transactions a patient's page builds, signs and shows: GrantConsent, RevokeConsent and
// RotatePatientKey, byte for byte as the ledger encodes, signs and hashes them.
//
// Mirrors `ledger/src/tx.rs` and `ledger/src/codec.rs`:
// - `Transaction` = chain_id (32) || signer (32) || nonce (u64) || body (`TxBody`: a one-byte
//   variant tag, then the variant's fields); `SignedTransaction` = Transaction || signature (64).
// - The signer signs `"cradle.ledger.transaction.v1\0" || chain_id || borsh(Transaction)`.
// - What is submitted, stored and hashed is `codec::encode(SignedTransaction)`: version byte 1,
//   then Borsh; the transaction hash is SHA-256 of those bytes.
// - A grant's id is SHA-256("cradle.grant-id.v1\0" || patient || nonce as u64 LE), where the
//   patient is the key she enrolled with (after a key rotation, not the key that signs).
//
// In JavaScript a transaction is `{chainId, signer, nonce, body}` (bytes as Uint8Array, u64s
// as BigInt) and a body one of
//   {kind: 'grant_consent', grantee, scope, purposes, roles, validFromMs, expiresAtMs, archiveKeys}
//     scope: {kind: 'all'} | {kind: 'categories', categories: [code]} | {kind: 'archives', archives: [id]}
//     purposes: HL7 codes ('TREAT', ...); roles: staff role codes ('midwife', ...)
//     archiveKeys: [{archive, key: {ephemeral, sealed}}] (see keywrap.js)
//   {kind: 'revoke_consent', grant}
//   {kind: 'rotate_patient_key', newKey, newX25519, proof} (see keys.js, proveKeys)
//   {kind: 'review_access', entry, decision} (a regulator's page: entry is the hash of the
//     break-glass access's transaction, decision 'justified' or 'not_justified')
// The decoder reads these four kinds and refuses the others with `UnsupportedKindError`.

import { BorshWriter, concatBytes, decodeCanonical, equalBytes, fromHex, requireBytes, sha256, toHex, utf8 } from './bytes.js';
import { CATEGORY, PURPOSE, REVIEW_DECISION, STAFF_ROLE } from './audit.js';
import { readWrappedKey, wrappedKeyFromHex, wrappedKeyToHex, writeWrappedKey } from './keywrap.js';
import { signEd25519, verifyEd25519, verifyKeyProof } from './keys.js';

/** The signing tag of a transaction (`TAG_TRANSACTION`). */
export const TAG_TRANSACTION = utf8('cradle.ledger.transaction.v1\0');
const TAG_GRANT_ID = utf8('cradle.grant-id.v1\0');

/** No transaction may exceed this (`codec::TX_BYTES_HARD_MAX`); genesis may set less. */
export const TX_BYTES_HARD_MAX = 1024 * 1024;
/** Most purposes, roles or categories one grant names (`GRANT_CODES_MAX`). */
export const GRANT_CODES_MAX = 16;
/** Most archive ids one grant's scope lists (`SCOPE_ARCHIVES_MAX`). */
export const SCOPE_ARCHIVES_MAX = 256;
/** Most archive keys one grant carries (`ARCHIVE_KEYS_MAX`). */
export const ARCHIVE_KEYS_MAX = 1024;

/** `TxBody` variants by Borsh tag (a derived enum: tags in declaration order). */
export const TX_KINDS = Object.freeze([
  'enrol_patient', 'register_archive', 'grant_consent', 'revoke_consent', 'record_access',
  'register_staff', 'set_staff_status', 'rotate_staff_key', 'propose_change', 'approve_change',
  'rotate_patient_key', 'recover_patient', 'rewrap_for_patient', 'review_access',
]);
/** `Scope` variants by Borsh tag. */
export const SCOPE_KINDS = Object.freeze(['all', 'categories', 'archives']);

/** A transaction of a kind this module does not read (it is still a valid ledger encoding). */
export class UnsupportedKindError extends Error {
  constructor(kind) {
    super(`transaction kind ${kind} is not one the portal reads`);
    this.name = 'UnsupportedKindError';
    this.kind = kind;
  }
}

function codeOf(table, name, what) {
  const entry = Object.entries(table).find(([, n]) => n === name);
  if (!entry) throw new Error(`${what}: unknown code ${name}`);
  return Number(entry[0]);
}

function readCode(r, table, what) {
  const v = r.u8(what);
  if (!Object.prototype.hasOwnProperty.call(table, v)) r.fail(`${what}: unknown code ${v}`);
  return table[v];
}

function writeScope(w, s) {
  const tag = SCOPE_KINDS.indexOf(s?.kind);
  if (tag < 0) throw new Error(`scope: unknown kind ${s?.kind}`);
  w.u8(tag);
  if (s.kind === 'categories') {
    w.vec(s.categories, GRANT_CODES_MAX, (ww, c) => ww.u8(codeOf(CATEGORY, c, 'category')), 'categories');
  } else if (s.kind === 'archives') {
    w.vec(s.archives, SCOPE_ARCHIVES_MAX, (ww, a) => ww.fixed(a, 32, 'scope archive'), 'scope archives');
  }
}

function readScope(r) {
  return r.enumOf({
    0: () => ({ kind: 'all' }),
    1: (rr) => ({ kind: 'categories', categories: rr.vec(GRANT_CODES_MAX, (x) => readCode(x, CATEGORY, 'category'), 'categories') }),
    2: (rr) => ({ kind: 'archives', archives: rr.vec(SCOPE_ARCHIVES_MAX, (x) => x.fixed(32, 'scope archive'), 'scope archives') }),
  }, 'scope');
}

const BODY_WRITERS = {
  grant_consent(w, b) {
    w.fixed(b.grantee, 32, 'grantee');
    writeScope(w, b.scope);
    w.vec(b.purposes, GRANT_CODES_MAX, (ww, p) => ww.u8(codeOf(PURPOSE, p, 'purpose')), 'purposes');
    w.vec(b.roles, GRANT_CODES_MAX, (ww, p) => ww.u8(codeOf(STAFF_ROLE, p, 'role')), 'roles');
    w.u64(b.validFromMs, 'valid_from_ms').u64(b.expiresAtMs, 'expires_at_ms');
    w.vec(b.archiveKeys, ARCHIVE_KEYS_MAX, (ww, k) => writeWrappedKey(ww.fixed(k.archive, 32, 'archive'), k.key), 'archive keys');
  },
  revoke_consent(w, b) {
    w.fixed(b.grant, 32, 'grant');
  },
  rotate_patient_key(w, b) {
    w.fixed(b.newKey, 32, 'new key').fixed(b.newX25519, 32, 'new x25519 key').fixed(b.proof, 64, 'key proof');
  },
  review_access(w, b) {
    w.fixed(b.entry, 32, 'entry').u8(codeOf(REVIEW_DECISION, b.decision, 'decision'));
  },
};

const BODY_READERS = {
  grant_consent: (r) => ({
    kind: 'grant_consent',
    grantee: r.fixed(32, 'grantee'),
    scope: readScope(r),
    purposes: r.vec(GRANT_CODES_MAX, (x) => readCode(x, PURPOSE, 'purpose'), 'purposes'),
    roles: r.vec(GRANT_CODES_MAX, (x) => readCode(x, STAFF_ROLE, 'role'), 'roles'),
    validFromMs: r.u64('valid_from_ms'),
    expiresAtMs: r.u64('expires_at_ms'),
    archiveKeys: r.vec(ARCHIVE_KEYS_MAX, (x) => ({ archive: x.fixed(32, 'archive'), key: readWrappedKey(x) }), 'archive keys'),
  }),
  revoke_consent: (r) => ({ kind: 'revoke_consent', grant: r.fixed(32, 'grant') }),
  rotate_patient_key: (r) => ({
    kind: 'rotate_patient_key', newKey: r.fixed(32, 'new key'), newX25519: r.fixed(32, 'new x25519 key'), proof: r.fixed(64, 'key proof'),
  }),
  review_access: (r) => ({ kind: 'review_access', entry: r.fixed(32, 'entry'), decision: readCode(r, REVIEW_DECISION, 'decision') }),
};

/** Writes a `TxBody` of one of the kinds the portal builds. */
export function writeTxBody(w, body) {
  const write = Object.prototype.hasOwnProperty.call(BODY_WRITERS, body?.kind) ? BODY_WRITERS[body.kind] : null;
  if (!write) throw new UnsupportedKindError(body?.kind);
  w.u8(TX_KINDS.indexOf(body.kind));
  write(w, body);
  return w;
}

/** Reads a `TxBody`; a known kind this module does not read throws `UnsupportedKindError`. */
export function readTxBody(r) {
  const tag = r.u8('transaction kind');
  const kind = TX_KINDS[tag];
  if (kind === undefined) r.fail(`transaction kind: unknown variant tag ${tag}`);
  if (!Object.prototype.hasOwnProperty.call(BODY_READERS, kind)) throw new UnsupportedKindError(kind);
  return BODY_READERS[kind](r);
}

/** Writes a `Transaction`. */
export function writeTransaction(w, tx) {
  w.fixed(tx.chainId, 32, 'chain id').fixed(tx.signer, 32, 'signer').u64(tx.nonce, 'nonce');
  return writeTxBody(w, tx.body);
}

/** Reads a `Transaction`. */
export function readTransaction(r) {
  return { chainId: r.fixed(32, 'chain id'), signer: r.fixed(32, 'signer'), nonce: r.u64('nonce'), body: readTxBody(r) };
}

/** `borsh(Transaction)`. */
export function encodeTransaction(tx) {
  return writeTransaction(new BorshWriter(), tx).toBytes();
}

/** What the signer signs: `TAG_TRANSACTION || chain_id || borsh(Transaction)`. */
export function transactionSigningBytes(tx) {
  return concatBytes(TAG_TRANSACTION, requireBytes(tx.chainId, 'chain id', 32), encodeTransaction(tx));
}

/** The canonical bytes of `{tx, signature}` (`SignedTransaction::encode`): submitted and hashed. */
export function encodeSignedTransaction(signed) {
  return writeTransaction(new BorshWriter(), signed.tx).fixed(signed.signature, 64, 'signature').toCanonical();
}

/**
 * Decodes `SignedTransaction::encode` bytes into `{tx, signature}`, refusing more than `maxLen`
 * bytes, another version, any length over its bound, unknown tags or codes, and trailing bytes.
 * Checks no signature: see `transactionVerdict`.
 */
export function decodeSignedTransaction(bytes, maxLen = TX_BYTES_HARD_MAX) {
  return decodeCanonical(bytes, maxLen, (r) => ({ tx: readTransaction(r), signature: r.fixed(64, 'signature') }), 'transaction');
}

/** The transaction hash: SHA-256 of the canonical bytes. */
export function transactionHash(encoded) {
  return sha256(requireBytes(encoded, 'encoded transaction'));
}

/**
 * Signs `{chainId, nonce, body}` with `signer` = `{publicKey, privateKey}` (an Ed25519
 * CryptoKey, extractable or not), who becomes the transaction's signer. Returns
 * `{tx, signature, encoded, hash}`: `encoded` is what to submit.
 */
export async function signTransaction({ chainId, nonce, body }, signer) {
  const tx = { chainId, signer: requireBytes(signer.publicKey, 'signer key', 32), nonce: BigInt(nonce), body };
  const signature = await signEd25519(signer.privateKey, transactionSigningBytes(tx));
  const encoded = encodeSignedTransaction({ tx, signature });
  return { tx, signature, encoded, hash: await transactionHash(encoded) };
}

/**
 * What the ledger would conclude of `encoded` on `chainId` (`SignedTransaction::decode` then
 * `verify`): `{ok: true, tx, signature, hash}`, or `{ok: false, code, reason}` with code
 * `malformed`, `unsupported-kind`, `wrong-chain`, `bad-signature` or `bad-key-proof`.
 */
export async function transactionVerdict(encoded, chainId, { maxLen = TX_BYTES_HARD_MAX } = {}) {
  let signed;
  try {
    signed = decodeSignedTransaction(encoded, maxLen);
  } catch (e) {
    return { ok: false, code: e instanceof UnsupportedKindError ? 'unsupported-kind' : 'malformed', reason: e.message };
  }
  const { tx, signature } = signed;
  if (!equalBytes(tx.chainId, requireBytes(chainId, 'chain id', 32))) {
    return { ok: false, code: 'wrong-chain', reason: 'signed for another chain' };
  }
  if (!(await verifyEd25519(tx.signer, transactionSigningBytes(tx), signature))) {
    return { ok: false, code: 'bad-signature', reason: 'the signature is not the signer\'s' };
  }
  if (tx.body.kind === 'rotate_patient_key' && !(await verifyKeyProof(tx.body.newKey, tx.body.newX25519, tx.body.proof, chainId))) {
    return { ok: false, code: 'bad-key-proof', reason: 'the new key did not prove the new keys' };
  }
  return { ok: true, tx, signature, hash: await transactionHash(encoded) };
}

/** `grant_id(patient, nonce)`: the id of the grant her transaction of `nonce` makes. */
export function grantId(patient, nonce) {
  const n = new BorshWriter().u64(nonce, 'nonce').toBytes();
  return sha256(concatBytes(TAG_GRANT_ID, requireBytes(patient, 'patient key', 32), n));
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * The nonce to sign with, as the Rust client takes it: the clock in microseconds, or one more
 * than the last nonce the ledger holds for the key (`lastNonce`, null for none) if that is
 * larger. Throws when the key's nonces are exhausted.
 */
export function nextNonce(lastNonce, nowMs = Date.now()) {
  const now = BigInt(nowMs) * 1000n;
  if (lastNonce === null || lastNonce === undefined) return now;
  const last = BigInt(lastNonce);
  if (last >= U64_MAX) throw new Error('this key\'s nonce is exhausted on the ledger: it can sign nothing more');
  return now > last ? now : last + 1n;
}

/**
 * The JSON form of a transaction, to show her what she signs and to carry in test vectors:
 * snake_case fields, bytes in hex, u64s as decimal strings, wrapped keys as 80 bytes of hex.
 */
export function transactionToJson(tx) {
  return { chain_id: toHex(tx.chainId), signer: toHex(tx.signer), nonce: tx.nonce.toString(), body: bodyToJson(tx.body) };
}

/** The JSON form of a body (see `transactionToJson`). */
export function bodyToJson(b) {
  switch (b.kind) {
    case 'grant_consent': {
      const scope = { kind: b.scope.kind };
      if (b.scope.kind === 'categories') scope.categories = [...b.scope.categories];
      if (b.scope.kind === 'archives') scope.archives = b.scope.archives.map(toHex);
      return {
        kind: b.kind, grantee: toHex(b.grantee), scope, purposes: [...b.purposes], roles: [...b.roles],
        valid_from_ms: b.validFromMs.toString(), expires_at_ms: b.expiresAtMs.toString(),
        archive_keys: b.archiveKeys.map((k) => ({ archive: toHex(k.archive), key: wrappedKeyToHex(k.key) })),
      };
    }
    case 'revoke_consent':
      return { kind: b.kind, grant: toHex(b.grant) };
    case 'rotate_patient_key':
      return { kind: b.kind, new_key: toHex(b.newKey), new_x25519: toHex(b.newX25519), proof: toHex(b.proof) };
    case 'review_access':
      return { kind: b.kind, entry: toHex(b.entry), decision: b.decision };
    default:
      throw new UnsupportedKindError(b.kind);
  }
}

/** A body from its JSON form (see `transactionToJson`); fields it does not know are ignored. */
export function bodyFromJson(j) {
  switch (j.kind) {
    case 'grant_consent': {
      const s = j.scope;
      const scope = s.kind === 'categories' ? { kind: s.kind, categories: [...s.categories] }
        : s.kind === 'archives' ? { kind: s.kind, archives: s.archives.map((a) => fromHex(a, 32, 'scope archive')) }
          : { kind: s.kind };
      return {
        kind: j.kind, grantee: fromHex(j.grantee, 32, 'grantee'), scope, purposes: [...j.purposes], roles: [...j.roles],
        validFromMs: BigInt(j.valid_from_ms), expiresAtMs: BigInt(j.expires_at_ms),
        archiveKeys: j.archive_keys.map((k) => ({ archive: fromHex(k.archive, 32, 'archive'), key: wrappedKeyFromHex(k.key) })),
      };
    }
    case 'revoke_consent':
      return { kind: j.kind, grant: fromHex(j.grant, 32, 'grant') };
    case 'rotate_patient_key':
      return { kind: j.kind, newKey: fromHex(j.new_key, 32, 'new key'), newX25519: fromHex(j.new_x25519, 32, 'new x25519 key'), proof: fromHex(j.proof, 64, 'key proof') };
    case 'review_access':
      return { kind: j.kind, entry: fromHex(j.entry, 32, 'entry'), decision: j.decision };
    default:
      throw new UnsupportedKindError(j.kind);
  }
}
