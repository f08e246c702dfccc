// The RFC 6962 / RFC 9162 log tree: hashing, inclusion and consistency proof verification.
//
// Mirrors `ledger/src/merkle/log/` (mod.rs for hashing and the root, verify.rs for the
// proofs) step for step: the proof is split into its inner and border parts as
// transparency-dev/merkle does, a proof of the wrong length is refused up front, the empty tree
// contains no leaf, a tree is consistent with itself only through an empty proof and equal roots,
// and a consistency proof from the empty tree is refused as meaningless.
//
// Sizes and indices are u64: pass BigInt (or a safe integer Number). Hashes are 32-byte
// Uint8Arrays. Every failure throws a ProofError whose `code` says which check failed.

import { concatBytes, equalBytes, requireBytes, sha256 } from './bytes.js';

const U64_MAX = (1n << 64n) - 1n;

/** A refused proof: `code` is one of the ledger's `ProofError` kinds, in kebab case. */
export class ProofError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ProofError';
    this.code = code;
  }
}

/** A u64 as BigInt, from a BigInt or a safe non-negative integer Number; throws otherwise. */
export function u64(value, what) {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new ProofError('malformed', `${what}: not a u64`);
    return BigInt(value);
  }
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new ProofError('malformed', `${what}: not a u64`);
  }
  return value;
}

function hash32(value, what) {
  try {
    return requireBytes(value, what, 32);
  } catch (e) {
    throw new ProofError('malformed', e.message);
  }
}

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export async function leafHash(data) {
  return sha256(concatBytes(Uint8Array.of(0x00), requireBytes(data, 'leaf data')));
}

/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
export async function nodeHash(left, right) {
  return sha256(concatBytes(Uint8Array.of(0x01), hash32(left, 'left'), hash32(right, 'right')));
}

/** Root of the empty tree: SHA-256 of the empty string. */
export async function emptyRoot() {
  return sha256(new Uint8Array(0));
}

/**
 * The RFC 6962 root (MTH) of the tree whose leaves have the given hashes, computed like the
 * ledger's `Frontier` in O(n) hashes and O(log n) memory.
 */
export async function rootOf(leafHashes) {
  const frontier = []; // roots of perfect subtrees, largest first
  let size = 0n;
  for (const [i, leaf] of leafHashes.entries()) {
    let acc = hash32(leaf, `leaf ${i}`);
    // Each trailing one bit of the old size is a subtree that now has a right sibling.
    for (let s = size; (s & 1n) === 1n; s >>= 1n) acc = await nodeHash(frontier.pop(), acc);
    frontier.push(acc);
    size += 1n;
  }
  if (frontier.length === 0) return emptyRoot();
  let acc = frontier[frontier.length - 1];
  for (let i = frontier.length - 2; i >= 0; i--) acc = await nodeHash(frontier[i], acc);
  return acc;
}

function bitLength(x) {
  return x === 0n ? 0 : x.toString(2).length;
}

function popcount(x) {
  let n = 0;
  for (let v = x; v > 0n; v >>= 1n) n += Number(v & 1n);
  return n;
}

function trailingZeros(x) {
  let n = 0;
  for (let v = x; v > 0n && (v & 1n) === 0n; v >>= 1n) n++;
  return n;
}

/** Lengths of the inner and border parts of the inclusion proof for `index` in `size`. */
function decompose(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  const border = inner >= 64 ? 0 : popcount(index >> BigInt(inner));
  return [inner, border];
}

async function chainInner(seed, proof, index) {
  let acc = seed;
  for (const [i, h] of proof.entries()) {
    acc = ((index >> BigInt(i)) & 1n) === 0n ? await nodeHash(acc, h) : await nodeHash(h, acc);
  }
  return acc;
}

async function chainInnerRight(seed, proof, index) {
  let acc = seed;
  for (const [i, h] of proof.entries()) {
    if (((index >> BigInt(i)) & 1n) === 1n) acc = await nodeHash(h, acc);
  }
  return acc;
}

async function chainBorderRight(seed, proof) {
  let acc = seed;
  for (const h of proof) acc = await nodeHash(h, acc);
  return acc;
}

function checkProofShape(proof) {
  if (!Array.isArray(proof)) throw new ProofError('malformed', 'proof: expected a list of hashes');
  proof.forEach((h, i) => hash32(h, `proof hash ${i}`));
}

function checkMatch(calculated, expected) {
  if (!equalBytes(calculated, expected)) throw new ProofError('root-mismatch', 'root mismatch');
}

/** The root that an inclusion proof for `leaf` at `index` in a tree of `size` implies. */
export async function rootFromInclusionProof(leaf, index, size, proof) {
  hash32(leaf, 'leaf hash');
  checkProofShape(proof);
  const i = u64(index, 'index');
  const n = u64(size, 'size');
  if (i >= n) throw new ProofError('index-out-of-range', `index ${i} out of range for tree size ${n}`);
  const [inner, border] = decompose(i, n);
  if (proof.length !== inner + border) {
    throw new ProofError('wrong-proof-length', `wrong proof length: got ${proof.length}, want ${inner + border}`);
  }
  const res = await chainInner(leaf, proof.slice(0, inner), i);
  return chainBorderRight(res, proof.slice(inner));
}

/**
 * Resolves only if `proof` proves that `leaf` sits at `index` in the tree of `size` leaves
 * whose root is `root`; throws a ProofError otherwise.
 */
export async function verifyInclusion(leaf, index, size, proof, root) {
  hash32(root, 'root');
  checkMatch(await rootFromInclusionProof(leaf, index, size, proof), root);
}

/**
 * The root of the tree of `size2` that a consistency proof from (`size1`, `root1`) implies,
 * after checking that the proof also reproduces `root1`.
 */
export async function rootFromConsistencyProof(size1, size2, proof, root1) {
  hash32(root1, 'root1');
  checkProofShape(proof);
  const n1 = u64(size1, 'size1');
  const n2 = u64(size2, 'size2');
  if (n2 < n1) throw new ProofError('size-decreased', `tree size decreased from ${n1} to ${n2}`);
  if (n1 === n2) {
    if (proof.length !== 0) {
      throw new ProofError('wrong-proof-length', `wrong proof length: got ${proof.length}, want 0`);
    }
    if (n1 === 0n && !equalBytes(root1, await emptyRoot())) {
      throw new ProofError('not-empty-root', 'root of the empty tree must be sha256("")');
    }
    return root1;
  }
  if (n1 === 0n) {
    throw new ProofError('empty-tree-consistency', `consistency with the empty tree proves nothing (size2 ${n2})`);
  }
  // After an optional seed, the proof is a suffix of the inclusion proof for leaf size1 - 1 in
  // the tree of size2, from the level of the largest perfect subtree that ends at size1.
  const [innerAll, border] = decompose(n1 - 1n, n2);
  const shift = trailingZeros(n1);
  const inner = innerAll - shift;
  const seededByRoot1 = n1 === 1n << BigInt(shift);
  const start = seededByRoot1 ? 0 : 1;
  const want = start + inner + border;
  if (proof.length !== want) {
    throw new ProofError('wrong-proof-length', `wrong proof length: got ${proof.length}, want ${want}`);
  }
  const seed = seededByRoot1 ? root1 : proof[0];
  const rest = proof.slice(start);
  const mask = (n1 - 1n) >> BigInt(shift);

  let hash1 = await chainInnerRight(seed, rest.slice(0, inner), mask);
  hash1 = await chainBorderRight(hash1, rest.slice(inner));
  checkMatch(hash1, root1);

  const hash2 = await chainInner(seed, rest.slice(0, inner), mask);
  return chainBorderRight(hash2, rest.slice(inner));
}

/**
 * Resolves only if the tree of `size2` leaves with root `root2` extends the tree of `size1`
 * leaves with root `root1`; throws a ProofError otherwise.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  hash32(root2, 'root2');
  checkMatch(await rootFromConsistencyProof(size1, size2, proof, root1), root2);
}
