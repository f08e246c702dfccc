// Proofs of presence and absence in the ledger's sparse Merkle state tree.
//
// Mirrors `ledger/src/merkle/smt/` (node.rs for the hashing rules and positions, proof.rs for
// the proof, its Borsh layout and `SmtProof::verify`) byte for byte:
// - a key's position is SHA-256 of its state key; bit 0 is the most significant bit of byte 0,
//   and bit 0 of a path goes left, 1 goes right;
// - leaf = SHA-256(0x00 || key_hash || value_hash), internal = SHA-256(0x01 || left || right),
//   and an empty subtree (and the empty tree's root) is 32 zero bytes;
// - a proof is `depth (u16) || bitmap [32] || siblings (u32 count, 32 bytes each, deepest
//   first) || leaf Option<(key_hash, value_hash)>`; bit j of the bitmap says the sibling at
//   depth j + 1 is non-empty, and the bitmap is zero from `depth` on.
// The state keys of the audit logs follow `ledger/src/state.rs` (`keys`).

import { BorshReader, concatBytes, equalBytes, requireBytes, sha256 } from './bytes.js';
import { ProofError } from './merkle.js';

/** The hash of an empty subtree and the root of the empty tree. */
export const EMPTY_HASH = new Uint8Array(32);
/** Deepest level of the tree: one bit per bit of a SHA-256 key hash. */
export const MAX_DEPTH = 256;
/** A path never has more siblings than the tree has levels. */
export const MAX_SIBLINGS = 256;

/** Bit `i` (0 = most significant bit of byte 0) of a 32-byte value. */
export function bit(bits, i) {
  return ((bits[i >> 3] >> (7 - (i & 7))) & 1) === 1;
}

/** Leaf hash: SHA-256(0x00 || key_hash || value_hash). */
export async function smtLeafHash(keyHash, valueHash) {
  return sha256(concatBytes(Uint8Array.of(0x00), requireBytes(keyHash, 'key hash', 32), requireBytes(valueHash, 'value hash', 32)));
}

/** Internal node hash: SHA-256(0x01 || left || right). */
export async function smtInternalHash(left, right) {
  return sha256(concatBytes(Uint8Array.of(0x01), requireBytes(left, 'left', 32), requireBytes(right, 'right', 32)));
}

/** `bits` with every bit at or after `depth` cleared (`NodeKey::for_key(bits, depth).path`). */
export function prefixOf(bits, depth) {
  const out = bits.slice();
  const full = depth >> 3;
  if (full < 32) {
    out[full] &= ~(0xff >> (depth & 7)) & 0xff;
    out.fill(0, full + 1);
  }
  return out;
}

function popcount(bytes) {
  let n = 0;
  for (const b of bytes) for (let v = b; v; v >>= 1) n += v & 1;
  return n;
}

/** Checks the shape every decoder relies on (`SmtProof::validate`); throws a ProofError. */
export function validateSmtProof(proof) {
  const { depth, bitmap, siblings } = proof;
  if (!Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH) {
    throw new ProofError('depth-out-of-range', `proof depth ${depth} exceeds 256`);
  }
  requireBytes(bitmap, 'bitmap', 32);
  if (siblings.length > MAX_SIBLINGS) {
    throw new ProofError('too-many-hashes', `too many hashes: got ${siblings.length}, max ${MAX_SIBLINGS}`);
  }
  siblings.forEach((s, i) => requireBytes(s, `sibling ${i}`, 32));
  const set = popcount(bitmap);
  if (!equalBytes(prefixOf(bitmap, depth), bitmap) || set !== siblings.length) {
    throw new ProofError('sibling-bitmap-mismatch',
      `sibling bitmap does not match: ${set} bits set, ${siblings.length} siblings`);
  }
  if (proof.leaf !== null) {
    requireBytes(proof.leaf.keyHash, 'leaf key hash', 32);
    requireBytes(proof.leaf.valueHash, 'leaf value hash', 32);
  }
}

/**
 * Reads an `SmtProof` in its Borsh layout: `{depth, bitmap, siblings, leaf}` where leaf is
 * null or `{keyHash, valueHash}`. The sibling count is checked against the bitmap before any
 * sibling is read, and the whole proof is validated.
 */
export function readSmtProof(r) {
  const depth = r.u16('proof depth');
  const bitmap = r.fixed(32, 'proof bitmap');
  const count = r.u32('sibling count');
  const set = popcount(bitmap);
  if (count !== set) {
    r.fail(`sibling bitmap does not match: ${set} bits set, ${count} siblings`);
  }
  const siblings = [];
  for (let i = 0; i < count; i++) siblings.push(r.fixed(32, `sibling ${i}`));
  const leaf = r.option((rr) => ({ keyHash: rr.fixed(32, 'leaf key hash'), valueHash: rr.fixed(32, 'leaf value hash') }), 'proof leaf');
  const proof = { depth, bitmap, siblings, leaf };
  try {
    validateSmtProof(proof);
  } catch (e) {
    r.fail(e.message);
  }
  return proof;
}

/** Writes an `SmtProof` in its Borsh layout (for test vectors and tampering tests). */
export function writeSmtProof(w, proof) {
  w.u16(proof.depth).fixed(proof.bitmap, 32, 'bitmap');
  w.vec(proof.siblings, MAX_SIBLINGS, (ww, s) => ww.fixed(s, 32, 'sibling'));
  w.option(proof.leaf, (ww, l) => ww.fixed(l.keyHash, 32).fixed(l.valueHash, 32));
  return w;
}

/** The root this proof implies for `keyHash`'s path. */
async function rootFor(proof, keyHash) {
  let hash = proof.leaf ? await smtLeafHash(proof.leaf.keyHash, proof.leaf.valueHash) : EMPTY_HASH;
  let next = 0;
  for (let j = proof.depth - 1; j >= 0; j--) {
    const sibling = bit(proof.bitmap, j) ? proof.siblings[next++] : EMPTY_HASH;
    hash = bit(keyHash, j) ? await smtInternalHash(sibling, hash) : await smtInternalHash(hash, sibling);
  }
  return hash;
}

/**
 * Resolves only if `proof` proves, against `root`, that `keyHash` is present with
 * `valueHash` (or, with `valueHash` null, that it is absent); throws a ProofError with code
 * `leaf-off-path`, `root-mismatch`, `value-mismatch`, `key-absent` or `key-present` otherwise.
 * Mirrors `SmtProof::verify`.
 */
export async function verifySmtProof(proof, root, keyHash, valueHash) {
  validateSmtProof(proof);
  requireBytes(root, 'state root', 32);
  requireBytes(keyHash, 'key hash', 32);
  if (valueHash !== null) requireBytes(valueHash, 'value hash', 32);
  if (proof.leaf && !equalBytes(prefixOf(proof.leaf.keyHash, proof.depth), prefixOf(keyHash, proof.depth))) {
    throw new ProofError('leaf-off-path', "leaf in proof is not on the key's path");
  }
  if (!equalBytes(await rootFor(proof, keyHash), root)) {
    throw new ProofError('root-mismatch', 'root mismatch');
  }
  const found = proof.leaf && equalBytes(proof.leaf.keyHash, keyHash) ? proof.leaf.valueHash : null;
  if (valueHash !== null && found !== null) {
    if (!equalBytes(valueHash, found)) throw new ProofError('value-mismatch', 'value mismatch');
  } else if (valueHash !== null) {
    throw new ProofError('key-absent', 'key is absent');
  } else if (found !== null) {
    throw new ProofError('key-present', 'key is present');
  }
}

/** Reads a proof from bytes with nothing before or after it. */
export function decodeSmtProof(bytes) {
  const r = new BorshReader(bytes, 'state proof');
  const proof = readSmtProof(r);
  r.finish();
  return proof;
}

// State keys (`ledger/src/state.rs`, `keys`): one prefix byte, then the identifier.
const PREFIX = { patientLog: 0x48 /* H */, archiveLog: 0x58 /* X */, accessorLog: 0x59 /* Y */, breakGlassLog: 0x42 /* B */, patient: 0x50 /* P */, archive: 0x41 /* A */ };

/** The state key of a patient's access log: `'H' || patient key`. */
export const patientLogKey = (pk) => concatBytes(Uint8Array.of(PREFIX.patientLog), requireBytes(pk, 'patient key', 32));
/** The state key of an archive's access log: `'X' || archive id`. */
export const archiveLogKey = (id) => concatBytes(Uint8Array.of(PREFIX.archiveLog), requireBytes(id, 'archive id', 32));
/** The state key of an accessor's access log: `'Y' || accessor key`. */
export const accessorLogKey = (pk) => concatBytes(Uint8Array.of(PREFIX.accessorLog), requireBytes(pk, 'accessor key', 32));
/** The state key of the consortium-wide break-glass log: `'B'`. */
export const breakGlassLogKey = () => Uint8Array.of(PREFIX.breakGlassLog);
/** The state key of a patient's record: `'P' || patient key`. */
export const patientKey = (pk) => concatBytes(Uint8Array.of(PREFIX.patient), requireBytes(pk, 'patient key', 32));
/** The state key of an archive's record: `'A' || archive id`. */
export const archiveKey = (id) => concatBytes(Uint8Array.of(PREFIX.archive), requireBytes(id, 'archive id', 32));
