// Test fixtures mirroring `testkit/src/` (the seeded test consortium, patient keys, synthetic
// access events) plus the two provers the library does not need (a sparse Merkle tree and an
// RFC 6962 consistency proof), so the vector maker can build answers a node would serve.
// Ed25519 is deterministic, so keys from the same seeds sign the same bytes in Rust and here.

import { concatBytes, sha256, utf8 } from '../js/bytes.js';
import { nodeHash, rootOf } from '../js/merkle.js';
import { EMPTY_HASH, bit, smtInternalHash, smtLeafHash } from '../js/smt.js';

/** Genesis time of the test consortium (`testkit::GENESIS_MS`). */
export const GENESIS_MS = 1_780_000_000_000n;
/** The archive every synthetic event reads (`testkit::EVENT_ARCHIVE`). */
export const EVENT_ARCHIVE = new Uint8Array(32).fill(0x33);

const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** An Ed25519 key from a 32-byte seed (`Keypair::from_seed`'s signing half). */
export async function keyFromSeed(seed) {
  const key = await crypto.subtle.importKey('pkcs8', concatBytes(PKCS8_ED25519_PREFIX, seed), { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', key);
  const publicKey = new Uint8Array(Buffer.from(jwk.x, 'base64url'));
  return { publicKey, sign: async (msg) => new Uint8Array(await crypto.subtle.sign('Ed25519', key, msg)) };
}

/** `testkit::seeded_key(seed)`: the key of seed `[seed; 32]`. */
export const seededKey = (seed) => keyFromSeed(new Uint8Array(32).fill(seed));

/** `testkit::patient_key(i)`: seed = i as u64 LE in bytes 0..8, 0xaa in byte 31. */
export async function patientKey(i) {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setBigUint64(0, BigInt(i), true);
  seed[31] = 0xaa;
  return keyFromSeed(seed);
}

/** `TestConsortium::new`: chain id sha256("test chain"), seeds 1..4, powers 1, 1, 1, 0. */
export async function testConsortium() {
  const [hospitalA, hospitalB, clinic, regulator] = await Promise.all([1, 2, 3, 4].map(seededKey));
  const members = [
    ['County Hospital', hospitalA, 1], ['City Hospital', hospitalB, 1],
    ['Township Clinic', clinic, 1], ['Health Commission', regulator, 0],
  ].map(([name, k, power]) => ({ name, public_key: k.publicKey, voting_power: power }));
  return { chainId: await sha256(utf8('test chain')), members, hospitalA, hospitalB, clinic, regulator, validatorKeys: [hospitalA, hospitalB, clinic] };
}

/**
 * `testkit::access_event(index, ...)`: committed at height 20 + index, index × 61.001 s after
 * genesis, by transaction [index; 32] for request [0x80 | index; 32], on EVENT_ARCHIVE
 * (ultrasound), no clinician and no grant named.
 */
export function accessEvent(index, patient, custodian, accessor, purpose, outcome) {
  const i = BigInt(index);
  return {
    height: 20n + i, timeMs: GENESIS_MS + i * 61_001n,
    txHash: new Uint8Array(32).fill(index), requestHash: new Uint8Array(32).fill(0x80 | index),
    patient, archive: EVENT_ARCHIVE, category: 'ultrasound', custodian, accessor,
    staff: null, purpose, grant: null, outcome,
  };
}

/** The frontier of a log (`Frontier`): roots of its perfect subtrees, largest first. */
export async function frontier(leaves) {
  const hashes = [];
  let size = 0n;
  for (const leaf of leaves) {
    let acc = leaf;
    for (let s = size; (s & 1n) === 1n; s >>= 1n) acc = await nodeHash(hashes.pop(), acc);
    hashes.push(acc);
    size += 1n;
  }
  return { size, hashes };
}

/** RFC 6962 §2.1.2 SUBPROOF: the consistency proof from the first m leaves to all of them. */
export async function consistencyProof(leaves, m) {
  async function subproof(m, d, complete) {
    const n = d.length;
    if (m === n) return complete ? [] : [await rootOf(d)];
    let k = 1;
    while (k * 2 < n) k *= 2;
    if (m <= k) return [...await subproof(m, d.slice(0, k), complete), await rootOf(d.slice(k))];
    return [...await subproof(m - k, d.slice(k), false), await rootOf(d.slice(0, k))];
  }
  return subproof(m, leaves, true);
}

/**
 * A sparse Merkle tree over `{keyHash, valueHash}` entries, shaped as the ledger's compressed
 * tree (a lone leaf sits at the highest position where it is alone); returns its root and a
 * prover that follows `smt::prove`.
 */
export function sparseTree(entries) {
  async function hashOf(set, depth) {
    if (set.length === 0) return EMPTY_HASH;
    if (set.length === 1) return smtLeafHash(set[0].keyHash, set[0].valueHash);
    const [l, r] = split(set, depth);
    return smtInternalHash(await hashOf(l, depth + 1), await hashOf(r, depth + 1));
  }
  const split = (set, depth) => [set.filter((e) => !bit(e.keyHash, depth)), set.filter((e) => bit(e.keyHash, depth))];
  async function prove(keyHash) {
    let set = entries;
    let depth = 0;
    const path = []; // siblings from the root down
    let leaf = null;
    for (;;) {
      if (set.length === 0) break;
      if (set.length === 1) {
        leaf = { keyHash: set[0].keyHash, valueHash: set[0].valueHash };
        break;
      }
      const [l, r] = split(set, depth);
      const right = bit(keyHash, depth);
      path.push(await hashOf(right ? l : r, depth + 1));
      set = right ? r : l;
      depth += 1;
    }
    const bitmap = new Uint8Array(32);
    const siblings = [];
    for (let j = path.length - 1; j >= 0; j--) {
      if (path[j].some((b) => b !== 0)) {
        bitmap[j >> 3] |= 0x80 >> (j & 7);
        siblings.push(path[j]);
      }
    }
    return { depth, bitmap, siblings, leaf };
  }
  return { root: () => hashOf(entries, 0), prove };
}
