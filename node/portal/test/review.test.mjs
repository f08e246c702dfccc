// The regulator page's review transactions and the events a review logs, on vectors/review.json
// (written by ledger/tests/portal_review_vectors.rs): the page builds each review from its
// fields with the regulator's seed and gets Rust's Borsh bytes, signing bytes, signature,
// canonical bytes and hash; it decodes them back to the same fields; it refuses what the ledger
// refuses; and it reads a review in a history as the ledger wrote it, to the same leaf hash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshWriter, decodeCanonical, fromHex, toHex } from '../js/bytes.js';
import { eventLeafHash, readAccessEvent, writeAccessEvent } from '../js/audit.js';
import { subjectMatches } from '../js/history.js';
import { keypairFromSeed } from '../js/keys.js';
import {
  bodyFromJson, bodyToJson, decodeSignedTransaction, encodeTransaction, signTransaction,
  transactionSigningBytes, transactionVerdict, writeTxBody,
} from '../js/tx.js';

const V = JSON.parse(readFileSync(new URL('./vectors/review.json', import.meta.url), 'utf8'));
const CHAIN_ID = fromHex(V.chain_id, 32);

test('the page signs a review byte for byte as the ledger does', async () => {
  const regulator = (await keypairFromSeed(fromHex(V.regulator.seed, 32))).signing;
  assert.equal(toHex(regulator.publicKey), V.regulator.public_key);
  assert.equal(V.transactions.length, 2);
  for (const c of V.transactions) {
    const body = bodyFromJson(c.body);
    const signed = await signTransaction({ chainId: CHAIN_ID, nonce: BigInt(c.nonce), body }, regulator);
    assert.equal(toHex(encodeTransaction(signed.tx)), c.borsh, c.name);
    assert.equal(toHex(transactionSigningBytes(signed.tx)), c.signing_bytes, c.name);
    assert.equal(toHex(signed.signature), c.signature, c.name);
    assert.equal(toHex(signed.encoded), c.encoded, c.name);
    assert.equal(toHex(signed.hash), c.hash, c.name);
    // And back: the same fields, and the ledger's verdict.
    const back = decodeSignedTransaction(fromHex(c.encoded));
    assert.deepEqual(bodyToJson(back.tx.body), c.body, c.name);
    const verdict = await transactionVerdict(fromHex(c.encoded), CHAIN_ID);
    assert.ok(verdict.ok, `${c.name}: ${verdict.reason}`);
  }
});

test('a review with a decision code the ledger does not know is refused', async () => {
  for (const c of V.refused) {
    const verdict = await transactionVerdict(fromHex(c.encoded), CHAIN_ID);
    assert.equal(verdict.ok, false, c.name);
    assert.equal(verdict.code, c.want, c.name);
  }
  // Nor does the page build one.
  const body = bodyFromJson({ kind: 'review_access', entry: '00'.repeat(32), decision: 'maybe' });
  assert.throws(() => writeTxBody(new BorshWriter(), body), /unknown code maybe/);
});

test('a review in a history reads and hashes as the ledger wrote it', async () => {
  for (const c of V.events) {
    const bytes = fromHex(c.bytes);
    const e = decodeCanonical(bytes, 4096, readAccessEvent, 'event');
    assert.equal(e.outcome.kind, 'reviewed', c.name);
    assert.equal(toHex(e.outcome.entry), c.entry, c.name);
    assert.equal(e.outcome.decision, c.decision, c.name);
    assert.equal(toHex(e.accessor), c.accessor, c.name);
    assert.equal(e.purpose, 'HSYSADMIN', c.name);
    assert.equal(toHex(writeAccessEvent(new BorshWriter(), e).toCanonical()), c.bytes, c.name);
    assert.equal(toHex(await eventLeafHash(e)), c.leaf_hash, c.name);
    // A review belongs in the break-glass log and in the patient's.
    assert.ok(subjectMatches({ kind: 'break_glass' }, e), c.name);
    assert.ok(subjectMatches({ kind: 'patient', id: e.patient }, e), c.name);
  }
});
