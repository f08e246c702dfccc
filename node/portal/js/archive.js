// An archive fetched by its patient in the page: the signed access request a custodian records
// before it releases a byte, and the ciphertext opened with the archive key.
//
// Mirrors `ledger/src/access.rs` (`AccessRequest`, `SignedAccessRequest`: the accessor signs
// `"cradle.ledger.access-request.v1\0" || chain_id || borsh(AccessRequest)`; the fetch body is
// `VERSION || borsh(request) || signature`) and `client/src/seal.rs`: the ciphertext is chunks of
// 1 MiB of plaintext (the last one shorter, an empty archive one empty chunk), each sealed with
// AES-256-GCM as `ciphertext || 16-byte tag`, nonce `index (u64 BE) || final flag || 0 0 0`,
// associated data `"cradle.archive.chunk.v1\0" || archive id || index (u64 BE) || final flag`.
// Reordered, dropped, altered, appended or truncated chunks all fail to open.

import { BorshWriter, concatBytes, equalBytes, requireBytes, sha256, utf8 } from './bytes.js';
import { PURPOSE } from './audit.js';
import { signEd25519 } from './keys.js';

export const TAG_ACCESS_REQUEST = utf8('cradle.ledger.access-request.v1\0');
export const TAG_CHUNK = utf8('cradle.archive.chunk.v1\0');
export const CHUNK_BYTES = 1 << 20;
export const TAG_BYTES = 16;
const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;

/** Why an archive was not opened: `code` is `hash-mismatch`, `length`, `chunk` or `key`. */
export class ArchiveError extends Error {
  constructor(code, detail) {
    super(detail);
    this.code = code;
  }
}

function purposeCode(purpose) {
  const entry = Object.entries(PURPOSE).find(([, name]) => name === purpose);
  if (!entry) throw new Error(`unknown purpose ${purpose}`);
  return Number(entry[0]);
}

/**
 * The Borsh bytes of an AccessRequest `{accessor, archive, purpose, requestedAtMs, requestId}`
 * without a justification (a patient reading her own record gives none).
 */
export function encodeAccessRequest(req) {
  return new BorshWriter()
    .fixed(req.accessor, 32, 'accessor').fixed(req.archive, 32, 'archive')
    .u8(purposeCode(req.purpose), 'purpose')
    .option(null, () => {})
    .u64(BigInt(req.requestedAtMs), 'requested_at_ms')
    .fixed(req.requestId, 16, 'request id')
    .toBytes();
}

/** What the accessor signs for `req` on chain `chainId`. */
export function accessRequestSigningBytes(chainId, req) {
  return concatBytes(TAG_ACCESS_REQUEST, requireBytes(chainId, 'chain id', 32), encodeAccessRequest(req));
}

/**
 * A fetch body: the access request for `archive` signed by `signer` = `{publicKey, privateKey}`
 * (an Ed25519 CryptoKey), with a fresh request id and the time now unless given. Returns
 * `{body, request}`.
 */
export async function signedAccessRequest({ chainId, signer, archive, purpose = 'PATRQT', nowMs = Date.now(), requestId }) {
  const request = {
    accessor: requireBytes(signer.publicKey, 'accessor', 32),
    archive: requireBytes(archive, 'archive id', 32),
    purpose,
    requestedAtMs: BigInt(nowMs),
    requestId: requestId ?? globalThis.crypto.getRandomValues(new Uint8Array(16)),
  };
  const signature = await signEd25519(signer.privateKey, accessRequestSigningBytes(chainId, request));
  const body = concatBytes(Uint8Array.of(1), encodeAccessRequest(request), requireBytes(signature, 'signature', 64));
  return { body, request };
}

/** The plaintext length inside a ciphertext of `len` bytes, or null if none has that length. */
export function plaintextLength(len) {
  const full = Math.floor(len / SEALED_CHUNK_BYTES);
  const rest = len % SEALED_CHUNK_BYTES;
  if (rest === 0 && full > 0) return full * CHUNK_BYTES;
  if (rest >= TAG_BYTES) return full * CHUNK_BYTES + rest - TAG_BYTES;
  return null;
}

function chunkNonce(index, last) {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(0, BigInt(index));
  n[8] = last ? 1 : 0;
  return n;
}

function chunkAad(archive, index, last) {
  const tail = new Uint8Array(9);
  new DataView(tail.buffer).setBigUint64(0, BigInt(index));
  tail[8] = last ? 1 : 0;
  return concatBytes(TAG_CHUNK, archive, tail);
}

/**
 * Opens `ciphertext` of `archive` with its 32-byte `key`, after checking its SHA-256 is
 * `expectedSha256` (the hash the ledger registered). Throws an ArchiveError: `hash-mismatch`
 * before anything is decrypted, `length` for a length no archive has, `chunk` for a chunk that
 * does not open (with its index).
 */
export async function openArchive({ ciphertext, archive, key, expectedSha256 }) {
  requireBytes(archive, 'archive id', 32);
  requireBytes(key, 'archive key', 32);
  if (!equalBytes(await sha256(ciphertext), requireBytes(expectedSha256, 'ciphertext hash', 32))) {
    throw new ArchiveError('hash-mismatch', 'the ciphertext is not the one the ledger registered');
  }
  const plainLen = plaintextLength(ciphertext.length);
  if (plainLen === null) throw new ArchiveError('length', `no archive is ${ciphertext.length} bytes long`);
  const cipher = await globalThis.crypto.subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['decrypt']);
  const out = new Uint8Array(plainLen);
  const chunks = Math.max(1, Math.ceil(ciphertext.length / SEALED_CHUNK_BYTES));
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const sealed = ciphertext.subarray(i * SEALED_CHUNK_BYTES, Math.min(ciphertext.length, (i + 1) * SEALED_CHUNK_BYTES));
    let plain;
    try {
      plain = new Uint8Array(await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: chunkNonce(i, last), additionalData: chunkAad(archive, i, last), tagLength: 128 },
        cipher, sealed,
      ));
    } catch {
      throw new ArchiveError('chunk', `part ${i} of the archive does not open`);
    }
    out.set(plain, i * CHUNK_BYTES);
  }
  return out;
}

/** Seals `plaintext` as the custodian does (for tests): `{ciphertext, sha256}`. */
export async function sealArchive({ plaintext, archive, key }) {
  const cipher = await globalThis.crypto.subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt']);
  const chunks = Math.max(1, Math.ceil(plaintext.length / CHUNK_BYTES));
  const parts = [];
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const chunk = plaintext.subarray(i * CHUNK_BYTES, Math.min(plaintext.length, (i + 1) * CHUNK_BYTES));
    parts.push(new Uint8Array(await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: chunkNonce(i, last), additionalData: chunkAad(archive, i, last), tagLength: 128 },
      cipher, chunk,
    )));
  }
  const ciphertext = concatBytes(...parts);
  return { ciphertext, sha256: await sha256(ciphertext) };
}
