// Bytes the Rust node produced (vectors/localnet-v1.json, captured from a running localnet by
// tools/capture_localnet.mjs): finalised blocks whose headers hash and whose commit
// certificates verify with WebCrypto Ed25519 against the genesis validators, and audit answers
// (absent logs, against the real state root) that verify. Also proves request.js signs requests
// the node accepts: every answer here was fetched with one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { decodeCanonical, fromHex, toHex } from '../js/bytes.js';
import {
  HEADER_LAYOUT, readBlockHeader, readCommitCertificate, validatorSetFromMembers, verifyHeaderCertificate,
} from '../js/chain.js';
import { decodeConsistencyAnswer } from '../js/audit.js';
import { verifyHistory } from '../js/history.js';

const v = JSON.parse(readFileSync(new URL('./vectors/localnet-v1.json', import.meta.url), 'utf8'));
const options = { headerLayout: HEADER_LAYOUT.V1 };

/** An empty finalised block: version, header, zero transactions, certificate. */
const decodeEmptyBlock = (hex) => decodeCanonical(fromHex(hex), 1 << 20, (r) => {
  const header = readBlockHeader(r, options);
  const txs = r.u32('tx count');
  if (txs !== 0) r.fail('only empty blocks are captured');
  return { header, certificate: readCommitCertificate(r) };
});

test('real blocks: each header is certified by more than two thirds of the genesis validators', async () => {
  const set = await validatorSetFromMembers(v.members);
  assert.equal(set.validators.length, 4);
  let prev = fromHex(v.chain_id);
  for (const b of v.blocks) {
    const { header, certificate } = decodeEmptyBlock(b.finalized_block);
    assert.equal(header.height, BigInt(b.height));
    assert.equal(toHex(header.prevHash), toHex(prev), 'blocks chain by header hash from the chain id');
    prev = await verifyHeaderCertificate(header, certificate, fromHex(v.chain_id), set, options);
    // One flipped signature bit and the certificate no longer verifies.
    certificate.signatures[0].signature[10] ^= 4;
    await assert.rejects(verifyHeaderCertificate(header, certificate, fromHex(v.chain_id), set, options), { code: 'bad-signature' });
  }
});

test('real audit answers verify, and not on another chain or with another layout', async () => {
  const trust = { chainId: fromHex(v.chain_id), validatorSet: await validatorSetFromMembers(v.members) };
  for (const a of v.audits) {
    const subject = a.subject.kind === 'break_glass' ? { kind: 'break_glass' } : { kind: a.subject.kind, id: fromHex(a.subject.id) };
    const ok = await verifyHistory({ answer: fromHex(a.answer), trust, expect: { subject, range: null }, headerLayout: HEADER_LAYOUT.V1 });
    assert.equal(ok.verified, true, ok.reason);
    assert.equal(ok.events.length, 0);
    const other = await verifyHistory({ answer: fromHex(a.answer), trust: { ...trust, chainId: new Uint8Array(32) }, expect: { subject, range: null }, headerLayout: HEADER_LAYOUT.V1 });
    assert.deepEqual([other.verified, other.code], [false, 'wrong-chain']);
    const layout = await verifyHistory({ answer: fromHex(a.answer), trust, expect: { subject, range: null }, headerLayout: HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH });
    assert.deepEqual([layout.verified, layout.code], [false, 'malformed']);
  }
  const c = decodeConsistencyAnswer(fromHex(v.consistency_from_0), options);
  assert.equal(c.fromSize, 0n);
  assert.deepEqual(c.proof, []);
});
