// Break-glass justifications opened in the page: the access record a verified log names,
// checked to be that very record, and the clinician's sealed words opened with a reader's key.
//
// Mirrors `ledger/src/justification.rs` and `client/src/session/justification.rs`:
// - A justification is bound to its request's context: SHA-256 of
//   "cradle.justification.context.v1\0" || chain id || accessor || archive || purpose (u8) ||
//   requested_at_ms (u64 LE) || request id (16) (`AccessRequest::justification_context`).
// - Its key is wrapped for each reader as an archive key is (keywrap.js: ephemeral X25519,
//   HKDF-SHA256 with salt ephemeral || reader and info tag || context || reader, AES-256-GCM
//   with a zero nonce and associated data context || reader), under the HKDF tag
//   "cradle.justification.keywrap.v1\0", with the context in the archive id's place.
// - The ciphertext is AES-256-GCM of salt (16) || text under that key, zero nonce, the context
//   as associated data, the tag at the end; the commitment SHA-256("cradle.justification.
//   commit.v1\0" || salt || text) is checked after opening, as every Rust reader does.
// - The record comes from `GET /v1/txs/{hash}` as JSON (serde's form of `SignedTransaction`):
//   the page encodes it to the ledger's canonical bytes, and takes it only when SHA-256 of those
//   bytes is the transaction hash the verified event names, and SHA-256 of the embedded signed
//   request's canonical bytes is the event's request hash. A node cannot show other words
//   than the clinician's without breaking one of the two.
//
// Every failure is a `JustificationError` with a `code`: `malformed` (no access record could be
// read from the answer), `not-the-logged-record`, `not-the-logged-request`, `none` (the request
// carries no justification), `not-a-reader` (sealed for others) or `unreadable` (it does not
// open, or its commitment does not match: one code, whichever check failed).

import {
  BorshReader, BorshWriter, concatBytes, decodeCanonical, equalBytes, fromHex, requireBytes, sha256, toHex, utf8,
} from './bytes.js';
import { DENIAL_REASON, PURPOSE } from './audit.js';
import { readWrappedKey, sharedSecret, wrappedKeyFromHex, writeWrappedKey } from './keywrap.js';
import { TX_BYTES_HARD_MAX, TX_KINDS } from './tx.js';

export const TAG_JUSTIFICATION_CONTEXT = utf8('cradle.justification.context.v1\0');
export const TAG_JUSTIFICATION_COMMIT = utf8('cradle.justification.commit.v1\0');
export const TAG_JUSTIFICATION_WRAP = utf8('cradle.justification.keywrap.v1\0');
/** Longest justification text, in bytes (`JUSTIFICATION_BYTES_MAX`). */
export const JUSTIFICATION_BYTES_MAX = 512;
/** Most readers one justification is sealed for (`JUSTIFICATION_READERS_MAX`). */
export const JUSTIFICATION_READERS_MAX = 16;
const SALT_BYTES = 16;
const GCM_TAG_BYTES = 16;
const SEALED_BYTES_MAX = SALT_BYTES + JUSTIFICATION_BYTES_MAX + GCM_TAG_BYTES;
const SEALED_BYTES_MIN = SALT_BYTES + 1 + GCM_TAG_BYTES;
/** Largest encoded signed access request (`ACCESS_REQUEST_BYTES_MAX`). */
export const ACCESS_REQUEST_BYTES_MAX = 4096;
/** Largest `GET /v1/txs/{hash}` answer the page reads for an access record. */
export const ACCESS_RECORD_ANSWER_BYTES_MAX = 64 * 1024;
/** `AccessOutcome` variants by Borsh tag. */
const ACCESS_OUTCOMES = Object.freeze(['permitted', 'denied', 'break_glass']);
const RECORD_ACCESS_TAG = TX_KINDS.indexOf('record_access');
const ZERO_NONCE = new Uint8Array(12);

const subtle = () => globalThis.crypto.subtle;

/** Why a justification is not shown: `code` as listed above, `message` the detail. */
export class JustificationError extends Error {
  constructor(code, detail) {
    super(detail);
    this.name = 'JustificationError';
    this.code = code;
  }
}

const malformed = (detail) => new JustificationError('malformed', detail);

function codeOf(table, name, what) {
  const entry = Object.entries(table).find(([, n]) => n === name);
  if (!entry) throw malformed(`${what}: unknown code ${String(name).slice(0, 40)}`);
  return Number(entry[0]);
}

function readCode(r, table, what) {
  const v = r.u8(what);
  if (!Object.prototype.hasOwnProperty.call(table, v)) r.fail(`${what}: unknown code ${v}`);
  return table[v];
}

// ---- The request context ----

/**
 * `AccessRequest::justification_context`: the 32-byte context of a request
 * `{accessor, archive, purpose, requestedAtMs, requestId}` on chain `chainId`.
 */
export function justificationContext(chainId, req) {
  return sha256(concatBytes(
    TAG_JUSTIFICATION_CONTEXT,
    requireBytes(chainId, 'chain id', 32),
    requireBytes(req.accessor, 'accessor', 32),
    requireBytes(req.archive, 'archive', 32),
    Uint8Array.of(codeOf(PURPOSE, req.purpose, 'purpose')),
    new BorshWriter().u64(req.requestedAtMs, 'requested_at_ms').toBytes(),
    requireBytes(req.requestId, 'request id', 16),
  ));
}

// ---- SealedJustification, AccessRequest, RecordAccess in Borsh ----

/** Reads a `SealedJustification`: `{commitment, ciphertext, wraps: [{reader, key}]}`. */
export function readSealed(r) {
  return {
    commitment: r.fixed(32, 'commitment'),
    ciphertext: r.byteVec(SEALED_BYTES_MAX, 'sealed justification'),
    wraps: r.vec(JUSTIFICATION_READERS_MAX, (x) => ({ reader: x.fixed(32, 'reader'), key: readWrappedKey(x) }), 'wraps'),
  };
}

export function writeSealed(w, s) {
  w.fixed(s.commitment, 32, 'commitment').byteVec(s.ciphertext, SEALED_BYTES_MAX, 'sealed justification');
  return w.vec(s.wraps, JUSTIFICATION_READERS_MAX, (ww, x) => writeWrappedKey(ww.fixed(x.reader, 32, 'reader'), x.key), 'wraps');
}

function readAccessRequest(r) {
  return {
    accessor: r.fixed(32, 'accessor'),
    archive: r.fixed(32, 'archive'),
    purpose: readCode(r, PURPOSE, 'purpose'),
    justification: r.option(readSealed, 'justification'),
    requestedAtMs: r.u64('requested_at_ms'),
    requestId: r.fixed(16, 'request id'),
  };
}

function writeAccessRequest(w, q) {
  w.fixed(q.accessor, 32, 'accessor').fixed(q.archive, 32, 'archive').u8(codeOf(PURPOSE, q.purpose, 'purpose'));
  w.option(q.justification, writeSealed);
  return w.u64(q.requestedAtMs, 'requested_at_ms').fixed(q.requestId, 16, 'request id');
}

function writeSignedRequest(w, s) {
  return writeAccessRequest(w, s.request).fixed(s.signature, 64, 'request signature');
}

/** `codec::encode(SignedAccessRequest)`: what the event's request hash is the SHA-256 of. */
export function encodeSignedAccessRequest(signedRequest) {
  return writeSignedRequest(new BorshWriter(), signedRequest).toCanonical();
}

function readOutcome(r) {
  return r.enumOf({
    0: (x) => ({ outcome: 'permitted', keyForAccessor: x.option(readWrappedKey, 'key for accessor') }),
    1: (x) => ({ outcome: 'denied', reason: readCode(x, DENIAL_REASON, 'denial reason') }),
    2: (x) => ({ outcome: 'break_glass', keyForAccessor: readWrappedKey(x) }),
  }, 'access outcome');
}

function writeOutcome(w, o) {
  const tag = ACCESS_OUTCOMES.indexOf(o.outcome);
  if (tag < 0) throw malformed(`unknown access outcome ${String(o.outcome).slice(0, 40)}`);
  w.u8(tag);
  if (o.outcome === 'permitted') w.option(o.keyForAccessor, writeWrappedKey);
  else if (o.outcome === 'denied') w.u8(codeOf(DENIAL_REASON, o.reason, 'denial reason'));
  else writeWrappedKey(w, o.keyForAccessor);
}

/**
 * A `SignedTransaction` whose body is a `RecordAccess`:
 * `{tx: {chainId, signer, nonce, body: {kind: 'record_access', request: {request, signature},
 * grant, outcome}}, signature}`.
 */
function writeRecordAccessTx(w, signed) {
  const { tx } = signed;
  if (tx.body?.kind !== 'record_access') throw malformed('not an access record');
  w.fixed(tx.chainId, 32, 'chain id').fixed(tx.signer, 32, 'signer').u64(tx.nonce, 'nonce').u8(RECORD_ACCESS_TAG);
  writeSignedRequest(w, tx.body.request);
  w.option(tx.body.grant, (ww, g) => ww.fixed(g, 32, 'grant'));
  writeOutcome(w, tx.body.outcome);
  return w.fixed(signed.signature, 64, 'signature');
}

/** The canonical bytes of an access record's transaction (`SignedTransaction::encode`). */
export function encodeAccessRecordTx(signed) {
  return writeRecordAccessTx(new BorshWriter(), signed).toCanonical();
}

/** Decodes the canonical bytes of a transaction that must be an access record. */
export function decodeAccessRecordTx(bytes, maxLen = TX_BYTES_HARD_MAX) {
  return decodeCanonical(bytes, maxLen, (r) => {
    const tx = { chainId: r.fixed(32, 'chain id'), signer: r.fixed(32, 'signer'), nonce: r.u64('nonce') };
    const tag = r.u8('transaction kind');
    if (tag !== RECORD_ACCESS_TAG) r.fail(`transaction kind ${TX_KINDS[tag] ?? tag} is not an access record`);
    tx.body = {
      kind: 'record_access',
      request: { request: readAccessRequest(r), signature: r.fixed(64, 'request signature') },
      grant: r.option((x) => x.fixed(32, 'grant'), 'grant'),
      outcome: readOutcome(r),
    };
    return { tx, signature: r.fixed(64, 'signature') };
  }, 'access record');
}

// ---- The same, from the node's JSON ----

function object(v, keys, what) {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(`${what}: not an object`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw malformed(`${what}: unknown field ${k.slice(0, 40)}`);
  return v;
}

function hex(v, len, what) {
  try {
    return fromHex(v, len, what);
  } catch (e) {
    throw malformed(e.message);
  }
}

/** A byte array serde writes as a JSON array of numbers (`[u8; N]`). */
function byteArray(v, len, what) {
  if (!Array.isArray(v) || v.length !== len || !v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw malformed(`${what}: expected ${len} bytes`);
  }
  return Uint8Array.from(v);
}

function u64(v, what) {
  if (typeof v === 'bigint' && v >= 0n && v < (1n << 64n)) return v;
  if (!Number.isSafeInteger(v) || v < 0) throw malformed(`${what}: not a u64 read exactly`);
  return BigInt(v);
}

function wrappedKey(v, what) {
  try {
    return wrappedKeyFromHex(v);
  } catch {
    throw malformed(`${what}: not a wrapped key`);
  }
}

function code(table, v, what) {
  if (typeof v !== 'string' || !Object.values(table).includes(v)) throw malformed(`${what}: unknown code`);
  return v;
}

/** A `SealedJustification` from its JSON form (hex fields, as serde writes it). */
export function sealedFromJson(j) {
  object(j, ['commitment', 'ciphertext', 'wraps'], 'justification');
  if (typeof j.ciphertext !== 'string' || j.ciphertext.length > 2 * SEALED_BYTES_MAX) throw malformed('justification: ciphertext too long');
  if (!Array.isArray(j.wraps) || j.wraps.length > JUSTIFICATION_READERS_MAX) throw malformed('justification: too many wraps');
  return {
    commitment: hex(j.commitment, 32, 'commitment'),
    ciphertext: hex(j.ciphertext, undefined, 'ciphertext'),
    wraps: j.wraps.map((w) => {
      object(w, ['reader', 'key'], 'wrap');
      return { reader: hex(w.reader, 32, 'reader'), key: wrappedKey(w.key, 'wrap') };
    }),
  };
}

function requestFromJson(j) {
  object(j, ['accessor', 'archive', 'purpose', 'justification', 'requested_at_ms', 'request_id'], 'request');
  return {
    accessor: hex(j.accessor, 32, 'accessor'),
    archive: hex(j.archive, 32, 'archive'),
    purpose: code(PURPOSE, j.purpose, 'purpose'),
    justification: j.justification === null || j.justification === undefined ? null : sealedFromJson(j.justification),
    requestedAtMs: u64(j.requested_at_ms, 'requested_at_ms'),
    requestId: byteArray(j.request_id, 16, 'request id'),
  };
}

function outcomeFromJson(j) {
  object(j, ['outcome', 'key_for_accessor', 'reason'], 'outcome');
  switch (j.outcome) {
    case 'permitted':
      object(j, ['outcome', 'key_for_accessor'], 'outcome');
      return { outcome: 'permitted', keyForAccessor: j.key_for_accessor == null ? null : wrappedKey(j.key_for_accessor, 'key for accessor') };
    case 'denied':
      object(j, ['outcome', 'reason'], 'outcome');
      return { outcome: 'denied', reason: code(DENIAL_REASON, j.reason, 'denial reason') };
    case 'break_glass':
      object(j, ['outcome', 'key_for_accessor'], 'outcome');
      return { outcome: 'break_glass', keyForAccessor: wrappedKey(j.key_for_accessor, 'key for accessor') };
    default:
      throw malformed('unknown access outcome');
  }
}

/** An access record's `SignedTransaction` from serde's JSON form, as `GET /v1/txs/{hash}` carries it. */
export function accessRecordTxFromJson(j) {
  object(j, ['tx', 'signature'], 'transaction');
  const t = object(j.tx, ['chain_id', 'signer', 'nonce', 'body'], 'transaction');
  const b = object(t.body, ['kind', 'request', 'grant', 'outcome'], 'body');
  if (b.kind !== 'record_access') throw malformed('not an access record');
  const sr = object(b.request, ['request', 'signature'], 'signed request');
  return {
    tx: {
      chainId: byteArray(t.chain_id, 32, 'chain id'),
      signer: hex(t.signer, 32, 'signer'),
      nonce: u64(t.nonce, 'nonce'),
      body: {
        kind: 'record_access',
        request: { request: requestFromJson(sr.request), signature: hex(sr.signature, 64, 'request signature') },
        grant: b.grant === null || b.grant === undefined ? null : hex(b.grant, 32, 'grant'),
        outcome: outcomeFromJson(b.outcome),
      },
    },
    signature: hex(j.signature, 64, 'signature'),
  };
}

/**
 * Parses the bytes of a `GET /v1/txs/{hash}` answer. Integers above 2^53 are read exactly where
 * the browser gives a reviver their source text (Chromium does), else refused later as inexact.
 */
export function parseTxAnswer(bytes) {
  requireBytes(bytes, 'answer');
  if (bytes.length > ACCESS_RECORD_ANSWER_BYTES_MAX) throw malformed('the answer is too large');
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes), (k, v, context) => (
      typeof v === 'number' && !Number.isSafeInteger(v) && typeof context?.source === 'string' && /^\d+$/.test(context.source)
        ? BigInt(context.source) : v));
  } catch {
    throw malformed('the answer is not JSON');
  }
}

/**
 * The access record a verified `event` (audit.js: `txHash`, `requestHash`) names, from the
 * node's answer `answer` (parsed JSON): `{signed, request}`, the transaction and its access
 * request, only when the transaction hashes to `event.txHash` and its signed request to
 * `event.requestHash`. Throws a JustificationError otherwise.
 */
export async function checkAccessRecord(answer, event) {
  // The envelope (hash, height, index, kind) is the node's word: only the transaction counts.
  if (typeof answer !== 'object' || answer === null || !('tx' in answer)) throw malformed('the answer holds no transaction');
  let signed;
  let encoded;
  try {
    signed = accessRecordTxFromJson(answer.tx);
    encoded = encodeAccessRecordTx(signed);
  } catch (e) {
    // A transaction that is not an access record cannot be the one a break-glass event names.
    if (e instanceof JustificationError && e.message === 'not an access record') {
      throw new JustificationError('not-the-logged-record', 'the transaction is not an access record');
    }
    throw e instanceof JustificationError ? e : malformed(e.message);
  }
  if (!equalBytes(await sha256(encoded), requireBytes(event.txHash, 'event tx hash', 32))) {
    throw new JustificationError('not-the-logged-record', `the node's transaction is not ${toHex(event.txHash)}, which the log names`);
  }
  const requestBytes = encodeSignedAccessRequest(signed.tx.body.request);
  if (requestBytes.length > ACCESS_REQUEST_BYTES_MAX
    || !equalBytes(await sha256(requestBytes), requireBytes(event.requestHash, 'event request hash', 32))) {
    throw new JustificationError('not-the-logged-request', 'the access request in it is not the one the log names');
  }
  return { signed, request: signed.tx.body.request.request };
}

// ---- Opening ----

/** `unwrap_key_in(TAG_JUSTIFICATION_WRAP, ...)`: the justification's key, or null. */
async function unwrapJustificationKey(wrapped, context, me) {
  const shared = await sharedSecret(me.privateKey, wrapped.ephemeral);
  if (!shared) return null;
  try {
    const ikm = await subtle().importKey('raw', shared, 'HKDF', false, ['deriveBits']);
    const okm = new Uint8Array(await subtle().deriveBits({
      name: 'HKDF', hash: 'SHA-256', salt: concatBytes(wrapped.ephemeral, me.publicKey), info: concatBytes(TAG_JUSTIFICATION_WRAP, context, me.publicKey),
    }, ikm, 256));
    try {
      const cipher = await subtle().importKey('raw', okm, { name: 'AES-GCM' }, false, ['decrypt']);
      const key = new Uint8Array(await subtle().decrypt(
        { name: 'AES-GCM', iv: ZERO_NONCE, additionalData: concatBytes(context, me.publicKey), tagLength: 128 }, cipher, wrapped.sealed,
      ));
      return key.length === 32 ? key : null;
    } finally {
      okm.fill(0);
    }
  } catch {
    return null;
  } finally {
    shared.fill(0);
  }
}

/**
 * Opens `sealed` (see `readSealed`, `sealedFromJson`) within `context` with `me` =
 * `{publicKey, privateKey}`, a reader's X25519 public key (32 bytes) and private CryptoKey, and
 * checks its commitment: the text, at most `JUSTIFICATION_BYTES_MAX` bytes of UTF-8. Throws a
 * JustificationError, `not-a-reader` or `unreadable`.
 */
export async function openJustification(sealed, context, me) {
  requireBytes(context, 'context', 32);
  requireBytes(me.publicKey, 'reader x25519 key', 32);
  const wrap = sealed.wraps.find((w) => equalBytes(w.reader, me.publicKey));
  if (!wrap) throw new JustificationError('not-a-reader', 'sealed for the patient and the regulators, not for this key');
  const unreadable = () => new JustificationError('unreadable', 'it does not open with this key: sealed wrongly, altered, or moved from another request');
  const bytes = sealed.ciphertext;
  if (bytes.length < SEALED_BYTES_MIN || bytes.length > SEALED_BYTES_MAX) throw unreadable();
  const key = await unwrapJustificationKey(wrap.key, context, me);
  if (!key) throw unreadable();
  let body;
  try {
    const cipher = await subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['decrypt']);
    body = new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: ZERO_NONCE, additionalData: context, tagLength: 128 }, cipher, bytes));
  } catch {
    throw unreadable();
  } finally {
    key.fill(0);
  }
  try {
    const salt = body.subarray(0, SALT_BYTES);
    const text = body.subarray(SALT_BYTES);
    if (text.length > JUSTIFICATION_BYTES_MAX) throw unreadable();
    if (!equalBytes(await sha256(concatBytes(TAG_JUSTIFICATION_COMMIT, salt, text)), sealed.commitment)) throw unreadable();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw unreadable();
    }
  } finally {
    body.fill(0);
  }
}

/**
 * The justification of the access a verified `event` names, as the reader `me` sees it, from
 * the node's answer to `GET /v1/txs/{event.txHash}` (its bytes): the text, or a thrown
 * JustificationError.
 */
export async function readJustification({ answer, event, chainId, me }) {
  const { request } = await checkAccessRecord(parseTxAnswer(answer), event);
  if (!request.justification) throw new JustificationError('none', 'the access request carries no justification');
  const context = await justificationContext(chainId, request);
  return openJustification(request.justification, context, me);
}

/** Bytes of the hex `sealed_borsh` form, decoded strictly (for tests and tools). */
export function decodeSealed(bytes) {
  const r = new BorshReader(bytes, 'sealed justification');
  const s = readSealed(r);
  r.finish();
  return s;
}
