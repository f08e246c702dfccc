// tx.js and keys.js on vectors/tx.json (written by ledger/tests/portal_vectors.rs): the page
// builds every transaction of the vectors from its fields (opening the patient's wraps and
// wrapping the keys again for the grantee, proving a new key pair), and gets Rust's Borsh
// bytes, signing bytes, signature, canonical bytes, hash and grant id; it decodes them back to
// the same fields; and it reaches Rust's verdict on every transaction Rust refuses. Every
// expectation comes from the vector file, so a change to the testkit's chain or keys is a
// regeneration, not an edit here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshWriter, fromHex, toHex } from '../js/bytes.js';
import { TAG_KEY_PROOF, keyProofSigningBytes, keypairFromSeed, proveKeys, verifyKeyProof } from '../js/keys.js';
import { unwrapKey, wrapKeyWithEphemeral, wrappedKeyFromHex } from '../js/keywrap.js';
import {
  TAG_TRANSACTION, UnsupportedKindError, bodyFromJson, bodyToJson, decodeSignedTransaction,
  encodeSignedTransaction, encodeTransaction, grantId, nextNonce, signTransaction, transactionSigningBytes,
  transactionToJson, transactionVerdict,
} from '../js/tx.js';

const load = (name) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const V = load('tx.json');
const FROM_JS = load('tx-from-js.json');
const CHAIN_ID = fromHex(V.chain_id, 32);

const keyCache = new Map();
function keyNamed(name) {
  if (!keyCache.has(name)) {
    const k = V.keys.find((x) => x.name === name);
    assert.ok(k, `no key ${name} in tx.json`);
    keyCache.set(name, keypairFromSeed(fromHex(k.seed, 32)));
  }
  return keyCache.get(name);
}
const wrapNamed = (name) => V.wraps.find((w) => w.name === name);

/** The body as her page builds it: archive keys opened from her wraps and wrapped again. */
async function buildBody(j) {
  if (j.kind === 'grant_consent') {
    const archiveKeys = [];
    for (const k of j.archive_keys) {
      const target = wrapNamed(k.wrap);
      const source = wrapNamed(k.rewraps);
      const archive = fromHex(k.archive, 32);
      const clear = await unwrapKey(wrappedKeyFromHex(source.wrapped), archive, (await keyNamed(source.recipient)).x25519);
      const to = (await keyNamed(target.recipient)).x25519.publicKey;
      // The vector's wrap was made with a fixed ephemeral secret; the page uses a fresh one.
      archiveKeys.push({ archive, key: await wrapKeyWithEphemeral(clear, archive, to, fromHex(target.ephemeral_secret, 32)) });
      clear.fill(0);
    }
    return { ...bodyFromJson(j), archiveKeys };
  }
  if (j.kind === 'rotate_patient_key') {
    const device = V.keys.find((k) => k.public_key === j.new_key);
    assert.ok(device, 'the new key is one of the vector keys');
    const proof = await proveKeys(await keyNamed(device.name), CHAIN_ID);
    return { kind: j.kind, ...proof };
  }
  return bodyFromJson(j);
}

/** The vector's body JSON without the fields that only say where its parts came from. */
function plainBody(j) {
  const out = structuredClone(j);
  delete out.proof_signing_bytes;
  if (out.archive_keys) out.archive_keys = out.archive_keys.map(({ archive, key }) => ({ archive, key }));
  return out;
}

test('the signing tags are the ledger\'s', () => {
  assert.equal(toHex(TAG_TRANSACTION), V.tags.transaction);
  assert.equal(toHex(TAG_KEY_PROOF), V.tags.key_proof);
});

test('every transaction built in the page is Rust\'s: bytes, signing bytes, signature, hash, grant id', async () => {
  assert.ok(V.transactions.length >= 6);
  const kinds = new Set();
  for (const t of V.transactions) {
    kinds.add(t.body.kind);
    const signer = await keyNamed(t.signer);
    const body = await buildBody(t.body);
    const unsigned = { chainId: CHAIN_ID, signer: signer.signing.publicKey, nonce: BigInt(t.nonce), body };
    assert.equal(toHex(encodeTransaction(unsigned)), t.borsh, `${t.name}: borsh`);
    assert.equal(toHex(transactionSigningBytes(unsigned)), t.signing_bytes, `${t.name}: signing bytes`);
    if (body.kind === 'rotate_patient_key') {
      assert.equal(toHex(keyProofSigningBytes(body.newKey, body.newX25519, CHAIN_ID)), t.body.proof_signing_bytes, t.name);
      assert.ok(await verifyKeyProof(body.newKey, body.newX25519, body.proof, CHAIN_ID), t.name);
    }
    const signed = await signTransaction({ chainId: CHAIN_ID, nonce: BigInt(t.nonce), body }, signer.signing);
    assert.equal(toHex(signed.signature), t.signature, `${t.name}: signature`);
    assert.equal(toHex(signed.encoded), t.encoded, `${t.name}: encoded`);
    assert.equal(toHex(signed.hash), t.hash, `${t.name}: hash`);
    if (t.grant_id) {
      const patient = (await keyNamed(t.grant_id.patient)).signing.publicKey;
      assert.equal(toHex(await grantId(patient, BigInt(t.nonce))), t.grant_id.id, `${t.name}: grant id`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['grant_consent', 'revoke_consent', 'rotate_patient_key']);
});

test('every transaction decodes to the fields she signed, encodes back, and verifies', async () => {
  for (const t of V.transactions) {
    const bytes = fromHex(t.encoded);
    const signed = decodeSignedTransaction(bytes);
    const json = transactionToJson(signed.tx);
    assert.deepEqual(json, { chain_id: V.chain_id, signer: V.keys.find((k) => k.name === t.signer).public_key, nonce: t.nonce, body: plainBody(t.body) }, t.name);
    assert.deepEqual(bodyToJson(bodyFromJson(json.body)), json.body, t.name);
    assert.equal(toHex(encodeSignedTransaction(signed)), t.encoded, t.name);
    const verdict = await transactionVerdict(bytes, CHAIN_ID);
    assert.ok(verdict.ok, `${t.name}: ${verdict.reason}`);
    assert.equal(toHex(verdict.hash), t.hash, t.name);
  }
});

test('the page reaches Rust\'s verdict on every transaction Rust refuses', async () => {
  assert.ok(V.invalid_transactions.length >= 10);
  for (const c of V.invalid_transactions) {
    const verdict = await transactionVerdict(fromHex(c.encoded), CHAIN_ID);
    assert.equal(verdict.ok, false, c.name);
    assert.equal(verdict.code, c.error, `${c.name}: ${verdict.reason}`);
  }
});

test('grant ids are Rust\'s, nonces above 2^53 included', async () => {
  for (const g of V.grant_ids) {
    assert.equal(toHex(await grantId(fromHex(g.patient, 32), BigInt(g.nonce))), g.id, g.nonce);
  }
  await assert.rejects(async () => grantId(fromHex(V.grant_ids[0].patient, 32), 1n << 64n), /above u64|out of range/);
});

test('the page refuses to encode what the ledger would refuse to decode', () => {
  const t = V.transactions.find((x) => x.body.kind === 'grant_consent');
  const base = { chainId: CHAIN_ID, signer: fromHex(V.keys[0].public_key, 32), nonce: BigInt(t.nonce), body: bodyFromJson(t.body) };
  const withBody = (patch) => ({ ...base, body: { ...base.body, ...patch } });
  assert.throws(() => encodeTransaction(withBody({ purposes: Array(17).fill('TREAT') })), /purposes: 17 items exceed 16/);
  assert.throws(() => encodeTransaction(withBody({ purposes: ['TREATS'] })), /purpose: unknown code TREATS/);
  assert.throws(() => encodeTransaction(withBody({ roles: ['surgeon'] })), /role: unknown code surgeon/);
  assert.throws(() => encodeTransaction(withBody({ scope: { kind: 'some' } })), /scope: unknown kind/);
  assert.throws(() => encodeTransaction(withBody({ grantee: new Uint8Array(31) })), /grantee: expected 32 bytes/);
  assert.throws(() => encodeTransaction(withBody({ expiresAtMs: -1n })), /out of range/);
  assert.throws(() => encodeTransaction({ ...base, body: { kind: 'enrol_patient' } }), UnsupportedKindError);
});

test('decoding is bounded and strict beyond the vectors', async () => {
  const t = V.transactions.find((x) => x.body.kind === 'revoke_consent');
  const bytes = fromHex(t.encoded);
  assert.throws(() => decodeSignedTransaction(bytes, bytes.length - 1), /exceed/);
  // A ledger kind the page does not read: refused as such, not as garbage.
  const enrol = bytes.slice();
  enrol[73] = 0;
  assert.throws(() => decodeSignedTransaction(enrol), UnsupportedKindError);
  assert.equal((await transactionVerdict(enrol, CHAIN_ID)).code, 'unsupported-kind');
  // A grant's archive keys past their bound are refused before they are read.
  const w = new BorshWriter().fixed(CHAIN_ID, 32).fixed(new Uint8Array(32), 32).u64(1n).u8(2).fixed(new Uint8Array(32), 32)
    .u8(0).u32(1).u8(1).u32(0).u64(1n).u64(2n).u32(1025);
  assert.throws(() => decodeSignedTransaction(w.toCanonical()), /archive keys of length 1025 exceeds the bound 1024/);
});

test('nonces follow the clock in microseconds and always grow', () => {
  assert.equal(nextNonce(null, 1_780_000_000_000), 1_780_000_000_000_000n);
  assert.equal(nextNonce(5n, 1_780_000_000_000), 1_780_000_000_000_000n);
  assert.equal(nextNonce(1_780_000_000_000_500n, 1_780_000_000_000), 1_780_000_000_000_501n);
  assert.throws(() => nextNonce((1n << 64n) - 1n, 0), /exhausted/);
});

test('the page\'s own transactions (tx-from-js.json, which the Rust test verifies) verify here too', async () => {
  const chainId = fromHex(FROM_JS.chain_id, 32);
  assert.ok(FROM_JS.transactions.length >= 3);
  for (const t of FROM_JS.transactions) {
    const verdict = await transactionVerdict(fromHex(t.encoded), chainId);
    assert.ok(verdict.ok, `${t.name}: ${verdict.reason}`);
    assert.equal(toHex(verdict.hash), t.hash, t.name);
    if (t.grant_id) {
      assert.equal(toHex(await grantId(fromHex(t.grant_id.patient, 32), verdict.tx.nonce)), t.grant_id.id, t.name);
    }
  }
});
