// The patient's key pair in the page: made here, imported from a `cradle keygen` key file or
// opened from her recovery file, and kept in IndexedDB as non-extractable CryptoKeys, with the
// sealed recovery file (see js/recovery.js: it can only be made while the secrets are in hand).
//
// A key file is JSON (`genesis/src/keyfile.rs`): {kind: "cradle-key", version: 1, public_key,
// x25519_public, ed25519_secret, x25519_secret}, secrets as 64 hex digits. Its secrets are
// imported once into WebCrypto and the bytes overwritten; the public keys written in the file
// must be those of its secrets, as the Rust reader checks.

import { equalBytes, fromHex, toHex } from '../../js/bytes.js';
import { keypairFromSecretParts } from '../../js/keys.js';
import { checkPassphrase, createKeypairWithRecovery, openRecovery, sealRecovery } from '../../js/recovery.js';
import * as store from './store.js';

const KEY_FILE_BYTES_MAX = 4096;

export class KeyFileError extends Error {}

/**
 * A key pair from the text of a key file, and with `passphrase` its recovery file (made while
 * the secrets are in hand): `{keypair, recovery}`. Throws a KeyFileError that never quotes a
 * secret, or a RecoveryError for a passphrase too short.
 */
export async function importKeyFile(text, passphrase = null) {
  if (passphrase !== null) checkPassphrase(passphrase);
  if (typeof text !== 'string' || text.length > KEY_FILE_BYTES_MAX) throw new KeyFileError('not a key file');
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyFileError('not a key file (not JSON)');
  }
  if (json?.kind !== 'cradle-key' || json.version !== 1) throw new KeyFileError('not a cradle key file');
  const fields = ['kind', 'version', 'public_key', 'x25519_public', 'ed25519_secret', 'x25519_secret'];
  for (const k of Object.keys(json)) if (!fields.includes(k)) throw new KeyFileError(`unknown field ${k}`);
  let edSeed;
  let xSecret;
  try {
    edSeed = fromHex(String(json.ed25519_secret).trim(), 32, 'ed25519_secret');
    xSecret = fromHex(String(json.x25519_secret).trim(), 32, 'x25519_secret');
  } catch {
    throw new KeyFileError('the secrets must be 64 hex digits each');
  }
  try {
    const keypair = await keypairFromSecretParts(edSeed, xSecret, { extractable: false });
    const publicKey = fromHex(String(json.public_key).trim(), 32, 'public_key');
    const x25519 = fromHex(String(json.x25519_public).trim(), 32, 'x25519_public');
    if (!equalBytes(publicKey, keypair.signing.publicKey) || !equalBytes(x25519, keypair.x25519.publicKey)) {
      throw new KeyFileError('the public keys written in the file are not those of its secrets');
    }
    const recovery = passphrase === null ? null
      : await sealRecovery({ edSeed, xSecret, publicKey, x25519Public: x25519 }, passphrase);
    return { keypair, recovery };
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(e.message);
  } finally {
    edSeed.fill(0);
    xSecret.fill(0);
    json.ed25519_secret = null;
    json.x25519_secret = null;
  }
}

/** A fresh key pair, never extractable, and its recovery file sealed under `passphrase`. */
export const createKeypair = (passphrase) => createKeypairWithRecovery(passphrase);

/** The key pair a recovery file holds: `{keypair, recovery}` (the file is kept as it is). */
export async function importRecovery(text, passphrase) {
  return { keypair: await openRecovery(text, passphrase), recovery: text };
}

/** Keeps the key pair and its recovery file (or none) in IndexedDB. */
export async function saveKeypair(keypair, recovery) {
  await store.put(store.KEYS.keypair, keypair);
  if (recovery) await store.put(store.KEYS.recovery, recovery);
  else await store.remove(store.KEYS.recovery);
}

export const loadKeypair = () => store.get(store.KEYS.keypair);
export const loadRecovery = () => store.get(store.KEYS.recovery);

export async function forgetKeypair() {
  await store.remove(store.KEYS.keypair);
  await store.remove(store.KEYS.recovery);
  await store.remove(IDENTITY);
  await store.remove(PENDING);
}

/**
 * Who she is on the ledger after a key rotation made in this page: `{key, identity, former}`
 * (hex), kept beside the key pair. Her records and history stay under the key she enrolled with
 * (`identity`); `former` are the keys she rotated away from, whose past reads are hers too.
 */
const IDENTITY = 'patient-identity';
/** A rotation's new key pair and recovery file, kept before the rotation is sent. */
const PENDING = 'rotation-pending';

async function identityRecord(keypair) {
  const kept = await store.get(IDENTITY);
  return kept && kept.key === toHex(keypair.signing.publicKey) ? kept : null;
}

/** The key she enrolled with: the one kept for this key pair, else the key pair's own key. */
export async function loadIdentity(keypair) {
  const kept = await identityRecord(keypair);
  return kept ? fromHex(kept.identity, 32, 'identity') : keypair.signing.publicKey;
}

/** Every key of hers this browser knows (hex): the current one, her enrolment key, former ones. */
export async function ownKeys(keypair) {
  const kept = await identityRecord(keypair);
  const mine = new Set([toHex(keypair.signing.publicKey)]);
  if (kept) {
    mine.add(kept.identity);
    for (const k of kept.former) mine.add(k);
  }
  return mine;
}

/**
 * Keeps a rotation's new key pair and recovery file before the rotation, signed by `from`, is
 * sent: if its answer is lost after it committed, the page finds the new key here.
 */
export const savePending = (keypair, recovery, from) => store.put(PENDING, { keypair, recovery, from: toHex(from.signing.publicKey) });

/** The kept rotation away from `keypair`, if any: `{keypair, recovery}`. */
export async function loadPending(keypair) {
  const pending = await store.get(PENDING);
  return pending && pending.from === toHex(keypair.signing.publicKey) ? pending : null;
}

/**
 * After a committed rotation from `old` to `fresh`: the new key pair and its recovery file
 * replace the old ones, and she stays the patient she enrolled as.
 */
export async function adoptRotated(old, fresh, recovery) {
  const before = await identityRecord(old);
  const oldHex = toHex(old.signing.publicKey);
  const record = {
    key: toHex(fresh.signing.publicKey),
    identity: before ? before.identity : oldHex,
    former: [...(before ? before.former : []), oldHex],
  };
  await saveKeypair(fresh, recovery);
  await store.put(IDENTITY, record);
  await store.remove(PENDING);
}

/**
 * Keeps that `keypair`'s key signs for the patient enrolled as `identity` (bytes), as her
 * verified history proved it (identity.js): a key bound to her at her clinic or the command line.
 */
export async function adoptIdentity(keypair, identity) {
  await store.put(IDENTITY, { key: toHex(keypair.signing.publicKey), identity: toHex(identity), former: [] });
}
