// keywrap.js and keys.js on vectors/tx.json (written by ledger/tests/portal_vectors.rs): the
// page derives the testkit's keys as Rust does, makes Rust's wraps byte for byte from the same
// ephemeral secrets, opens them, and refuses what Rust refuses with one error. Also the page's
// own wraps in vectors/tx-from-js.json (which the Rust test opens) and fresh wraps here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { fromHex, toHex } from '../js/bytes.js';
import { generateKeypair, importX25519Secret, keypairFromSeed, x25519PublicOf } from '../js/keys.js';
import {
  KeyUnwrapError, LowOrderKeyError, TAG_KEYWRAP, rewrapKey, sameWrappedKey, unwrapKey, wrapKey,
  wrapKeyWithEphemeral, wrappedKeyFromHex, wrappedKeyToHex,
} from '../js/keywrap.js';

const load = (name) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const V = load('tx.json');
const FROM_JS = load('tx-from-js.json');

const keyCache = new Map();
/** The key pair the vector names, derived from its seed as `Keypair::from_seed` does. */
function keyNamed(name) {
  if (!keyCache.has(name)) {
    const k = V.keys.find((x) => x.name === name);
    assert.ok(k, `no key ${name} in tx.json`);
    keyCache.set(name, keypairFromSeed(fromHex(k.seed, 32)));
  }
  return keyCache.get(name);
}

test('the wrap tag is the ledger\'s', () => {
  assert.equal(toHex(TAG_KEYWRAP), V.tags.keywrap);
});

test('keys from the testkit seeds have the public keys Rust derives, and stay non-extractable', async () => {
  for (const k of V.keys) {
    const kp = await keyNamed(k.name);
    assert.equal(toHex(kp.signing.publicKey), k.public_key, k.name);
    assert.equal(toHex(kp.x25519.publicKey), k.x25519_public, k.name);
    assert.equal(kp.signing.privateKey.extractable, false, k.name);
    assert.equal(kp.x25519.privateKey.extractable, false, k.name);
    assert.equal(toHex(await x25519PublicOf(kp.x25519.privateKey)), k.x25519_public, k.name);
  }
});

test('every wrap is Rust\'s byte for byte from the same ephemeral secret, and opens for its recipient', async () => {
  assert.ok(V.wraps.length >= 4);
  for (const w of V.wraps) {
    const me = (await keyNamed(w.recipient)).x25519;
    const archive = fromHex(w.archive, 32);
    const made = await wrapKeyWithEphemeral(fromHex(w.key, 32), archive, me.publicKey, fromHex(w.ephemeral_secret, 32));
    assert.equal(wrappedKeyToHex(made), w.wrapped, w.name);
    assert.equal(toHex((await importX25519Secret(fromHex(w.ephemeral_secret, 32))).publicKey), w.wrapped.slice(0, 64), w.name);
    const key = await unwrapKey(wrappedKeyFromHex(w.wrapped), archive, me);
    assert.equal(toHex(key), w.key, w.name);
  }
});

test('the wraps Rust refuses to open, the page refuses with the one KeyUnwrapError', async () => {
  assert.ok(V.bad_wraps.length >= 5);
  const messages = new Set();
  for (const b of V.bad_wraps) {
    assert.equal(b.error, 'key-unwrap');
    const me = (await keyNamed(b.recipient)).x25519;
    await assert.rejects(unwrapKey(wrappedKeyFromHex(b.wrapped), fromHex(b.archive, 32), me), (e) => {
      assert.ok(e instanceof KeyUnwrapError, `${b.name}: ${e}`);
      messages.add(e.message);
      return true;
    }, b.name);
  }
  assert.equal(messages.size, 1, 'the error must not say which check failed');
});

test('any flipped bit of a Rust wrap is refused', async () => {
  const w = V.wraps.find((x) => x.recipient === 'grantee');
  const me = (await keyNamed('grantee')).x25519;
  const bytes = fromHex(w.wrapped, 80);
  for (let i = 0; i < 80; i++) {
    const bad = bytes.slice();
    bad[i] ^= i === 31 ? 0x80 : 1 << (i % 8);
    const wrapped = { ephemeral: bad.slice(0, 32), sealed: bad.slice(32) };
    await assert.rejects(unwrapKey(wrapped, fromHex(w.archive, 32), me), KeyUnwrapError, `byte ${i}`);
  }
});

test('a wrap for a low-order recipient key is refused, as in Rust', async () => {
  for (const l of V.low_order_recipients) {
    assert.equal(l.error, 'low-order-key');
    await assert.rejects(wrapKeyWithEphemeral(new Uint8Array(32).fill(1), fromHex(V.wraps[0].archive, 32), fromHex(l.x25519, 32), new Uint8Array(32).fill(7)), LowOrderKeyError, l.name);
    await assert.rejects(wrapKey(new Uint8Array(32).fill(1), fromHex(V.wraps[0].archive, 32), fromHex(l.x25519, 32)), LowOrderKeyError, l.name);
  }
});

test('fresh wraps differ every time, open only for their recipient and archive, and re-wrap for a grantee', async () => {
  const patient = await keyNamed('patient');
  const grantee = await keyNamed('grantee');
  const [archive, other] = [new Uint8Array(32).fill(0xa1), new Uint8Array(32).fill(0xb2)];
  const key = crypto.getRandomValues(new Uint8Array(32));
  const a = await wrapKey(key, archive, patient.x25519.publicKey);
  const b = await wrapKey(key, archive, patient.x25519.publicKey);
  assert.ok(!sameWrappedKey(a, b));
  assert.equal(toHex(await unwrapKey(b, archive, patient.x25519)), toHex(key));
  await assert.rejects(unwrapKey(a, other, patient.x25519), KeyUnwrapError);
  await assert.rejects(unwrapKey(a, archive, grantee.x25519), KeyUnwrapError);
  const forGrantee = await rewrapKey(a, archive, patient.x25519, grantee.x25519.publicKey);
  assert.equal(toHex(await unwrapKey(forGrantee, archive, grantee.x25519)), toHex(key));
  await assert.rejects(unwrapKey(forGrantee, archive, patient.x25519), KeyUnwrapError);
  // A generated, non-extractable key receives wraps too.
  const device = await generateKeypair();
  const forDevice = await rewrapKey(forGrantee, archive, grantee.x25519, device.x25519.publicKey);
  assert.equal(toHex(await unwrapKey(forDevice, archive, device.x25519)), toHex(key));
  // A wrap of the wrong shape is the same refusal; a wrong-shaped archive id is the caller's error.
  await assert.rejects(unwrapKey({ ephemeral: a.ephemeral, sealed: a.sealed.slice(1) }, archive, patient.x25519), KeyUnwrapError);
  await assert.rejects(unwrapKey(a, archive.slice(1), patient.x25519), /archive id: expected 32 bytes/);
  assert.throws(() => wrappedKeyFromHex('00'.repeat(79)), /expected 80 bytes/);
});

test('the page\'s own wraps (tx-from-js.json, which the Rust test opens) open here too', async () => {
  assert.ok(FROM_JS.wraps.length >= 2);
  for (const w of FROM_JS.wraps) {
    const me = (await keypairFromSeed(fromHex(w.recipient_seed, 32))).x25519;
    assert.equal(toHex(await unwrapKey(wrappedKeyFromHex(w.wrapped), fromHex(w.archive, 32), me)), w.key, w.name);
  }
});
