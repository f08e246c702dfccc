// recovery.js: a recovery file opens with its passphrase into the same non-extractable key
// pair, and a wrong passphrase, an altered file, swapped public keys or a weakened KDF are
// refused; a key file's secrets seal into a file that opens to the key file's keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fromHex, toHex } from '../js/bytes.js';
import { keypairFromSeed, signEd25519, verifyEd25519 } from '../js/keys.js';
import { RecoveryError, createKeypairWithRecovery, isRecoveryFile, openRecovery, sealRecovery } from '../js/recovery.js';
import { sha256, concatBytes, utf8 } from '../js/bytes.js';

// Fewer iterations keep the suite fast; the format carries the count.
const FAST = { iterations: 100_000 };
const PASS = 'correct horse battery staple';

test('a new key pair and its recovery file open to the same keys, never extractable', async () => {
  const { keypair, recovery } = await createKeypairWithRecovery(PASS);
  assert.equal(keypair.signing.privateKey.extractable, false);
  assert.ok(isRecoveryFile(recovery));
  const back = await openRecovery(recovery, PASS);
  assert.equal(toHex(back.signing.publicKey), toHex(keypair.signing.publicKey));
  assert.equal(toHex(back.x25519.publicKey), toHex(keypair.x25519.publicKey));
  assert.equal(back.signing.privateKey.extractable, false);
  assert.equal(back.x25519.privateKey.extractable, false);
  // The reopened key signs as the original.
  const msg = utf8('hello');
  assert.ok(await verifyEd25519(keypair.signing.publicKey, msg, await signEd25519(back.signing.privateKey, msg)));
  const file = JSON.parse(recovery);
  assert.equal(file.kdf.iterations, 600_000);
  assert.equal(file.kind, 'cradle-recovery');
});

test('a key file\'s secrets seal into a recovery file of that key', async () => {
  const seed = new Uint8Array(32).fill(7);
  const xSecret = await sha256(concatBytes(utf8('cradle.x25519-from-seed.v1\0'), seed));
  const kp = await keypairFromSeed(seed);
  const text = await sealRecovery({ edSeed: seed, xSecret, publicKey: kp.signing.publicKey, x25519Public: kp.x25519.publicKey }, PASS, FAST);
  const back = await openRecovery(text, PASS);
  assert.equal(toHex(back.signing.publicKey), toHex(kp.signing.publicKey));
  assert.equal(toHex(back.x25519.publicKey), toHex(kp.x25519.publicKey));
});

test('wrong passphrases, altered files, swapped keys and weak settings are refused', async () => {
  const seed = new Uint8Array(32).fill(9);
  const xSecret = new Uint8Array(32).fill(3);
  const kp = await keypairFromSeed(seed);
  const other = await keypairFromSeed(new Uint8Array(32).fill(10));
  const text = await sealRecovery({ edSeed: seed, xSecret, publicKey: kp.signing.publicKey, x25519Public: (await keypairFromSeed(seed)).x25519.publicKey }, PASS, FAST);
  const code = (p) => p.then(() => 'opened', (e) => (e instanceof RecoveryError ? e.code : `other: ${e.message}`));
  assert.equal(await code(openRecovery(text, 'not the passphrase')), 'passphrase');
  const j = JSON.parse(text);
  const sealed = fromHex(j.sealed);
  sealed[5] ^= 1;
  assert.equal(await code(openRecovery(JSON.stringify({ ...j, sealed: toHex(sealed) }), PASS)), 'passphrase');
  assert.equal(await code(openRecovery(JSON.stringify({ ...j, public_key: toHex(other.signing.publicKey) }), PASS)), 'passphrase');
  assert.equal(await code(openRecovery(JSON.stringify({ ...j, kdf: { ...j.kdf, iterations: 1000 } }), PASS)), 'format');
  assert.equal(await code(openRecovery(JSON.stringify({ ...j, kind: 'cradle-key' }), PASS)), 'format');
  assert.equal(await code(openRecovery('not json', PASS)), 'format');
  // The secrets sealed here do not make the X25519 key written in the file.
  assert.equal(await code(openRecovery(text, PASS)), 'mismatch');
  await assert.rejects(() => sealRecovery({ edSeed: seed, xSecret, publicKey: kp.signing.publicKey, x25519Public: kp.x25519.publicKey }, 'short'), (e) => e.code === 'weak-passphrase');
  await assert.rejects(() => createKeypairWithRecovery('short'), (e) => e.code === 'weak-passphrase');
});
