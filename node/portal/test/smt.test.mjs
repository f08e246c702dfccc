// smt.js: proofs of presence and absence from the fixture prover (shaped as the ledger's
// compressed tree) verify; every wrong claim is refused with the ledger's error kind; the Borsh
// layout round-trips and its decoder refuses a count that disagrees with the bitmap.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { BorshWriter, sha256, toHex, utf8 } from '../js/bytes.js';
import {
  EMPTY_HASH, decodeSmtProof, patientLogKey, prefixOf, smtInternalHash, smtLeafHash,
  verifySmtProof, writeSmtProof,
} from '../js/smt.js';
import { sparseTree } from '../tools/fixtures.mjs';

async function entries(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ keyHash: await sha256(utf8(`key ${i}`)), valueHash: await sha256(utf8(`value ${i}`)) });
  }
  return out;
}

test('hashing rules: tags 0x00 and 0x01, empty subtree is 32 zero bytes', async () => {
  const k = new Uint8Array(32).fill(1);
  const v = new Uint8Array(32).fill(2);
  assert.deepEqual(await smtLeafHash(k, v), await sha256(Uint8Array.of(0, ...k, ...v)));
  assert.deepEqual(await smtInternalHash(k, v), await sha256(Uint8Array.of(1, ...k, ...v)));
  assert.notDeepEqual(await smtLeafHash(k, v), await smtInternalHash(k, v));
  assert.equal(toHex(EMPTY_HASH), '00'.repeat(32));
  assert.equal(toHex(prefixOf(new Uint8Array(32).fill(0xff), 3)), 'e0' + '00'.repeat(31));
  assert.equal(toHex(patientLogKey(new Uint8Array(32).fill(7))), '48' + '07'.repeat(32));
});

test('presence and absence proofs verify in trees of 0 to 12 keys', async () => {
  const all = await entries(12);
  const absent = await sha256(utf8('absent key'));
  for (let n = 0; n <= all.length; n++) {
    const tree = sparseTree(all.slice(0, n));
    const root = await tree.root();
    if (n === 0) assert.deepEqual(root, EMPTY_HASH);
    for (const e of all.slice(0, n)) {
      const proof = await tree.prove(e.keyHash);
      await verifySmtProof(proof, root, e.keyHash, e.valueHash);
      await assert.rejects(verifySmtProof(proof, root, e.keyHash, null), { code: 'key-present' });
      await assert.rejects(verifySmtProof(proof, root, e.keyHash, EMPTY_HASH), { code: 'value-mismatch' });
      // Round trip through the Borsh layout.
      const bytes = writeSmtProof(new BorshWriter(), proof).toBytes();
      assert.deepEqual(decodeSmtProof(bytes), proof);
    }
    const proof = await tree.prove(absent);
    await verifySmtProof(proof, root, absent, null);
    await assert.rejects(verifySmtProof(proof, root, absent, EMPTY_HASH), { code: 'key-absent' });
    await assert.rejects(verifySmtProof(proof, new Uint8Array(32).fill(5), absent, null), { code: 'root-mismatch' });
  }
});

test('a proof for one key does not prove another', async () => {
  const all = await entries(8);
  const tree = sparseTree(all);
  const root = await tree.root();
  const proof = await tree.prove(all[0].keyHash);
  let refused = 0;
  for (const e of all.slice(1)) {
    await assert.rejects(verifySmtProof(proof, root, e.keyHash, all[0].valueHash));
    refused++;
  }
  assert.equal(refused, 7);
});

test('malformed proofs are refused by the decoder', async () => {
  const all = await entries(5);
  const tree = sparseTree(all);
  const proof = await tree.prove(all[0].keyHash);
  const bytes = writeSmtProof(new BorshWriter(), proof).toBytes();
  assert.ok(proof.siblings.length > 0);
  // Count that disagrees with the bitmap: refused before reading siblings.
  const badCount = bytes.slice();
  badCount[34] += 1;
  assert.throws(() => decodeSmtProof(badCount), /sibling bitmap does not match/);
  // Depth above 256.
  const deep = bytes.slice();
  deep[0] = 1; deep[1] = 1;
  assert.throws(() => decodeSmtProof(deep), /depth 257 exceeds 256/);
  // A bit set at or beyond the depth.
  const beyond = bytes.slice();
  beyond[2 + 31] |= 1;
  assert.throws(() => decodeSmtProof(beyond), /sibling bitmap does not match/);
  for (let n = 0; n < bytes.length; n++) assert.throws(() => decodeSmtProof(bytes.subarray(0, n)), /truncated/);
  assert.throws(() => decodeSmtProof(Uint8Array.of(...bytes, 0)), /trailing/);
  // The leaf must lie on the key's path.
  const flipped = all[0].keyHash.slice();
  flipped[0] ^= 0x80; // off the path from depth 1 on, and a tree of five keys is deeper
  assert.ok(proof.depth >= 1);
  const off = { ...proof, leaf: { keyHash: flipped, valueHash: all[0].valueHash } };
  await assert.rejects(verifySmtProof(off, await tree.root(), all[0].keyHash, null), { code: 'leaf-off-path' });
});
