// history.js on the vectors in vectors/history-*.json: honest answers verify (whole, range,
// absent log, break-glass, over a kept checkpoint) and every lie is refused with its reason:
// uncertified or wrongly certified header, wrong chain, dropped, altered and reordered entries,
// state proof mismatch, a gap in a range, a history inconsistent with the kept checkpoint.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshWriter, fromHex, toHex } from '../js/bytes.js';
import { validatorSetFromMembers } from '../js/chain.js';
import {
  checkpointFromJson, decodeAuditAnswer, decodeConsistencyAnswer, encodeAuditAnswer,
  encodeConsistencyAnswer, writeAccessEvent,
} from '../js/audit.js';
import { REFUSALS, needsConsistencyProof, verifyHistory } from '../js/history.js';
import { makeVectors } from '../tools/make_vectors.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const FILES = ['history-v1.json', 'history-next-members.json'];

async function run(v, c) {
  const trust = { chainId: fromHex(v.chain_id), validatorSet: await validatorSetFromMembers(v.members) };
  const subject = c.subject.kind === 'break_glass' ? { kind: 'break_glass' } : { kind: c.subject.kind, id: fromHex(c.subject.id) };
  return verifyHistory({
    answer: fromHex(c.answer),
    trust,
    expect: { subject, range: c.range ? c.range.map(BigInt) : null },
    checkpoint: c.checkpoint ? checkpointFromJson(c.checkpoint) : null,
    consistency: c.consistency ? fromHex(c.consistency) : null,
    nowMs: c.now_ms === null ? undefined : BigInt(c.now_ms),
    maxAgeMs: c.max_age_ms === null ? undefined : BigInt(c.max_age_ms),
    headerLayout: v.header_layout,
  });
}

for (const file of FILES) {
  const v = load(file);

  test(`${file}: every case ends as the vector wants`, async () => {
    const codes = new Set();
    for (const c of v.cases) {
      const got = await run(v, c);
      if (c.want.verified) {
        assert.equal(got.verified, true, `${c.name}: ${got.reason}`);
        assert.equal(got.events.length, c.want.events, c.name);
        assert.equal(got.logSize, BigInt(c.want.log_size), c.name);
        if (c.want.checkpoint_height) assert.equal(got.checkpoint.height, BigInt(c.want.checkpoint_height), c.name);
      } else {
        assert.deepEqual({ verified: got.verified, code: got.code }, { verified: false, code: c.want.code }, `${c.name}: ${got.reason}`);
        assert.ok(got.reason.startsWith(REFUSALS[c.want.code]), got.reason);
        codes.add(got.code);
      }
    }
    for (const want of ['uncertified-header', 'wrong-chain', 'dropped-entry', 'altered-entry', 'reordered-entry', 'state-proof', 'inconsistent-checkpoint']) {
      assert.ok(codes.has(want), `no vector refused with ${want}`);
    }
  });

  test(`${file}: answers decode and re-encode to the same bytes`, () => {
    const options = { headerLayout: v.header_layout };
    for (const c of v.cases) {
      const bytes = fromHex(c.answer);
      assert.deepEqual(encodeAuditAnswer(decodeAuditAnswer(bytes, options), options), bytes, c.name);
      if (c.consistency) {
        const cb = fromHex(c.consistency);
        assert.deepEqual(encodeConsistencyAnswer(decodeConsistencyAnswer(cb, options), options), cb);
      }
    }
  });

  test(`${file}: a truncated, extended or oversized answer is malformed, never partly verified`, async () => {
    const c = v.cases.find((x) => x.name === 'honest-whole');
    const bytes = fromHex(c.answer);
    for (const cut of [0, 1, 100, bytes.length - 1]) {
      const got = await run(v, { ...c, answer: toHex(bytes.subarray(0, cut)) });
      assert.deepEqual([got.verified, got.code], [false, 'malformed'], `cut at ${cut}`);
    }
    const got = await run(v, { ...c, answer: toHex(Uint8Array.of(...bytes, 0)) });
    assert.deepEqual([got.verified, got.code], [false, 'malformed']);
    assert.match(got.reason, /trailing/);
  });
}

test('the vector files hold what tools/make_vectors.mjs makes today', async () => {
  // Who wrote a file (this maker or the Rust generator) is not part of what it says.
  const strip = (doc) => ({ ...doc, source: null });
  for (const [name, doc] of Object.entries(await makeVectors())) {
    assert.deepEqual(strip(JSON.parse(JSON.stringify(doc))), strip(load(name)), `${name} differs: rerun tools/make_vectors.mjs`);
  }
});

test('the page learns when it must fetch a consistency proof first', async () => {
  const v = load('history-next-members.json');
  const c = v.cases.find((x) => x.name === 'checkpoint-advanced-over-consistency-proof');
  const answer = decodeAuditAnswer(fromHex(c.answer));
  const cp = checkpointFromJson(c.checkpoint);
  assert.equal(needsConsistencyProof(answer, cp), true);
  assert.equal(needsConsistencyProof(answer, null), false);
  assert.equal(needsConsistencyProof(answer, { ...cp, accessLogSize: 0n }), false);
  assert.equal(needsConsistencyProof(answer, { ...cp, height: answer.header.height }), false);
});

test('an event encodes as the ledger writes AccessEvent', () => {
  // Field order and tags: height, time, tx hash, request hash, patient, archive, category (u8
  // discriminant), custodian, accessor, Option<StaffRef>, purpose, Option<grant>, outcome tag.
  const e = {
    height: 1n, timeMs: 2n, txHash: new Uint8Array(32), requestHash: new Uint8Array(32),
    patient: new Uint8Array(32), archive: new Uint8Array(32), category: 'ultrasound',
    custodian: new Uint8Array(32), accessor: new Uint8Array(32),
    staff: { id: new Uint8Array(16).fill(5), institution: new Uint8Array(32), role: 'midwife' },
    purpose: 'ETREAT', grant: null, outcome: { kind: 'denied', reason: 'grant_revoked' },
  };
  const hex = toHex(writeAccessEvent(new BorshWriter(), e).toBytes());
  assert.equal(hex.length, 2 * (8 + 8 + 32 * 4 + 1 + 32 + 32 + 1 + 16 + 32 + 1 + 1 + 1 + 1 + 1));
  assert.equal(hex.slice(2 * 144, 2 * 145), '02', 'category ultrasound = 2');
  assert.ok(hex.endsWith('02' + '00' + '01' + '04'), 'ETREAT = 2, no grant, Denied = 1, GrantRevoked = 4');
});

test("the page's own mistakes throw instead of passing for a node's lie", async () => {
  const v = load('history-next-members.json');
  const c = v.cases[0];
  const trust = { chainId: fromHex(v.chain_id), validatorSet: await validatorSetFromMembers(v.members) };
  const expect = { subject: { kind: 'patient', id: fromHex(c.subject.id) }, range: null };
  await assert.rejects(verifyHistory({ answer: fromHex(c.answer), trust: { ...trust, chainId: new Uint8Array(31) }, expect }), /trusted chain id/);
  await assert.rejects(verifyHistory({ answer: fromHex(c.answer), trust: { chainId: trust.chainId }, expect }), /validatorSet/);
  await assert.rejects(verifyHistory({ answer: fromHex(c.answer), trust }), /expect.subject/);
  assert.equal((await verifyHistory({ answer: fromHex(c.answer), trust, expect })).verified, true);
});
