// Block headers and commit certificates, decoded and verified as the Rust code encodes them.
//
// Mirrors `ledger/src/block/mod.rs` (BlockHeader, its hash and `verify_header_certificate`),
// `consensus/src/types.rs` (Vote, CommitSig, CommitCertificate, ValidatorSet and
// `CommitCertificate::verify`) and `ledger/src/identity.rs` (the validator set is the genesis
// members with voting power, in genesis order).
//
// - header hash = SHA-256("cradle.ledger.block-header.v1\0" || borsh(header));
// - a precommit signs "cradle.consensus.precommit.v1\0" || chain_id || borsh(Vote), where
//   Vote = kind u8 (2 = precommit) || height u64 || round u32 || Some(value) (1 || 32 bytes)
//   || validator index u16;
// - a certificate decides a header when its height and value are the header's, its signers
//   are distinct validators holding more than two thirds of the voting power
//   (3 * power > 2 * total) and every signature verifies (Ed25519 through WebCrypto).

import { BorshReader, BorshWriter, concatBytes, equalBytes, fromHex, requireBytes, sha256, toHex, utf8 } from './bytes.js';

export const TAG_BLOCK_HEADER = utf8('cradle.ledger.block-header.v1\0');
export const TAG_PRECOMMIT = utf8('cradle.consensus.precommit.v1\0');
/** Borsh discriminant of `VoteKind::Precommit` (`#[borsh(use_discriminant = true)]`). */
export const VOTE_KIND_PRECOMMIT = 2;
/** Most validators a set may hold (`VALIDATORS_MAX`); bounds certificate decoding too. */
export const VALIDATORS_MAX = 1024;

/**
 * The two header layouts. `V1` is the one in `ledger/src/block/mod.rs` as read for this
 * library (ten fields, ending with `access_log_root`). `WITH_NEXT_MEMBERS_HASH` adds
 * `next_members_hash: Digest32` after `access_log_root`: the hash of the member set in force at
 * the next height, being added to the Rust code. Pass `{headerLayout}` to every decoder; the
 * default is `DEFAULT_HEADER_LAYOUT`.
 */
export const HEADER_LAYOUT = Object.freeze({ V1: 'v1', WITH_NEXT_MEMBERS_HASH: 'with-next-members-hash' });
/** The layout decoders use when none is given: the one the Rust code writes since the header gained the field. */
export const DEFAULT_HEADER_LAYOUT = HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH;

/** A refused header or certificate: `code` says which check failed. */
export class ChainError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ChainError';
    this.code = code;
  }
}

function layoutOf(options) {
  const layout = options?.headerLayout ?? DEFAULT_HEADER_LAYOUT;
  if (layout !== HEADER_LAYOUT.V1 && layout !== HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH) {
    throw new Error(`unknown header layout ${layout}`);
  }
  return layout;
}

/** Reads a `BlockHeader`; u64 fields are BigInt, digests and keys 32-byte arrays. */
export function readBlockHeader(r, options) {
  const layout = layoutOf(options);
  const header = {
    chainId: r.fixed(32, 'header chain_id'),
    height: r.u64('header height'),
    timeMs: r.u64('header time_ms'),
    prevHash: r.fixed(32, 'header prev_hash'),
    proposer: r.fixed(32, 'header proposer'),
    txCount: r.u32('header tx_count'),
    txRoot: r.fixed(32, 'header tx_root'),
    stateRoot: r.fixed(32, 'header state_root'),
    accessLogSize: r.u64('header access_log_size'),
    accessLogRoot: r.fixed(32, 'header access_log_root'),
  };
  if (layout === HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH) {
    header.nextMembersHash = r.fixed(32, 'header next_members_hash');
  }
  return header;
}

/** Writes a `BlockHeader` in the given layout. */
export function writeBlockHeader(w, h, options) {
  const layout = layoutOf(options);
  w.fixed(h.chainId, 32, 'chain_id').u64(h.height, 'height').u64(h.timeMs, 'time_ms');
  w.fixed(h.prevHash, 32, 'prev_hash').fixed(h.proposer, 32, 'proposer').u32(h.txCount, 'tx_count');
  w.fixed(h.txRoot, 32, 'tx_root').fixed(h.stateRoot, 32, 'state_root');
  w.u64(h.accessLogSize, 'access_log_size').fixed(h.accessLogRoot, 32, 'access_log_root');
  if (layout === HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH) {
    w.fixed(h.nextMembersHash, 32, 'next_members_hash');
  } else if (h.nextMembersHash !== undefined) {
    throw new Error('header has next_members_hash but the layout is v1');
  }
  return w;
}

/** Decodes a header from exactly `bytes` (plain Borsh, no version byte). */
export function decodeBlockHeader(bytes, options) {
  const r = new BorshReader(bytes, 'block header');
  const h = readBlockHeader(r, options);
  r.finish();
  return h;
}

/** The header's Borsh bytes. */
export function encodeBlockHeader(header, options) {
  return writeBlockHeader(new BorshWriter(), header, options).toBytes();
}

/** The block's identity: SHA-256 over the header tag and the header's Borsh bytes. */
export async function headerHash(header, options) {
  return sha256(concatBytes(TAG_BLOCK_HEADER, encodeBlockHeader(header, options)));
}

/** Reads a `CommitCertificate`: `{height, round, value, signatures: [{validator, signature}]}`. */
export function readCommitCertificate(r) {
  return {
    height: r.u64('certificate height'),
    round: r.u32('certificate round'),
    value: r.fixed(32, 'certificate value'),
    signatures: r.vec(VALIDATORS_MAX, (rr, i) => ({
      validator: rr.u16(`signature ${i} validator`),
      signature: rr.fixed(64, `signature ${i}`),
    }), 'certificate signatures'),
  };
}

/** Writes a `CommitCertificate`. */
export function writeCommitCertificate(w, c) {
  w.u64(c.height).u32(c.round).fixed(c.value, 32, 'value');
  w.vec(c.signatures, VALIDATORS_MAX, (ww, s) => ww.u16(s.validator).fixed(s.signature, 64, 'signature'));
  return w;
}

/** `TAG_PRECOMMIT || chain_id || borsh(Vote)`: what validator `validator` signs. */
export function precommitSignBytes(chainId, height, round, value, validator) {
  const vote = new BorshWriter().u8(VOTE_KIND_PRECOMMIT).u64(height).u32(round)
    .option(value, (w, v) => w.fixed(v, 32, 'value')).u16(validator).toBytes();
  return concatBytes(TAG_PRECOMMIT, requireBytes(chainId, 'chain id', 32), vote);
}

function bytes32(value, what) {
  return typeof value === 'string' ? fromHex(value, 32, what) : requireBytes(value, what, 32);
}

/**
 * The validator set from genesis members (`{public_key | publicKey, voting_power |
 * votingPower}`, keys as hex or bytes, powers as Number, BigInt or decimal string): the members
 * with power, in genesis order, checked as `ValidatorSet::new` checks them (not empty, at most
 * 1024, no repeated key, every key importable as Ed25519, total power within u64).
 */
export async function validatorSetFromMembers(members) {
  const validators = [];
  for (const [i, m] of members.entries()) {
    const power = BigInt(m.votingPower ?? m.voting_power);
    if (power < 0n || power >= 1n << 64n) throw new ChainError('invalid-validator-set', `member ${i}: bad voting power`);
    if (power === 0n) continue;
    validators.push({ publicKey: bytes32(m.publicKey ?? m.public_key, `member ${i} key`), votingPower: power });
  }
  if (validators.length === 0) throw new ChainError('invalid-validator-set', 'validator set is empty');
  if (validators.length > VALIDATORS_MAX) throw new ChainError('invalid-validator-set', `more than ${VALIDATORS_MAX} validators`);
  let total = 0n;
  for (const [i, v] of validators.entries()) {
    if (validators.slice(0, i).some((o) => equalBytes(o.publicKey, v.publicKey))) {
      throw new ChainError('invalid-validator-set', `validator ${i} repeats a key`);
    }
    try {
      v.key = await globalThis.crypto.subtle.importKey('raw', v.publicKey, { name: 'Ed25519' }, false, ['verify']);
    } catch {
      throw new ChainError('invalid-validator-set', `validator ${i} has an invalid ed25519 public key`);
    }
    total += v.votingPower;
  }
  if (total >= 1n << 64n) throw new ChainError('invalid-validator-set', 'total voting power overflows');
  return { validators, totalPower: total };
}

/** True when `power` is more than two thirds of `total` (`ValidatorSet::is_quorum`). */
export function isQuorum(power, total) {
  return power * 3n > total * 2n;
}

/**
 * Resolves only if `cert` holds precommits for its own height, round and value, from distinct
 * validators of `set` with more than two thirds of the power, each signature valid on
 * `chainId`. The checks run in the Rust order: count, membership and duplicates, quorum, then
 * signatures; a failure throws a ChainError naming the validator where there is one.
 */
export async function verifyCertificate(cert, chainId, set) {
  const { validators, totalPower } = set;
  if (cert.signatures.length > validators.length) {
    throw new ChainError('insufficient-power', `certificate has more signatures (${cert.signatures.length}) than validators`);
  }
  const seen = new Set();
  let power = 0n;
  for (const { validator } of cert.signatures) {
    const v = validators[validator];
    if (!v) throw new ChainError('unknown-validator', `unknown validator index ${validator}`);
    if (seen.has(validator)) throw new ChainError('duplicate-signature', `validator ${validator} signs the certificate twice`);
    seen.add(validator);
    power += v.votingPower;
  }
  if (!isQuorum(power, totalPower)) {
    throw new ChainError('insufficient-power', `certificate has ${power} of ${totalPower} voting power, needs more than two thirds`);
  }
  for (const { validator, signature } of cert.signatures) {
    const message = precommitSignBytes(chainId, cert.height, cert.round, cert.value, validator);
    const ok = await globalThis.crypto.subtle.verify('Ed25519', validators[validator].key, signature, message);
    if (!ok) throw new ChainError('bad-signature', `bad signature from validator ${validator}`);
  }
}

/**
 * Resolves only if `cert` finalises `header` on the chain `chainId` under `set`
 * (`verify_header_certificate`): the header names this chain, and the certificate verifies for
 * the header's height and hash. Returns the header hash.
 */
export async function verifyHeaderCertificate(header, cert, chainId, set, options) {
  if (!equalBytes(header.chainId, requireBytes(chainId, 'chain id', 32))) {
    throw new ChainError('wrong-chain', `the header is for chain ${toHex(header.chainId).slice(0, 12)}…, not this one`);
  }
  const hash = await headerHash(header, options);
  if (cert.height !== header.height) {
    throw new ChainError('wrong-height', `certificate is for height ${cert.height}, expected ${header.height}`);
  }
  if (!equalBytes(cert.value, hash)) {
    throw new ChainError('wrong-value', 'certificate is for another block than this header');
  }
  await verifyCertificate(cert, chainId, set);
  return hash;
}
