// Break-glass justifications opened in the page, on vectors/justification.json (written by
// ledger/tests/portal_justification_vectors.rs): the page computes Rust's request context from
// its inputs, encodes the node's JSON answer to the ledger's bytes and hash, checks the record
// against the hashes a verified event holds, and opens Rust's sealed justification with each
// reader's X25519 key to the clinician's words; it refuses every sealed justification Rust
// refuses, with Rust's verdict, and a node's answer altered anywhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { fromHex, toHex, utf8 } from '../js/bytes.js';
import { importX25519Secret } from '../js/keys.js';
import {
  JustificationError, TAG_JUSTIFICATION_COMMIT, TAG_JUSTIFICATION_CONTEXT, TAG_JUSTIFICATION_WRAP,
  accessRecordTxFromJson, checkAccessRecord, decodeAccessRecordTx, decodeSealed, encodeAccessRecordTx,
  encodeSignedAccessRequest, justificationContext, openJustification, parseTxAnswer, readJustification,
  sealedFromJson,
} from '../js/justification.js';

const V = JSON.parse(readFileSync(new URL('./vectors/justification.json', import.meta.url), 'utf8'));
const CHAIN_ID = fromHex(V.chain_id, 32);
const EVENT = { txHash: fromHex(V.tx_hash, 32), requestHash: fromHex(V.request_hash, 32) };
const answerBytes = (answer) => utf8(JSON.stringify(answer));

async function reader(name) {
  const r = V.readers.find((x) => x.name === name);
  const me = await importX25519Secret(fromHex(r.x25519_secret, 32));
  assert.equal(toHex(me.publicKey), r.x25519_public, name);
  return me;
}

function requestOf(j) {
  return {
    accessor: fromHex(j.accessor, 32), archive: fromHex(j.archive, 32), purpose: j.purpose,
    requestedAtMs: BigInt(j.requested_at_ms), requestId: fromHex(j.request_id, 16),
  };
}

function rejects(promise, code, what) {
  return assert.rejects(promise, (e) => {
    assert.ok(e instanceof JustificationError, `${what}: ${e}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  });
}

test('the tags and the request context are Rust\'s', async () => {
  assert.equal(toHex(TAG_JUSTIFICATION_CONTEXT), V.tags.context);
  assert.equal(toHex(TAG_JUSTIFICATION_COMMIT), V.tags.commit);
  assert.equal(toHex(TAG_JUSTIFICATION_WRAP), V.tags.wrap);
  for (const r of [V.request, V.moved_request]) {
    assert.equal(r.chain_id, V.chain_id);
    assert.equal(toHex(await justificationContext(CHAIN_ID, requestOf(r))), r.context);
  }
});

test('the node\'s JSON answer encodes to the ledger\'s bytes and hashes', async () => {
  const signed = accessRecordTxFromJson(V.answer.tx);
  const encoded = encodeAccessRecordTx(signed);
  assert.equal(toHex(encoded), V.encoded);
  // The bytes decode back to the same transaction.
  assert.deepEqual(decodeAccessRecordTx(fromHex(V.encoded)), signed);
  assert.equal(toHex(encodeSignedAccessRequest(signed.tx.body.request)), V.signed_request);
  assert.deepEqual(decodeSealed(fromHex(V.sealed_borsh)), sealedFromJson(V.sealed));
  const { request } = await checkAccessRecord(parseTxAnswer(answerBytes(V.answer)), EVENT);
  assert.deepEqual(request.justification, sealedFromJson(V.sealed));
  assert.equal(signed.tx.body.outcome.outcome, 'break_glass');
});

test('the regulator and the patient open it to the clinician\'s words', async () => {
  for (const name of ['regulator', 'patient']) {
    const text = await readJustification({ answer: answerBytes(V.answer), event: EVENT, chainId: CHAIN_ID, me: await reader(name) });
    assert.equal(text, V.text, name);
  }
  await rejects(
    readJustification({ answer: answerBytes(V.answer), event: EVENT, chainId: CHAIN_ID, me: await reader('stranger') }),
    'not-a-reader', 'stranger',
  );
});

test('every sealed justification Rust refuses, the page refuses, with Rust\'s verdict', async () => {
  assert.ok(V.refused.length >= 6);
  for (const c of V.refused) {
    await rejects(openJustification(sealedFromJson(c.sealed), fromHex(c.context, 32), await reader(c.reader)), c.want, c.name);
  }
});

test('a node that alters the access record, or names another, shows no text', async () => {
  const me = await reader('regulator');
  const read = (answer, event = EVENT) => readJustification({ answer: answerBytes(answer), event, chainId: CHAIN_ID, me });
  const altered = (edit) => {
    const a = structuredClone(V.answer);
    edit(a.tx);
    return a;
  };
  const sealedHex = V.answer.tx.tx.body.request.request.justification.ciphertext;
  const flip = (h, at) => h.slice(0, at) + (h[at] === '0' ? '1' : '0') + h.slice(at + 1);
  // Another ciphertext: not the transaction the log names.
  await rejects(read(altered((t) => { t.tx.body.request.request.justification.ciphertext = flip(sealedHex, 50); })), 'not-the-logged-record', 'ciphertext');
  // The justification of another request moved in: the same.
  await rejects(read(altered((t) => { t.tx.body.request.request.request_id[0] ^= 1; })), 'not-the-logged-record', 'request id');
  // A justification dropped.
  await rejects(read(altered((t) => { t.tx.body.request.request.justification = null; })), 'not-the-logged-record', 'dropped');
  // Another transaction altogether, or an answer that is no access record.
  await rejects(read(altered((t) => { t.tx.nonce += 1; })), 'not-the-logged-record', 'nonce');
  await rejects(read(altered((t) => { t.tx.body = { kind: 'revoke_consent', grant: '00'.repeat(32) }; })), 'not-the-logged-record', 'kind');
  await rejects(read(altered((t) => { t.tx.body.extra = 1; })), 'malformed', 'unknown field');
  await rejects(read(altered((t) => { t.tx.chain_id = t.tx.chain_id.slice(1); })), 'malformed', 'short chain id');
  await rejects(read(altered((t) => { t.tx.nonce = -1; })), 'malformed', 'negative nonce');
  await rejects(readJustification({ answer: utf8('<html>'), event: EVENT, chainId: CHAIN_ID, me }), 'malformed', 'not JSON');
  // The record is the logged one, but the event names another request: refused too.
  await rejects(read(V.answer, { ...EVENT, requestHash: new Uint8Array(32) }), 'not-the-logged-request', 'request hash');
  // On another chain the context differs: it does not open.
  await rejects(readJustification({ answer: answerBytes(V.answer), event: EVENT, chainId: new Uint8Array(32), me }), 'unreadable', 'chain');
  // The envelope is the node's word and is not needed.
  assert.equal(await read({ tx: V.answer.tx }), V.text);
});
