// sets.js on vectors/sets.json, written by the Rust implementation (ledger/tests/portal_vectors/
// sets.rs): member set bytes and hashes, the changes a page follows from genesis, the lists it
// must refuse (a skipped or replayed change, a certificate of a rotated-out or removed key, a
// header naming another set, an invalid set, another chain), each with the Rust verdict, and
// headers judged by the followed sets and by genesis alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BorshReader, fromHex, toHex } from '../js/bytes.js';
import { readBlockHeader, readCommitCertificate } from '../js/chain.js';
import { validatorSetFromMembers } from '../js/chain.js';
import { verifyHeaderCertificate } from '../js/chain.js';
import {
  SetError, Sets, decodeSetChanges, encodeMemberSet, memberSetHash, readMemberSet, readSetChange,
} from '../js/sets.js';

const v = JSON.parse(readFileSync(new URL('./vectors/sets.json', import.meta.url), 'utf8'));
const chainId = fromHex(v.chain_id, 32);

const decode = (hex, read) => {
  const r = new BorshReader(fromHex(hex), 'vector');
  const out = read(r);
  r.finish();
  return out;
};
const genesis = () => Sets.fromSet(chainId, decode(v.genesis.borsh, readMemberSet));

test('member sets decode, re-encode byte for byte and hash as Rust does', async () => {
  for (const s of [v.genesis, ...v.sets]) {
    const set = decode(s.borsh, readMemberSet);
    assert.equal(set.epoch, BigInt(s.epoch));
    assert.equal(toHex(encodeMemberSet(set)), s.borsh);
    assert.equal(toHex(await memberSetHash(set)), s.hash);
  }
  // A rotated key and consensus timeouts are carried.
  const set2 = decode(v.sets[1].borsh, readMemberSet);
  assert.ok(set2.members[1].signingKey instanceof Uint8Array);
  assert.equal(set2.timeouts.timeout_propose_ms, 3000n);
});

test('each change decodes alone and inside the node\'s answer', () => {
  const all = decodeSetChanges(fromHex(v.changes));
  assert.equal(all.length, v.change_borsh.length);
  v.change_borsh.forEach((hex, i) => {
    const one = decode(hex, readSetChange);
    assert.equal(one.header.height, all[i].header.height);
  });
  assert.throws(() => decodeSetChanges(fromHex(`${v.changes}00`)), SetError);
  assert.throws(() => decodeSetChanges(fromHex(`02${v.changes.slice(2)}`)), SetError);
});

test('the page follows every change from genesis, each set from the height it takes effect', async () => {
  const sets = await genesis();
  await sets.followAll(decodeSetChanges(fromHex(v.changes)));
  assert.equal(sets.latest().epoch, 3n);
  for (const s of v.sets) {
    const first = BigInt(s.first_height);
    assert.equal(toHex(sets.at(first).hash), s.hash);
    assert.equal(sets.at(first - 1n).epoch, BigInt(s.epoch) - 1n);
  }
  assert.equal(toHex(sets.at(0n).hash), v.genesis.hash);
  // Following the same list again changes nothing; a list that differs from what was followed is refused.
  await sets.followAll(decodeSetChanges(fromHex(v.changes)));
  assert.equal(sets.sets.length, 4);
  const other = decodeSetChanges(fromHex(v.bad_changes.find((b) => b.name === 'replays-a-change').encoded));
  await assert.rejects(() => sets.followAll(other.slice(1).concat(other.slice(1))), (e) => e instanceof SetError);
});

for (const bad of v.bad_changes) {
  test(`a list of changes that ${bad.name} is refused (${bad.error}), as Rust refuses it`, async () => {
    const sets = await genesis();
    const changes = decodeSetChanges(fromHex(bad.encoded));
    await assert.rejects(() => sets.followAll(changes), (e) => e instanceof SetError && e.code === bad.error, `wanted ${bad.error}`);
    // A refused change leaves the sets as they were before it.
    assert.ok(sets.sets.length <= changes.length);
    assert.equal(sets.changes.length, sets.sets.length - 1);
  });
}

test('headers are judged by the set of their height, as Rust judges them', async () => {
  const sets = await genesis();
  await sets.followAll(decodeSetChanges(fromHex(v.changes)));
  const only = await genesis();
  for (const h of v.headers) {
    const header = decode(h.header, readBlockHeader);
    const cert = decode(h.certificate, readCommitCertificate);
    for (const [trust, want] of [[sets, h.error], [only, h.error_genesis_only]]) {
      const got = await trust.checkHeader(header, cert).then(() => null, (e) => {
        assert.ok(e instanceof SetError, e.stack);
        return e.code;
      });
      assert.equal(got, want, `${h.name}: wanted ${want}, got ${got}`);
    }
  }
});

test('a certificate of the rotated-out key verified against the old validators alone would pass: the set is what refuses it', async () => {
  const header = v.headers.find((h) => h.name === 'epoch-2-rotated-out-key');
  const h = decode(header.header, readBlockHeader);
  const cert = decode(header.certificate, readCommitCertificate);
  const set1 = decode(v.sets[0].borsh, readMemberSet);
  const old = await validatorSetFromMembers(set1.members.map((m) => ({ publicKey: m.publicKey, votingPower: m.votingPower })));
  await verifyHeaderCertificate(h, cert, chainId, old);
  assert.equal(header.error, 'uncertified');
});

test('a history verified with the followed sets ends as with the genesis validators, while no change is in force', async () => {
  const { checkpointFromJson } = await import('../js/audit.js');
  const { verifyHistory } = await import('../js/history.js');
  const h = JSON.parse(readFileSync(new URL('./vectors/history-next-members.json', import.meta.url), 'utf8'));
  assert.equal(h.chain_id, v.chain_id, 'both files use the testkit chain');
  const sets = await genesis();
  const run = (c, trust) => verifyHistory({
    answer: fromHex(c.answer),
    trust,
    expect: { subject: c.subject.kind === 'break_glass' ? { kind: 'break_glass' } : { kind: c.subject.kind, id: fromHex(c.subject.id) }, range: c.range ? c.range.map(BigInt) : null },
    checkpoint: c.checkpoint ? checkpointFromJson(c.checkpoint) : null,
    consistency: c.consistency ? fromHex(c.consistency) : null,
    nowMs: c.now_ms === null ? undefined : BigInt(c.now_ms),
    maxAgeMs: c.max_age_ms === null ? undefined : BigInt(c.max_age_ms),
  });
  for (const c of h.cases) {
    const got = await run(c, { chainId, sets });
    assert.equal(got.verified, c.want.verified, `${c.name}: ${got.reason}`);
    if (!c.want.verified) assert.equal(got.code, c.want.code, `${c.name}: ${got.reason}`);
  }
  // After the changes, the same headers (heights 10 and 12) name the genesis set where epoch 2
  // is in force: refused, never judged by the old validators.
  const followed = await genesis();
  await followed.followAll(decodeSetChanges(fromHex(v.changes)));
  const honest = h.cases.find((c) => c.name === 'honest-whole');
  const got = await run(honest, { chainId, sets: followed });
  assert.equal(got.verified, false);
  assert.ok(['uncertified-header', 'unfollowed-set'].includes(got.code), got.code);
});
