// The genesis document in the page: read strictly, and hashed into the chain id as Rust does.
//
// Mirrors `genesis/src/doc.rs` (`GenesisDoc`, `GenesisMember`, `ConsensusParams`,
// `GenesisDoc::chain_id` = SHA-256("cradle.genesis.v1\0" || borsh(doc))), `ledger/src/identity.rs`
// (`Role`, `Policy` and its defaults, `Limits`), `consensus/src/config.rs` and
// `consensus/src/pacing.rs` (the six consensus fields, in that order) and `ledger/src/staff.rs`
// (`StaffRole`). Everything the page trusts starts here: the chain id every signature binds, the
// validators that certify headers, and the names of the institutions that read her records.
//
// The document, like the Rust one, refuses unknown fields at the top level, in members and in
// `consensus`; `policy` takes its serde defaults for the fields genesis may leave out. A number
// beyond JavaScript's safe integers is refused rather than rounded.

import { BorshWriter, concatBytes, fromHex, sha256, toHex, utf8 } from './bytes.js';
import { validatorSetFromMembers } from './chain.js';
import { STAFF_ROLE } from './audit.js';

export const CHAIN_ID_TAG = utf8('cradle.genesis.v1\0');
/** `GENESIS_FILE_BYTES_MAX`: the largest genesis file read. */
export const GENESIS_BYTES_MAX = 4 * 1024 * 1024;
export const MEMBERS_MAX = 1024;
const NAME_BYTES_MAX = 128;
const CHAIN_NAME_BYTES_MAX = 64;
const STRING_BYTES_MAX = 1024;

/** `Role` by its serde name, with its Borsh discriminant. */
export const ROLES = Object.freeze({ hospital: 1, clinic: 2, regulator: 3 });
/** `default_break_glass_roles`: emergency physicians and obstetricians. */
const DEFAULT_BREAK_GLASS_ROLES = ['emergency-physician', 'obstetrician'];
/** `default_proposal_ttl_ms`: a week. */
const DEFAULT_PROPOSAL_TTL_MS = 7 * 24 * 3600 * 1000;

const TOP_FIELDS = ['chain_name', 'genesis_time_ms', 'members', 'consensus', 'policy', 'limits'];
const MEMBER_FIELDS = ['name', 'role', 'public_key', 'x25519', 'voting_power', 'p2p_addr', 'api_addr'];
const CONSENSUS_FIELDS = ['timeout_propose_ms', 'timeout_prevote_ms', 'timeout_precommit_ms', 'timeout_delta_ms', 'batch_window_ms', 'heartbeat_ms'];

/** A genesis document the page refuses: `code` is stable, for the page's own words. */
export class GenesisError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'GenesisError';
    this.code = code;
  }
}

const bad = (message) => new GenesisError('invalid-genesis', message);

function object(value, what) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(`${what} must be an object`);
  return value;
}

function onlyFields(value, allowed, what) {
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) throw bad(`${what}: unknown field ${k}`);
  }
}

function uint(value, what, bits = 64) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(`${what} must be a whole number this page can read exactly`);
  if (bits === 32 && value > 0xffffffff) throw bad(`${what} exceeds u32`);
  return value;
}

function string(value, what, max = STRING_BYTES_MAX) {
  if (typeof value !== 'string') throw bad(`${what} must be a string`);
  if (utf8(value).length > max) throw bad(`${what} is longer than ${max} bytes`);
  return value;
}

function key32(value, what) {
  if (typeof value !== 'string') throw bad(`${what} must be hex`);
  try {
    return fromHex(value.trim(), 32, what);
  } catch (e) {
    throw bad(e.message);
  }
}

function bool(value, what) {
  if (typeof value !== 'boolean') throw bad(`${what} must be true or false`);
  return value;
}

function optionalString(value, what) {
  return value === undefined || value === null ? null : string(value, what);
}

function readMember(m, i) {
  object(m, `member ${i}`);
  onlyFields(m, MEMBER_FIELDS, `member ${i}`);
  if (!(m.role in ROLES)) throw bad(`member ${i}: unknown role ${m.role}`);
  return {
    name: string(m.name, `member ${i} name`, NAME_BYTES_MAX),
    role: m.role,
    publicKey: key32(m.public_key, `member ${i} public_key`),
    x25519: key32(m.x25519, `member ${i} x25519`),
    votingPower: uint(m.voting_power, `member ${i} voting_power`),
    p2pAddr: optionalString(m.p2p_addr, `member ${i} p2p_addr`),
    apiAddr: optionalString(m.api_addr, `member ${i} api_addr`),
  };
}

function readPolicy(p) {
  object(p, 'policy');
  const roles = p.break_glass_roles ?? DEFAULT_BREAK_GLASS_ROLES;
  if (!Array.isArray(roles)) throw bad('policy.break_glass_roles must be a list');
  const codes = Object.values(STAFF_ROLE);
  for (const r of roles) if (!codes.includes(r)) throw bad(`policy: unknown staff role ${r}`);
  return {
    breakGlassAllowed: bool(p.break_glass_allowed, 'policy.break_glass_allowed'),
    breakGlassRoles: roles,
    accessRequestTtlMs: uint(p.access_request_ttl_ms, 'policy.access_request_ttl_ms'),
    grantDurationMaxMs: uint(p.grant_duration_max_ms, 'policy.grant_duration_max_ms'),
    membershipNeedsRegulator: p.membership_needs_regulator === undefined ? false : bool(p.membership_needs_regulator, 'policy.membership_needs_regulator'),
    proposalTtlMs: p.proposal_ttl_ms === undefined ? DEFAULT_PROPOSAL_TTL_MS : uint(p.proposal_ttl_ms, 'policy.proposal_ttl_ms'),
  };
}

function readLimits(l) {
  object(l, 'limits');
  return {
    txBytesMax: uint(l.tx_bytes_max, 'limits.tx_bytes_max', 32),
    blockTxsMax: uint(l.block_txs_max, 'limits.block_txs_max', 32),
    blockBytesMax: uint(l.block_bytes_max, 'limits.block_bytes_max', 32),
  };
}

/** Reads a genesis document (parsed JSON) into the page's form; throws a GenesisError. */
export function readGenesis(json) {
  object(json, 'genesis');
  onlyFields(json, TOP_FIELDS, 'genesis');
  if (!Array.isArray(json.members) || json.members.length === 0) throw bad('genesis lists no members');
  if (json.members.length > MEMBERS_MAX) throw bad(`more than ${MEMBERS_MAX} members`);
  const consensus = object(json.consensus, 'consensus');
  onlyFields(consensus, CONSENSUS_FIELDS, 'consensus');
  return {
    chainName: string(json.chain_name, 'chain_name', CHAIN_NAME_BYTES_MAX),
    genesisTimeMs: uint(json.genesis_time_ms, 'genesis_time_ms'),
    members: json.members.map(readMember),
    consensus: Object.fromEntries(CONSENSUS_FIELDS.map((f) => [f, uint(consensus[f], `consensus.${f}`)])),
    policy: readPolicy(json.policy),
    limits: readLimits(json.limits),
  };
}

/** The Borsh bytes of a read genesis document (`borsh::to_writer(GenesisDoc)`). */
export function encodeGenesis(doc) {
  const w = new BorshWriter();
  w.string(doc.chainName, CHAIN_NAME_BYTES_MAX, 'chain_name').u64(doc.genesisTimeMs, 'genesis_time_ms');
  w.vec(doc.members, MEMBERS_MAX, (ww, m) => {
    ww.string(m.name, NAME_BYTES_MAX, 'name').u8(ROLES[m.role], 'role');
    ww.fixed(m.publicKey, 32, 'public_key').fixed(m.x25519, 32, 'x25519').u64(m.votingPower, 'voting_power');
    ww.option(m.p2pAddr, (x, s) => x.string(s, STRING_BYTES_MAX, 'p2p_addr'));
    ww.option(m.apiAddr, (x, s) => x.string(s, STRING_BYTES_MAX, 'api_addr'));
  });
  for (const f of CONSENSUS_FIELDS) w.u64(doc.consensus[f], f);
  const p = doc.policy;
  const roleCode = (name) => Number(Object.entries(STAFF_ROLE).find(([, n]) => n === name)[0]);
  w.bool(p.breakGlassAllowed).vec(p.breakGlassRoles, 64, (ww, r) => ww.u8(roleCode(r), 'break-glass role'));
  w.u64(p.accessRequestTtlMs).u64(p.grantDurationMaxMs).bool(p.membershipNeedsRegulator).u64(p.proposalTtlMs);
  w.u32(doc.limits.txBytesMax).u32(doc.limits.blockTxsMax).u32(doc.limits.blockBytesMax);
  return w.toBytes();
}

/** `GenesisDoc::chain_id`: SHA-256 over the tag and the document's Borsh bytes. */
export async function chainIdOf(doc) {
  return sha256(concatBytes(CHAIN_ID_TAG, encodeGenesis(doc)));
}

/**
 * Everything the page trusts, from the text of a genesis file: `{doc, chainId, chainIdHex,
 * trust: {chainId, validatorSet}, memberName(key)}`. Throws a GenesisError for a file that is
 * not a genesis document.
 */
export async function loadGenesis(text) {
  if (typeof text !== 'string' || text.length > GENESIS_BYTES_MAX) throw bad('not a genesis file');
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GenesisError('not-json', `not JSON: ${e.message}`);
  }
  const doc = readGenesis(json);
  const chainId = await chainIdOf(doc);
  let validatorSet;
  try {
    validatorSet = await validatorSetFromMembers(doc.members);
  } catch (e) {
    throw bad(e.message);
  }
  const names = new Map(doc.members.map((m) => [toHex(m.publicKey), m]));
  return {
    doc,
    chainId,
    chainIdHex: toHex(chainId),
    trust: { chainId, validatorSet },
    /** The genesis member whose identity key is `key` (bytes or hex), or null. */
    member: (key) => names.get(typeof key === 'string' ? key.toLowerCase() : toHex(key)) ?? null,
  };
}
