// A patient's encrypted recovery file: her two secrets sealed under a passphrase, so a lost or
// wiped browser does not lose her key.
//
// The page keeps her private keys as non-extractable CryptoKeys: once kept, not even the page
// can read them out, so a recovery file cannot be made later. It is made at the one moment the
// page holds the secrets' bytes: when it creates the key pair (from 64 random bytes of the
// browser's source, then imported non-extractable) or imports a key file. What is kept for later
// downloads is the sealed file itself, which is as safe in IndexedDB as on her disk.
//
// Format (JSON, `cradle-recovery` version 1):
//   {kind, version, public_key, x25519_public, kdf: {name: "PBKDF2-SHA256", iterations, salt},
//    cipher: {name: "AES-256-GCM", nonce}, sealed}
// with bytes as lowercase hex. The AES key is PBKDF2-HMAC-SHA256(passphrase as UTF-8 NFC,
// 16-byte random salt, `iterations`, 32 bytes); the plaintext is ed25519 seed (32) || x25519
// secret (32); the associated data is "cradle.recovery.v1\0" || public_key || x25519_public, so
// a file whose public keys were swapped does not open. After opening, the secrets must make the
// public keys written in the file.

import { concatBytes, equalBytes, fromHex, requireBytes, toHex, utf8 } from './bytes.js';
import { keypairFromSecretParts } from './keys.js';

export const RECOVERY_KIND = 'cradle-recovery';
const TAG_RECOVERY = utf8('cradle.recovery.v1\0');
/** OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about half a second in a phone's browser. */
export const PBKDF2_ITERATIONS = 600_000;
/** Fewer iterations than this are refused when reading a file (a file made weak on purpose). */
const ITERATIONS_MIN = 100_000;
const ITERATIONS_MAX = 10_000_000;
export const PASSPHRASE_CHARS_MIN = 10;
const RECOVERY_BYTES_MAX = 4096;

/** A recovery file that cannot be used; `code`: `format`, `passphrase`, `weak-passphrase`, `mismatch`. */
export class RecoveryError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'RecoveryError';
    this.code = code;
  }
}

const subtle = () => globalThis.crypto.subtle;

async function aesKey(passphrase, salt, iterations) {
  const secret = utf8(passphrase.normalize('NFC'));
  try {
    const base = await subtle().importKey('raw', secret, 'PBKDF2', false, ['deriveKey']);
    return await subtle().deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  } finally {
    secret.fill(0);
  }
}

/** Throws unless `passphrase` is long enough to seal a key with. */
export function checkPassphrase(passphrase) {
  if (typeof passphrase !== 'string' || [...passphrase].length < PASSPHRASE_CHARS_MIN) {
    throw new RecoveryError('weak-passphrase', `a passphrase of at least ${PASSPHRASE_CHARS_MIN} characters`);
  }
}

/**
 * Seals the secrets (`edSeed`, `xSecret`, 32 bytes each) of the key pair with public keys
 * `publicKey` and `x25519Public` under `passphrase`. Returns the file's text.
 */
export async function sealRecovery({ edSeed, xSecret, publicKey, x25519Public }, passphrase, { iterations = PBKDF2_ITERATIONS } = {}) {
  checkPassphrase(passphrase);
  requireBytes(publicKey, 'public key', 32);
  requireBytes(x25519Public, 'x25519 public key', 32);
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const key = await aesKey(passphrase, salt, iterations);
  const plain = concatBytes(requireBytes(edSeed, 'ed25519 seed', 32), requireBytes(xSecret, 'x25519 secret', 32));
  try {
    const sealed = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: concatBytes(TAG_RECOVERY, publicKey, x25519Public) }, key, plain));
    return JSON.stringify({
      kind: RECOVERY_KIND,
      version: 1,
      public_key: toHex(publicKey),
      x25519_public: toHex(x25519Public),
      kdf: { name: 'PBKDF2-SHA256', iterations, salt: toHex(salt) },
      cipher: { name: 'AES-256-GCM', nonce: toHex(nonce) },
      sealed: toHex(sealed),
    }, null, 2);
  } finally {
    plain.fill(0);
  }
}

/** Whether `text` is a recovery file (and not, say, a `cradle keygen` key file). */
export function isRecoveryFile(text) {
  try {
    return JSON.parse(text)?.kind === RECOVERY_KIND;
  } catch {
    return false;
  }
}

function read(text) {
  if (typeof text !== 'string' || text.length > RECOVERY_BYTES_MAX) throw new RecoveryError('format', 'not a recovery file');
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    throw new RecoveryError('format', 'not a recovery file (not JSON)');
  }
  if (j?.kind !== RECOVERY_KIND || j.version !== 1) throw new RecoveryError('format', 'not a Cradle recovery file');
  if (j.kdf?.name !== 'PBKDF2-SHA256' || j.cipher?.name !== 'AES-256-GCM') throw new RecoveryError('format', 'an unknown key derivation or cipher');
  const iterations = j.kdf.iterations;
  if (!Number.isSafeInteger(iterations) || iterations < ITERATIONS_MIN || iterations > ITERATIONS_MAX) {
    throw new RecoveryError('format', `iterations must be between ${ITERATIONS_MIN} and ${ITERATIONS_MAX}`);
  }
  try {
    return {
      publicKey: fromHex(String(j.public_key), 32, 'public_key'),
      x25519Public: fromHex(String(j.x25519_public), 32, 'x25519_public'),
      iterations,
      salt: fromHex(String(j.kdf.salt), 16, 'salt'),
      nonce: fromHex(String(j.cipher.nonce), 12, 'nonce'),
      sealed: fromHex(String(j.sealed), 80, 'sealed'),
    };
  } catch (e) {
    throw new RecoveryError('format', e.message);
  }
}

/**
 * Opens a recovery file with `passphrase` into a non-extractable key pair (see keys.js).
 * Throws a RecoveryError: `format`, `passphrase` (wrong passphrase or altered file), or
 * `mismatch` (the secrets do not make the public keys written in the file).
 */
export async function openRecovery(text, passphrase) {
  const f = read(text);
  const key = await aesKey(String(passphrase ?? ''), f.salt, f.iterations);
  let plain;
  try {
    plain = new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: f.nonce, additionalData: concatBytes(TAG_RECOVERY, f.publicKey, f.x25519Public) }, key, f.sealed));
  } catch {
    throw new RecoveryError('passphrase', 'the passphrase does not open this file, or the file was altered');
  }
  try {
    const keypair = await keypairFromSecretParts(plain.subarray(0, 32), plain.subarray(32, 64), { extractable: false });
    if (!equalBytes(keypair.signing.publicKey, f.publicKey) || !equalBytes(keypair.x25519.publicKey, f.x25519Public)) {
      throw new RecoveryError('mismatch', 'the secrets in the file are not those of its public keys');
    }
    return keypair;
  } finally {
    plain.fill(0);
  }
}

/**
 * A fresh key pair whose secrets come from the browser's random source and are imported
 * non-extractable at once; with `passphrase`, also its recovery file (made before the bytes are
 * wiped). Returns `{keypair, recovery}` (`recovery` null without a passphrase).
 */
export async function createKeypairWithRecovery(passphrase = null) {
  if (passphrase !== null) checkPassphrase(passphrase);
  const secrets = globalThis.crypto.getRandomValues(new Uint8Array(64));
  const edSeed = secrets.subarray(0, 32);
  const xSecret = secrets.subarray(32, 64);
  try {
    const keypair = await keypairFromSecretParts(edSeed, xSecret, { extractable: false });
    const recovery = passphrase === null ? null
      : await sealRecovery({ edSeed, xSecret, publicKey: keypair.signing.publicKey, x25519Public: keypair.x25519.publicKey }, passphrase);
    return { keypair, recovery };
  } finally {
    secrets.fill(0);
  }
}
