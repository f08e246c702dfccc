// The member sets after genesis, followed in the page as the Rust light client follows them.
//
// Mirrors `ledger/src/governance/sets.rs` (`SetChange`, `Sets::follow`, `Sets::at`, the
// `HeaderTrust` of `Sets`), `ledger/src/identity.rs` (`MemberSet`, its hash, and the checks of
// `Consortium::with_set`) and `client/src/api.rs` (`member_sets`): `GET /v1/governance/sets`
// answers every adopted set with the certified header of the height before it takes effect.
// Each change is taken up only if that header is certified by the set in force at its height
// (the newest one followed), names the new set's hash as the next height's, and the set is the
// next epoch: no change can be skipped, and a certificate is judged by the set of its own
// height, so a key that a vote removed or rotated out certifies nothing after the vote.
//
// - set hash = SHA-256("cradle.ledger.member-set.v1\0" || borsh(MemberSet));
// - the validators of a set are its members with power, in member order, each by the key that
//   signs for it now (`signing_key`, else its identity key).

import { BorshWriter, concatBytes, decodeCanonical, equalBytes, requireBytes, sha256, toHex, utf8 } from './bytes.js';
import { ChainError, readBlockHeader, readCommitCertificate, validatorSetFromMembers, verifyHeaderCertificate } from './chain.js';
import { STAFF_ROLE } from './audit.js';

export const TAG_MEMBER_SET = utf8('cradle.ledger.member-set.v1\0');
/** `SET_CHANGES_MAX`: most changes one answer carries. */
export const SET_CHANGES_MAX = 10_000;
/** `SET_CHANGES_BYTES_MAX` of the client: the largest answer read. */
export const SET_CHANGES_BYTES_MAX = 32 * 1024 * 1024;
/** `VALIDATORS_MAX`: most members a set may hold. */
const MEMBERS_MAX = 1024;
/** `JUSTIFICATION_READERS_MAX`: a set holds fewer regulators than this. */
const JUSTIFICATION_READERS_MAX = 16;
/** `GRANT_CODES_MAX`: most break-glass roles a policy names. */
const GRANT_CODES_MAX = 16;
/** `TX_BYTES_HARD_MAX`, `BLOCK_BYTES_HARD_MAX`. */
const TX_BYTES_HARD_MAX = 1024 * 1024;
const BLOCK_BYTES_HARD_MAX = 64 * 1024 * 1024;
/** `TIMEOUT_MS_MIN`, `TIMEOUT_MS_MAX` of the consensus configuration. */
const TIMEOUT_MS_MIN = 50n;
const TIMEOUT_MS_MAX = 60_000n;
const STRING_BYTES_MAX = 64 * 1024;
const ROLE_CODES = { 1: 'hospital', 2: 'clinic', 3: 'regulator' };
const TIMEOUT_FIELDS = ['timeout_propose_ms', 'timeout_prevote_ms', 'timeout_precommit_ms', 'timeout_delta_ms'];

/**
 * A set change refused: `code` is the Rust verdict's name (`out-of-order`, `wrong-chain`,
 * `uncertified`, `next-members-hash`, `invalid-set`, `unfollowed`, `malformed`).
 */
export class SetError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SetError';
    this.code = code;
  }
}

const codeOf = (table, name) => Number(Object.entries(table).find(([, n]) => n === name)?.[0]);

function readMember(r, i) {
  const role = r.u8(`member ${i} role`);
  return {
    name: null,
    role: ROLE_CODES[role] ?? r.fail(`member ${i}: unknown role ${role}`),
    publicKey: r.fixed(32, `member ${i} public_key`),
    x25519: r.fixed(32, `member ${i} x25519`),
    votingPower: r.u64(`member ${i} voting_power`),
    p2pAddr: r.option((rr) => rr.string(STRING_BYTES_MAX, 'p2p_addr'), 'p2p_addr'),
    apiAddr: r.option((rr) => rr.string(STRING_BYTES_MAX, 'api_addr'), 'api_addr'),
    signingKey: r.option((rr) => rr.fixed(32, 'signing_key'), 'signing_key'),
  };
}

/** Reads a `MemberSet`: `{epoch, members, policy, limits, timeouts}` (u64s as BigInt). */
export function readMemberSet(r) {
  const epoch = r.u64('set epoch');
  const members = r.vec(MEMBERS_MAX, (rr, i) => {
    const name = rr.string(STRING_BYTES_MAX, `member ${i} name`);
    return { ...readMember(rr, i), name };
  }, 'set members');
  const policy = {
    breakGlassAllowed: r.bool('break_glass_allowed'),
    breakGlassRoles: r.vec(MEMBERS_MAX, (rr) => {
      const c = rr.u8('break-glass role');
      return STAFF_ROLE[c] ?? rr.fail(`unknown staff role ${c}`);
    }, 'break_glass_roles'),
    accessRequestTtlMs: r.u64('access_request_ttl_ms'),
    grantDurationMaxMs: r.u64('grant_duration_max_ms'),
    membershipNeedsRegulator: r.bool('membership_needs_regulator'),
    proposalTtlMs: r.u64('proposal_ttl_ms'),
  };
  const limits = { txBytesMax: r.u32('tx_bytes_max'), blockTxsMax: r.u32('block_txs_max'), blockBytesMax: r.u32('block_bytes_max') };
  const timeouts = r.option((rr) => Object.fromEntries(TIMEOUT_FIELDS.map((f) => [f, rr.u64(f)])), 'timeouts');
  return { epoch, members, policy, limits, timeouts };
}

/** Writes a `MemberSet` in its Borsh layout. */
export function writeMemberSet(w, set) {
  w.u64(set.epoch, 'epoch');
  w.vec(set.members, MEMBERS_MAX, (ww, m) => {
    ww.string(m.name, STRING_BYTES_MAX, 'name').u8(codeOf(ROLE_CODES, m.role), 'role');
    ww.fixed(m.publicKey, 32, 'public_key').fixed(m.x25519, 32, 'x25519').u64(m.votingPower, 'voting_power');
    ww.option(m.p2pAddr ?? null, (x, s) => x.string(s, STRING_BYTES_MAX, 'p2p_addr'));
    ww.option(m.apiAddr ?? null, (x, s) => x.string(s, STRING_BYTES_MAX, 'api_addr'));
    ww.option(m.signingKey ?? null, (x, k) => x.fixed(k, 32, 'signing_key'));
  });
  const p = set.policy;
  w.bool(p.breakGlassAllowed).vec(p.breakGlassRoles, MEMBERS_MAX, (ww, r) => ww.u8(codeOf(STAFF_ROLE, r), 'break-glass role'));
  w.u64(p.accessRequestTtlMs).u64(p.grantDurationMaxMs).bool(p.membershipNeedsRegulator).u64(p.proposalTtlMs);
  w.u32(set.limits.txBytesMax).u32(set.limits.blockTxsMax).u32(set.limits.blockBytesMax);
  w.option(set.timeouts, (ww, t) => TIMEOUT_FIELDS.forEach((f) => ww.u64(t[f], f)));
  return w;
}

export const encodeMemberSet = (set) => writeMemberSet(new BorshWriter(), set).toBytes();

/** `MemberSet::hash`. */
export const memberSetHash = async (set) => sha256(concatBytes(TAG_MEMBER_SET, encodeMemberSet(set)));

/** The genesis set (epoch 0, no signing keys rotated, genesis's own timeouts) of a read genesis document. */
export function genesisSet(doc) {
  return {
    epoch: 0n,
    members: doc.members.map((m) => ({ ...m, votingPower: BigInt(m.votingPower), signingKey: null })),
    policy: { ...doc.policy, accessRequestTtlMs: BigInt(doc.policy.accessRequestTtlMs), grantDurationMaxMs: BigInt(doc.policy.grantDurationMaxMs), proposalTtlMs: BigInt(doc.policy.proposalTtlMs) },
    limits: { ...doc.limits },
    timeouts: null,
  };
}

/** The key that signs for `member` now (`Member::signing_key`). */
export const signingKeyOf = (m) => m.signingKey ?? m.publicKey;
/** Whether `key` is the member's identity or its signer (`Member::holds`). */
const holds = (m, key) => equalBytes(m.publicKey, key) || (m.signingKey !== null && m.signingKey !== undefined && equalBytes(m.signingKey, key));

/** The checks of `Consortium::of_set`, then the set with its validators and hash. */
export async function consortiumOf(set) {
  const invalid = (message) => new SetError('invalid-set', message);
  const l = set.limits;
  if (!(l.txBytesMax >= 512 && l.txBytesMax <= TX_BYTES_HARD_MAX && l.blockTxsMax >= 1 && l.blockBytesMax >= l.txBytesMax && l.blockBytesMax <= BLOCK_BYTES_HARD_MAX)) {
    throw invalid('invalid limits');
  }
  const p = set.policy;
  if (!(p.accessRequestTtlMs > 0n && p.grantDurationMaxMs > 0n && p.proposalTtlMs > 0n && p.breakGlassRoles.length <= GRANT_CODES_MAX)) {
    throw invalid('invalid policy');
  }
  if (set.timeouts) {
    const t = set.timeouts;
    const base = ['timeout_propose_ms', 'timeout_prevote_ms', 'timeout_precommit_ms'];
    const inRange = base.every((f) => t[f] >= TIMEOUT_MS_MIN && t[f] <= TIMEOUT_MS_MAX) && t.timeout_delta_ms >= 1n && t.timeout_delta_ms <= TIMEOUT_MS_MAX;
    if (!inRange || t.timeout_delta_ms > t.timeout_propose_ms) throw invalid('invalid consensus timeouts');
  }
  const members = set.members;
  if (members.length > MEMBERS_MAX) throw invalid('too many members');
  if (members.filter((m) => m.role === 'regulator').length >= JUSTIFICATION_READERS_MAX) throw invalid('too many regulators');
  members.forEach((m, i) => {
    const before = members.slice(0, i);
    const clash = (o) => holds(o, m.publicKey) || holds(o, signingKeyOf(m));
    if (before.some(clash) || (m.signingKey && equalBytes(m.signingKey, m.publicKey))) throw invalid(`duplicate member ${toHex(m.publicKey)}`);
    if (before.some((o) => equalBytes(o.x25519, m.x25519))) throw invalid(`duplicate x25519 key of ${toHex(m.publicKey)}`);
    if (m.role === 'regulator' && m.votingPower > 0n) throw invalid(`regulator ${toHex(m.publicKey)} validates`);
  });
  let validatorSet;
  try {
    validatorSet = await validatorSetFromMembers(members.map((m) => ({ publicKey: signingKeyOf(m), votingPower: m.votingPower })));
  } catch (e) {
    throw invalid(e.message);
  }
  return { set, epoch: set.epoch, members, validatorSet, hash: await memberSetHash(set) };
}

/** Reads one `SetChange`: `{set, header, certificate}`. */
export function readSetChange(r) {
  return { set: readMemberSet(r), header: readBlockHeader(r), certificate: readCommitCertificate(r) };
}

/** Decodes a `GET /v1/governance/sets` answer (`codec::encode(SetChanges)`); throws a SetError. */
export function decodeSetChanges(bytes) {
  try {
    return decodeCanonical(bytes, SET_CHANGES_BYTES_MAX, (r) => r.vec(SET_CHANGES_MAX, readSetChange, 'set changes'), 'set changes');
  } catch (e) {
    throw new SetError('malformed', e.message);
  }
}

/** Runs a chain check, reporting its failure as the Rust verdict's code. */
async function judged(check) {
  try {
    return await check();
  } catch (e) {
    if (e instanceof ChainError) throw new SetError(e.code === 'wrong-chain' ? 'wrong-chain' : 'uncertified', e.message);
    throw e;
  }
}

/**
 * The sets of one chain from genesis, each from the height it takes effect at (`Sets`): the
 * `trust` the history verifier takes, and what the page keeps in IndexedDB (`changes`, the
 * encoded changes followed, re-followed from genesis when loaded).
 */
export class Sets {
  constructor(chainId, genesis) {
    this.chainId = requireBytes(chainId, 'chain id', 32);
    /** `[{first, c}]`, genesis first at height 1. */
    this.sets = [{ first: 1n, c: genesis }];
    /** The changes followed, as `{set, header, certificate}`. */
    this.changes = [];
  }

  /** The sets of a chain that knows only its genesis set. */
  static async fromSet(chainId, set) {
    return new Sets(chainId, await consortiumOf(set));
  }

  /** `Sets::follow`: takes up the next set after checking its proof, or throws a SetError. */
  async follow(change) {
    const { header, certificate, set } = change;
    const { first: lastFirst, c: prev } = this.sets[this.sets.length - 1];
    if (header.height < lastFirst || set.epoch !== prev.epoch + 1n) {
      throw new SetError('out-of-order', `a change at height ${header.height} to epoch ${set.epoch} does not follow epoch ${prev.epoch}`);
    }
    await judged(() => verifyHeaderCertificate(header, certificate, this.chainId, prev.validatorSet));
    const next = await consortiumOf(set);
    if (!equalBytes(header.nextMembersHash, next.hash)) {
      throw new SetError('next-members-hash', `the header at height ${header.height} names another set`);
    }
    this.sets.push({ first: header.height + 1n, c: next });
    this.changes.push(change);
  }

  /**
   * Follows a node's whole list (`Sets::following`) from where this one stands: the changes it
   * already followed must be the list's first ones, the same sets, or the list is refused.
   */
  async followAll(changes) {
    for (const [i, change] of changes.entries()) {
      if (i < this.changes.length) {
        const known = this.sets[i + 1];
        if (!equalBytes(await memberSetHash(change.set), known.c.hash) || change.header.height + 1n !== known.first) {
          throw new SetError('out-of-order', `the node's change ${i} is not the one this page followed`);
        }
        continue;
      }
      await this.follow(change);
    }
  }

  /** `Sets::at`: the set in force at `height`. */
  at(height) {
    const h = BigInt(height) < 1n ? 1n : BigInt(height);
    let found = this.sets[0].c;
    for (const { first, c } of this.sets) if (first <= h) found = c;
    return found;
  }

  latest() {
    return this.sets[this.sets.length - 1].c;
  }

  /**
   * `HeaderTrust::check_header` of `Sets`: the certificate finalises the header under the set in
   * force at its height, and the header names the set this page knows at the next height.
   */
  async checkHeader(header, certificate, options) {
    const hash = await judged(() => verifyHeaderCertificate(header, certificate, this.chainId, this.at(header.height).validatorSet, options));
    if (!equalBytes(header.nextMembersHash, this.at(header.height + 1n).hash)) {
      throw new SetError('unfollowed', `the header at height ${header.height} names a member set this page has not followed`);
    }
    return hash;
  }

  /** The member whose identity or signing key is `key`, newest set first (for names). */
  memberByAnyKey(key) {
    for (let i = this.sets.length - 1; i >= 0; i--) {
      const m = this.sets[i].c.members.find((mm) => holds(mm, key));
      if (m) return m;
    }
    return null;
  }

  /** The member that `key` signs for in the newest set (`Consortium::signer`). */
  signer(key) {
    return this.latest().members.find((m) => equalBytes(signingKeyOf(m), key)) ?? null;
  }
}
