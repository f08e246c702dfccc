// Archive keys wrapped for one recipient's X25519 key, in the page.
//
// Mirrors `ledger/src/keywrap.rs` byte for byte: a fresh ephemeral X25519 secret per wrap; the
// shared secret X25519(ephemeral, recipient) goes through HKDF-SHA256 with
// salt = ephemeral public || recipient public and info = "cradle.keywrap.v1\0" || archive id ||
// recipient public, giving a one-use AES-256-GCM key; the 32-byte archive key is sealed under
// it with a zero nonce and associated data archive id || recipient public. A wrapped key is the
// ephemeral public key (32 bytes) and the ciphertext with its tag (48 bytes); `WrappedKey` in
// Borsh, and 80 bytes of hex in JSON.
//
// A wrap opens only for the recipient and archive it was made for. `unwrapKey` fails with one
// error, `KeyUnwrapError`, whatever went wrong (another recipient, another archive, any altered
// byte, a low-order ephemeral key), so the failure says nothing about which check failed.

import { BorshReader, concatBytes, equalBytes, fromHex, requireBytes, toHex, utf8 } from './bytes.js';
import { importX25519Secret } from './keys.js';

/** The HKDF info prefix of an archive key wrap (`TAG_KEYWRAP`). */
export const TAG_KEYWRAP = utf8('cradle.keywrap.v1\0');
/** Bytes of a `WrappedKey`: ephemeral public key, then ciphertext and tag. */
export const WRAPPED_KEY_BYTES = 80;

const ZERO_NONCE = new Uint8Array(12);

const subtle = () => globalThis.crypto.subtle;

/** The one refusal of `unwrapKey`. */
export class KeyUnwrapError extends Error {
  constructor() {
    super('the key does not open: wrong recipient, wrong archive or altered');
    this.name = 'KeyUnwrapError';
  }
}

/** The refusal of a wrap for a low-order recipient key (its shared secret is known to anyone). */
export class LowOrderKeyError extends Error {
  constructor() {
    super('the recipient X25519 key is a low-order point');
    this.name = 'LowOrderKeyError';
  }
}

/** Reads a `WrappedKey` (`{ephemeral, sealed}`). */
export function readWrappedKey(r) {
  return { ephemeral: r.fixed(32, 'wrapped key ephemeral'), sealed: r.fixed(48, 'wrapped key sealed') };
}

/** Writes a `WrappedKey`. */
export function writeWrappedKey(w, k) {
  return w.fixed(k.ephemeral, 32, 'wrapped key ephemeral').fixed(k.sealed, 48, 'wrapped key sealed');
}

/** Hex of `ephemeral || sealed`, as the ledger's JSON and headers carry a wrapped key. */
export function wrappedKeyToHex(k) {
  return toHex(concatBytes(requireBytes(k.ephemeral, 'ephemeral', 32), requireBytes(k.sealed, 'sealed', 48)));
}

/** A wrapped key from its 80 bytes of hex. */
export function wrappedKeyFromHex(hex) {
  const r = new BorshReader(fromHex(hex, WRAPPED_KEY_BYTES, 'wrapped key'), 'wrapped key');
  const k = readWrappedKey(r);
  r.finish();
  return k;
}

/** X25519 of `privateKey` and the raw public key `publicBytes`; null when it cannot be made. */
export async function sharedSecret(privateKey, publicBytes) {
  try {
    const pub = await subtle().importKey('raw', publicBytes, { name: 'X25519' }, true, []);
    const shared = new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
    // WebCrypto refuses an all-zero secret itself; this holds if an implementation does not.
    return shared.some((b) => b !== 0) ? shared : null;
  } catch {
    return null;
  }
}

/** The wrap's one-use AES-256-GCM key (`wrap_cipher` in Rust), non-extractable. */
async function wrapCipher(shared, ephemeral, archive, recipient, usage) {
  const ikm = await subtle().importKey('raw', shared, 'HKDF', false, ['deriveBits']);
  const okm = new Uint8Array(await subtle().deriveBits({
    name: 'HKDF', hash: 'SHA-256', salt: concatBytes(ephemeral, recipient), info: concatBytes(TAG_KEYWRAP, archive, recipient),
  }, ikm, 256));
  try {
    return await subtle().importKey('raw', okm, { name: 'AES-GCM' }, false, [usage]);
  } finally {
    okm.fill(0);
  }
}

/** Seals `key` with the ephemeral X25519 private key `eph` (its public key `ephemeral`). */
async function seal(key, archive, recipient, eph, ephemeral) {
  requireBytes(key, 'archive key', 32);
  requireBytes(archive, 'archive id', 32);
  requireBytes(recipient, 'recipient x25519 key', 32);
  const shared = await sharedSecret(eph, recipient);
  if (!shared) throw new LowOrderKeyError();
  try {
    const cipher = await wrapCipher(shared, ephemeral, archive, recipient, 'encrypt');
    const sealed = new Uint8Array(await subtle().encrypt(
      { name: 'AES-GCM', iv: ZERO_NONCE, additionalData: concatBytes(archive, recipient), tagLength: 128 }, cipher, key,
    ));
    return { ephemeral, sealed };
  } finally {
    shared.fill(0);
  }
}

/**
 * Wraps `key` (a 32-byte archive key) for the X25519 public key `recipient`, bound to `archive`,
 * with a fresh ephemeral key that never leaves WebCrypto. Returns `{ephemeral, sealed}`.
 * Throws `LowOrderKeyError` for a low-order recipient key.
 */
export async function wrapKey(key, archive, recipient) {
  const eph = await subtle().generateKey({ name: 'X25519' }, false, ['deriveBits']);
  const ephemeral = new Uint8Array(await subtle().exportKey('raw', eph.publicKey));
  return seal(key, archive, recipient, eph.privateKey, ephemeral);
}

/**
 * `wrap_key_with_ephemeral`: `wrapKey` with the ephemeral secret given, to compare with Rust's
 * wraps byte for byte. Only for tests: two keys wrapped with one ephemeral secret for the same
 * recipient and archive share an AES key and nonce, which gives both away.
 */
export async function wrapKeyWithEphemeral(key, archive, recipient, ephemeralSecret) {
  const eph = await importX25519Secret(ephemeralSecret);
  return seal(key, archive, recipient, eph.privateKey, eph.publicKey);
}

/**
 * Opens `wrapped` (`{ephemeral, sealed}`) for `recipient` = `{publicKey, privateKey}`, the
 * recipient's X25519 public key (32 bytes) and private CryptoKey, and `archive`. Returns the
 * 32-byte archive key (the caller should `fill(0)` it when done). Throws `KeyUnwrapError` for
 * every failure of the wrap, a malformed one included; a plain Error only for an archive id or
 * recipient key of the wrong shape (the caller's mistake, not the wrap's).
 */
export async function unwrapKey(wrapped, archive, recipient) {
  requireBytes(archive, 'archive id', 32);
  requireBytes(recipient.publicKey, 'recipient x25519 key', 32);
  if (!(wrapped?.ephemeral instanceof Uint8Array) || wrapped.ephemeral.length !== 32
    || !(wrapped.sealed instanceof Uint8Array) || wrapped.sealed.length !== 48) {
    throw new KeyUnwrapError();
  }
  const shared = await sharedSecret(recipient.privateKey, wrapped.ephemeral);
  if (!shared) throw new KeyUnwrapError();
  try {
    const cipher = await wrapCipher(shared, wrapped.ephemeral, archive, recipient.publicKey, 'decrypt');
    const key = new Uint8Array(await subtle().decrypt(
      { name: 'AES-GCM', iv: ZERO_NONCE, additionalData: concatBytes(archive, recipient.publicKey), tagLength: 128 },
      cipher, wrapped.sealed,
    ));
    if (key.length !== 32) throw new KeyUnwrapError();
    return key;
  } catch {
    throw new KeyUnwrapError();
  } finally {
    shared.fill(0);
  }
}

/**
 * Opens `wrapped` (an archive key wrapped for `me` = `{publicKey, privateKey}`) and wraps it
 * again for the X25519 key `recipient`, bound to the same `archive`: what her page does for
 * each archive a grant covers. The clear key is wiped before this returns.
 */
export async function rewrapKey(wrapped, archive, me, recipient) {
  const key = await unwrapKey(wrapped, archive, me);
  try {
    return await wrapKey(key, archive, recipient);
  } finally {
    key.fill(0);
  }
}

/** Whether two wrapped keys are the same bytes. */
export function sameWrappedKey(a, b) {
  return equalBytes(a.ephemeral, b.ephemeral) && equalBytes(a.sealed, b.sealed);
}
