// merkle.js against every transparency-dev/merkle RFC 6962 vector in vectors/rfc6962, read the
// way ledger/tests/rfc6962_vectors.rs reads them: a leaf hash that is not 32 bytes is refused
// at decoding; a root or proof element that is not 32 bytes is replaced by a stand-in
// (SHA-256 of a tag and the bytes) so equal inputs stay equal and the verifier decides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { concatBytes, fromBase64, fromHex, sha256, toHex, utf8 } from '../js/bytes.js';
import {
  ProofError, emptyRoot, leafHash, nodeHash, rootFromInclusionProof, rootOf,
  verifyConsistency, verifyInclusion,
} from '../js/merkle.js';

const DIR = fileURLToPath(new URL('./vectors/rfc6962/', import.meta.url));

function jsonFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsonFiles(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

class DecodeRefusal extends Error {}

function bytesField(c, name) {
  const v = c[name];
  if (v === undefined || v === null) return new Uint8Array(0); // Go's nil slice
  return fromBase64(v, name);
}

async function standIn(bytes) {
  if (bytes.length === 32) return bytes;
  return sha256(concatBytes(utf8('cradle test stand-in for a non-32-byte value'), bytes));
}

async function proofField(c) {
  return Promise.all((c.proof ?? []).map((p) => standIn(p === null ? new Uint8Array(0) : fromBase64(p, 'proof'))));
}

function leafField(c, name) {
  const b = bytesField(c, name);
  if (b.length !== 32) throw new DecodeRefusal(`${name}: ${b.length} bytes, want 32`);
  return b;
}

async function run(c) {
  if ('leafIdx' in c || 'treeSize' in c) {
    const leaf = leafField(c, 'leafHash');
    const root = await standIn(bytesField(c, 'root'));
    const proof = await proofField(c);
    await verifyInclusion(leaf, BigInt(c.leafIdx), BigInt(c.treeSize), proof, root);
    return 'inclusion';
  }
  const root1 = await standIn(bytesField(c, 'root1'));
  const root2 = await standIn(bytesField(c, 'root2'));
  await verifyConsistency(BigInt(c.size1), BigInt(c.size2), await proofField(c), root1, root2);
  return 'consistency';
}

test('every RFC 6962 vector is accepted or refused as it says', async () => {
  const files = jsonFiles(DIR).sort();
  assert.ok(files.length >= 190, `found only ${files.length} vector files under ${DIR}`);
  const counts = { accepted: 0, refusedByVerifier: 0, refusedAtDecode: 0 };
  const failures = [];
  for (const path of files) {
    const name = relative(DIR, path);
    const c = JSON.parse(readFileSync(path, 'utf8'));
    const wantErr = typeof c.wantErr === 'boolean' ? c.wantErr : !name.endsWith('happy-path.json');
    let outcome;
    try {
      await run(c);
      outcome = 'ok';
    } catch (e) {
      if (e instanceof DecodeRefusal) outcome = 'decode';
      else if (e instanceof ProofError) outcome = 'verifier';
      else throw new Error(`${name}: unexpected ${e.stack}`);
    }
    if (outcome === 'ok' && !wantErr) counts.accepted++;
    else if (outcome === 'verifier' && wantErr) counts.refusedByVerifier++;
    else if (outcome === 'decode' && wantErr) counts.refusedAtDecode++;
    else failures.push(`${name}: ${outcome}, wantErr ${wantErr}`);
  }
  assert.deepEqual(failures, []);
  assert.ok(counts.accepted > 0 && counts.refusedByVerifier > 0, JSON.stringify(counts));
});

const REFERENCE_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657',
  '606162636465666768696a6b6c6d6e6f'];

test('the RFC 6962 reference tree of eight leaves has the reference root', async () => {
  const leaves = await Promise.all(REFERENCE_LEAVES.map((h) => leafHash(fromHex(h))));
  assert.equal(toHex(await rootOf(leaves)), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  assert.equal(toHex(await rootOf([])), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.deepEqual(await rootOf([]), await emptyRoot());
});

/** MTH exactly as RFC 6962 §2.1 writes it. */
async function mth(leaves) {
  if (leaves.length === 0) return emptyRoot();
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(await mth(leaves.slice(0, k)), await mth(leaves.slice(k)));
}

test('rootOf matches the recursive definition up to 40 leaves', async () => {
  const leaves = [];
  for (let i = 0; i < 40; i++) leaves.push(await leafHash(Uint8Array.of(0, 0, 0, i)));
  for (let n = 0; n <= leaves.length; n++) {
    assert.deepEqual(await rootOf(leaves.slice(0, n)), await mth(leaves.slice(0, n)), `size ${n}`);
  }
});

test('edge cases refuse with the ledger error kinds', async () => {
  const leaf = await leafHash(utf8('data'));
  await verifyInclusion(leaf, 0n, 1n, [], leaf);
  await assert.rejects(verifyInclusion(leaf, 0n, 1n, [leaf], leaf), { code: 'wrong-proof-length' });
  await assert.rejects(verifyInclusion(leaf, 1n, 1n, [], leaf), { code: 'index-out-of-range' });
  const e = await emptyRoot();
  await verifyConsistency(0n, 0n, [], e, e);
  const ones = new Uint8Array(32).fill(1);
  await assert.rejects(verifyConsistency(0n, 0n, [], ones, ones), { code: 'not-empty-root' });
  await assert.rejects(verifyConsistency(0n, 1n, [], e, ones), { code: 'empty-tree-consistency' });
  await assert.rejects(verifyConsistency(2n, 1n, [], e, ones), { code: 'size-decreased' });
  await assert.rejects(verifyInclusion(e, 0n, 0n, [], e), { code: 'index-out-of-range' });
  await assert.rejects(verifyInclusion(leaf.subarray(1), 0n, 1n, [], leaf), { code: 'malformed' });
  await assert.rejects(verifyInclusion(leaf, -1n, 1n, [], leaf), { code: 'malformed' });
  await assert.rejects(verifyInclusion(leaf, 0n, 1n << 64n, [], leaf), { code: 'malformed' });
});

test('sizes near 2^64 do not overflow', async () => {
  const h = new Uint8Array(32).fill(3);
  const size = (1n << 64n) - 1n;
  const proof = Array(63).fill(h);
  await assert.rejects(verifyInclusion(h, size - 1n, size, proof, h), { code: 'root-mismatch' });
  await assert.rejects(verifyConsistency(size - 1n, size, proof, h, h), ProofError);
  await assert.rejects(verifyConsistency(1n, size, [], h, h), ProofError);
});

test('root from an inclusion proof equals the root the tree has', async () => {
  const leaves = await Promise.all(REFERENCE_LEAVES.map((h) => leafHash(fromHex(h))));
  // The tree of 3 is node(node(l0, l1), l2): leaf 2's proof is the one border hash node(l0, l1).
  const l01 = await nodeHash(leaves[0], leaves[1]);
  const root3 = await rootOf(leaves.slice(0, 3));
  assert.deepEqual(await rootFromInclusionProof(leaves[2], 2n, 3n, [l01]), root3);
});
