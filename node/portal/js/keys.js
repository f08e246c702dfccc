// A patient's keys in the page, and the proof a new key pair makes of itself.
//
// Mirrors `ledger/src/crypto.rs` (`Keypair`: an Ed25519 signing key and an X25519 key that
// archive keys are wrapped to; `Keypair::from_seed` derives the X25519 secret as
// SHA-256("cradle.x25519-from-seed.v1\0" || seed)) and `ledger/src/tx.rs` (`prove_keys`,
// `key_proof_signing_bytes`, `verify_key_proof`: the new Ed25519 key signs
// `"cradle.ledger.patient-enrolment.v1\0" || chain_id || new_key || new_x25519`).
//
// A key pair here is `{signing: {publicKey, privateKey}, x25519: {publicKey, privateKey}}`:
// public keys as 32 bytes, private keys as WebCrypto CryptoKeys, non-extractable unless the
// caller asks otherwise, so script in the page can use them but never read them out.

import { concatBytes, requireBytes, sha256, utf8 } from './bytes.js';

/** The tag of a key proof (`TAG_ENROLMENT`): the same for an enrolment and a rotation. */
export const TAG_KEY_PROOF = utf8('cradle.ledger.patient-enrolment.v1\0');
const TAG_X25519_FROM_SEED = utf8('cradle.x25519-from-seed.v1\0');

const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
/** The X25519 base point (u = 9): X25519(secret, base point) is the secret's public key. */
const X25519_BASE_POINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0));

const subtle = () => globalThis.crypto.subtle;

function base64urlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * An Ed25519 key from its 32-byte seed (the secret half of a Cradle key file).
 * WebCrypto hands out the public key of an imported private key only through an export, so the
 * seed is imported once extractable to read the public key, then again as the key to keep.
 */
export async function importEd25519Seed(seed, { extractable = false } = {}) {
  requireBytes(seed, 'ed25519 seed', 32);
  const pkcs8 = concatBytes(PKCS8_ED25519, seed);
  try {
    const probe = await subtle().importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
    const publicKey = base64urlToBytes((await subtle().exportKey('jwk', probe)).x);
    const privateKey = extractable ? probe : await subtle().importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    return { publicKey, privateKey };
  } finally {
    pkcs8.fill(0);
  }
}

/** The public key of an X25519 private CryptoKey (extractable or not), by X25519 with u = 9. */
export async function x25519PublicOf(privateKey) {
  const base = await subtle().importKey('raw', X25519_BASE_POINT, { name: 'X25519' }, true, []);
  return new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: base }, privateKey, 256));
}

/** An X25519 key from its 32-byte secret. */
export async function importX25519Secret(secret, { extractable = false } = {}) {
  requireBytes(secret, 'x25519 secret', 32);
  const pkcs8 = concatBytes(PKCS8_X25519, secret);
  try {
    const privateKey = await subtle().importKey('pkcs8', pkcs8, { name: 'X25519' }, extractable, ['deriveBits']);
    return { publicKey: await x25519PublicOf(privateKey), privateKey };
  } finally {
    pkcs8.fill(0);
  }
}

/** A key pair from its two secrets (`Keypair::from_secret_parts`). */
export async function keypairFromSecretParts(ed25519Seed, x25519Secret, options) {
  return {
    signing: await importEd25519Seed(ed25519Seed, options),
    x25519: await importX25519Secret(x25519Secret, options),
  };
}

/** The key pair `Keypair::from_seed(seed)` makes (the testkit's keys, reproducible ones). */
export async function keypairFromSeed(seed, options) {
  requireBytes(seed, 'seed', 32);
  const xSecret = await sha256(concatBytes(TAG_X25519_FROM_SEED, seed));
  try {
    return await keypairFromSecretParts(seed, xSecret, options);
  } finally {
    xSecret.fill(0);
  }
}

/** A fresh key pair from the browser's random source; its private keys never leave WebCrypto. */
export async function generateKeypair() {
  const ed = await subtle().generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const x = await subtle().generateKey({ name: 'X25519' }, false, ['deriveBits']);
  return {
    signing: { publicKey: new Uint8Array(await subtle().exportKey('raw', ed.publicKey)), privateKey: ed.privateKey },
    x25519: { publicKey: new Uint8Array(await subtle().exportKey('raw', x.publicKey)), privateKey: x.privateKey },
  };
}

/** Ed25519 signature of `message` by `privateKey` (a CryptoKey). */
export async function signEd25519(privateKey, message) {
  return new Uint8Array(await subtle().sign('Ed25519', privateKey, message));
}

/**
 * Whether `signature` is `publicKey`'s over `message`. An unparsable key or a signature of the
 * wrong length is false, never an exception. WebCrypto checks RFC 8032 signatures; the ledger
 * (`verify_strict`) also refuses small-order keys, so the ledger has the last word.
 */
export async function verifyEd25519(publicKey, message, signature) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  try {
    const key = await subtle().importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await subtle().verify('Ed25519', key, signature, message);
  } catch {
    return false;
  }
}

/** What a key proof signs (`key_proof_signing_bytes`). */
export function keyProofSigningBytes(key, x25519, chainId) {
  return concatBytes(TAG_KEY_PROOF, requireBytes(chainId, 'chain id', 32), requireBytes(key, 'key', 32), requireBytes(x25519, 'x25519 key', 32));
}

/**
 * `prove_keys`: the new key pair's proof, for `chainId`, that it holds the signing key and
 * chose the X25519 key. Returns `{newKey, newX25519, proof}`, the fields of a rotation.
 */
export async function proveKeys(keypair, chainId) {
  const newKey = keypair.signing.publicKey;
  const newX25519 = keypair.x25519.publicKey;
  const proof = await signEd25519(keypair.signing.privateKey, keyProofSigningBytes(newKey, newX25519, chainId));
  return { newKey, newX25519, proof };
}

/** `verify_key_proof`: whether `proof` is `key`'s proof of (`key`, `x25519`) on `chainId`. */
export async function verifyKeyProof(key, x25519, proof, chainId) {
  return verifyEd25519(key, keyProofSigningBytes(key, x25519, chainId), proof);
}
