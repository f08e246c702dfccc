// The audit wire types, decoded and encoded exactly as the ledger writes them.
//
// Mirrors `ledger/src/audit/mod.rs` (AuditSubject, IndexedEvent, AuditEvents, AuditAnswer and
// their bounds), `ledger/src/audit/checkpoint.rs` (ConsistencyAnswer, Checkpoint),
// `ledger/src/access.rs` (AccessEvent, EventOutcome, DenialReason), `ledger/src/tx.rs`
// (Category, Purpose), `ledger/src/staff.rs` (StaffRef, StaffRole) and `ledger/src/state.rs`
// (LogState, a Frontier). The node serves these at `GET /v1/audit/...` as
// `application/octet-stream`: one version byte (1), then Borsh (`codec::encode`).

import { BorshWriter, decodeCanonical, fromHex, toHex } from './bytes.js';
import { emptyRoot, leafHash, nodeHash } from './merkle.js';
import { readBlockHeader, readCommitCertificate, writeBlockHeader, writeCommitCertificate } from './chain.js';
import { readSmtProof, writeSmtProof } from './smt.js';

export const AUDIT_EVENTS_MAX = 100_000;
export const AUDIT_LEAVES_MAX = 1_000_000;
export const AUDIT_ANSWER_BYTES_MAX = 64 * 1024 * 1024;
export const LOG_VALUE_BYTES_MAX = 4096;
export const CONSISTENCY_PROOF_MAX = 130;
export const CONSISTENCY_ANSWER_BYTES_MAX = 1024 * 1024;
const FRONTIER_HASHES_MAX = 64;

/** Codes of `Category`, by Borsh discriminant. */
export const CATEGORY = { 1: 'prenatal-visit', 2: 'ultrasound', 3: 'lab-results', 4: 'labour-and-delivery', 5: 'postpartum', 6: 'newborn-screening', 7: 'immunization', 8: 'referral', 9: 'other' };
/** HL7 PurposeOfUse codes of `Purpose`, by Borsh discriminant. */
export const PURPOSE = { 1: 'TREAT', 2: 'ETREAT', 3: 'HRESCH', 4: 'PUBHLTH', 5: 'HOPERAT', 6: 'HPAYMT', 7: 'PATRQT', 8: 'COC', 9: 'HSYSADMIN' };
/** Codes of `StaffRole`, by Borsh discriminant. */
export const STAFF_ROLE = { 1: 'obstetrician', 2: 'midwife', 3: 'nurse', 4: 'general-practitioner', 5: 'emergency-physician', 6: 'paediatrician', 7: 'administrator' };
/** `DenialReason` in snake case (its serde names), by Borsh discriminant. */
export const DENIAL_REASON = { 1: 'no_grant', 2: 'grant_not_yet_valid', 3: 'grant_expired', 4: 'grant_revoked', 5: 'purpose_not_covered', 6: 'break_glass_not_allowed', 7: 'justification_required', 8: 'break_glass_not_member', 9: 'justification_not_sealed', 10: 'institution_key', 11: 'staff_not_active', 12: 'role_not_covered', 13: 'break_glass_role_not_allowed' };
/** `AuditSubject` variants, by Borsh tag (a derived enum: tags 0..3). */
export const SUBJECT_KINDS = ['patient', 'archive', 'accessor', 'break_glass'];
/** `EventOutcome` variants, by Borsh tag (a derived enum: tags 0..5). */
export const OUTCOMES = ['permitted', 'denied', 'break_glass', 'reviewed', 'rotated', 'recovered'];
/** `ReviewDecision` codes, by Borsh discriminant. */
export const REVIEW_DECISION = { 1: 'justified', 2: 'not_justified' };

function code(r, table, what) {
  const v = r.u8(what);
  if (!(v in table)) r.fail(`${what}: unknown code ${v}`);
  return table[v];
}

function discriminant(table, name, what) {
  const entry = Object.entries(table).find(([, n]) => n === name);
  if (!entry) throw new Error(`${what}: unknown code ${name}`);
  return Number(entry[0]);
}

/** Reads an `AccessEvent`. */
export function readAccessEvent(r) {
  const e = {
    height: r.u64('event height'),
    timeMs: r.u64('event time_ms'),
    txHash: r.fixed(32, 'event tx_hash'),
    requestHash: r.fixed(32, 'event request_hash'),
    patient: r.fixed(32, 'event patient'),
    archive: r.fixed(32, 'event archive'),
    category: code(r, CATEGORY, 'event category'),
    custodian: r.fixed(32, 'event custodian'),
    accessor: r.fixed(32, 'event accessor'),
    staff: r.option((rr) => ({
      id: rr.fixed(16, 'staff id'),
      institution: rr.fixed(32, 'staff institution'),
      role: code(rr, STAFF_ROLE, 'staff role'),
    }), 'event staff'),
    purpose: code(r, PURPOSE, 'event purpose'),
    grant: r.option((rr) => rr.fixed(32, 'event grant'), 'event grant'),
  };
  e.outcome = r.enumOf({
    0: () => ({ kind: 'permitted' }),
    1: (rr) => ({ kind: 'denied', reason: code(rr, DENIAL_REASON, 'denial reason') }),
    2: () => ({ kind: 'break_glass' }),
    // A regulator's review of the break-glass access recorded by transaction `entry`.
    3: (rr) => ({ kind: 'reviewed', entry: rr.fixed(32, 'reviewed entry'), decision: code(rr, REVIEW_DECISION, 'review decision') }),
    // Not accesses: her keys changed, by her own rotation or a member's recovery; `newKey`
    // signs for her from the next block. Such an event names no archive (all zeros).
    4: (rr) => ({ kind: 'rotated', newKey: rr.fixed(32, 'rotated new key') }),
    5: (rr) => ({ kind: 'recovered', newKey: rr.fixed(32, 'recovered new key') }),
  }, 'event outcome');
  return e;
}

/** Writes an `AccessEvent`. */
export function writeAccessEvent(w, e) {
  w.u64(e.height).u64(e.timeMs).fixed(e.txHash, 32).fixed(e.requestHash, 32);
  w.fixed(e.patient, 32).fixed(e.archive, 32).u8(discriminant(CATEGORY, e.category, 'category'));
  w.fixed(e.custodian, 32).fixed(e.accessor, 32);
  w.option(e.staff, (ww, s) => ww.fixed(s.id, 16).fixed(s.institution, 32).u8(discriminant(STAFF_ROLE, s.role, 'role')));
  w.u8(discriminant(PURPOSE, e.purpose, 'purpose'));
  w.option(e.grant, (ww, g) => ww.fixed(g, 32));
  const tag = OUTCOMES.indexOf(e.outcome.kind);
  if (tag < 0) throw new Error(`outcome: unknown kind ${e.outcome.kind}`);
  w.u8(tag);
  if (e.outcome.kind === 'denied') w.u8(discriminant(DENIAL_REASON, e.outcome.reason, 'denial reason'));
  if (e.outcome.kind === 'reviewed') w.fixed(e.outcome.entry, 32).u8(discriminant(REVIEW_DECISION, e.outcome.decision, 'review decision'));
  if (isKeyChange(e)) w.fixed(e.outcome.newKey, 32);
  return w;
}

/** Whether the event records a change of the patient's keys rather than an access. */
export function isKeyChange(e) {
  return e.outcome.kind === 'rotated' || e.outcome.kind === 'recovered';
}

/** Whether the event is in the break-glass (oversight) log (`EventOutcome::in_break_glass_log`). */
export function inBreakGlassLog(e) {
  return ['break_glass', 'reviewed', 'recovered'].includes(e.outcome.kind);
}

/** The event's leaf in every log: RFC 6962 leaf hash of `codec::encode(event)`. */
export async function eventLeafHash(event) {
  return leafHash(writeAccessEvent(new BorshWriter(), event).toCanonical());
}

/** Reads an `AuditSubject`: `{kind, id}` (id absent for break-glass). */
export function readSubject(r) {
  return r.enumOf({
    0: (rr) => ({ kind: 'patient', id: rr.fixed(32, 'subject key') }),
    1: (rr) => ({ kind: 'archive', id: rr.fixed(32, 'subject archive') }),
    2: (rr) => ({ kind: 'accessor', id: rr.fixed(32, 'subject key') }),
    3: () => ({ kind: 'break_glass' }),
  }, 'audit subject');
}

export function writeSubject(w, s) {
  const tag = SUBJECT_KINDS.indexOf(s.kind);
  if (tag < 0) throw new Error(`subject: unknown kind ${s.kind}`);
  w.u8(tag);
  if (s.kind !== 'break_glass') w.fixed(s.id, 32, 'subject id');
  return w;
}

/** A subject from `{kind, id}` with the id in hex (as the page names it). */
export function subjectFromHex(kind, idHex) {
  if (!SUBJECT_KINDS.includes(kind)) throw new Error(`subject: unknown kind ${kind}`);
  return kind === 'break_glass' ? { kind } : { kind, id: fromHex(idHex, 32, `${kind} id`) };
}

function readIndexed(r) {
  return { index: r.u64('event index'), event: readAccessEvent(r) };
}

function readEvents(r) {
  return r.enumOf({
    0: (rr) => ({ kind: 'whole', events: rr.vec(AUDIT_EVENTS_MAX, readAccessEvent, 'events') }),
    1: (rr) => ({
      kind: 'range',
      fromMs: rr.u64('from_ms'),
      toMs: rr.u64('to_ms'),
      leaves: rr.vec(AUDIT_LEAVES_MAX, (x, i) => x.fixed(32, `leaf ${i}`), 'leaves'),
      events: rr.vec(AUDIT_EVENTS_MAX, readIndexed, 'events'),
    }),
  }, 'audit events');
}

/**
 * Decodes an `AuditAnswer` as a node serves it (`codec::encode`): `{header, certificate,
 * subject, logProof, logValue (bytes or null), events}`. Throws on anything malformed.
 */
export function decodeAuditAnswer(bytes, options) {
  return decodeCanonical(bytes, AUDIT_ANSWER_BYTES_MAX, (r) => ({
    header: readBlockHeader(r, options),
    certificate: readCommitCertificate(r),
    subject: readSubject(r),
    logProof: readSmtProof(r),
    logValue: r.option((rr) => rr.byteVec(LOG_VALUE_BYTES_MAX, 'log value'), 'log value'),
    events: readEvents(r),
  }), 'audit answer');
}

/** Encodes an `AuditAnswer` (`codec::encode`), for vectors and tampering tests. */
export function encodeAuditAnswer(a, options) {
  const w = new BorshWriter();
  writeBlockHeader(w, a.header, options);
  writeCommitCertificate(w, a.certificate);
  writeSubject(w, a.subject);
  writeSmtProof(w, a.logProof);
  w.option(a.logValue, (ww, v) => ww.byteVec(v, LOG_VALUE_BYTES_MAX, 'log value'));
  if (a.events.kind === 'whole') {
    w.u8(0).vec(a.events.events, AUDIT_EVENTS_MAX, writeAccessEvent);
  } else {
    w.u8(1).u64(a.events.fromMs).u64(a.events.toMs);
    w.vec(a.events.leaves, AUDIT_LEAVES_MAX, (ww, h) => ww.fixed(h, 32));
    w.vec(a.events.events, AUDIT_EVENTS_MAX, (ww, ie) => writeAccessEvent(ww.u64(ie.index), ie.event));
  }
  return w.toCanonical();
}

/** Decodes a `ConsistencyAnswer`: `{header, certificate, fromSize, proof}`. */
export function decodeConsistencyAnswer(bytes, options) {
  return decodeCanonical(bytes, CONSISTENCY_ANSWER_BYTES_MAX, (r) => ({
    header: readBlockHeader(r, options),
    certificate: readCommitCertificate(r),
    fromSize: r.u64('from_size'),
    proof: r.vec(CONSISTENCY_PROOF_MAX, (x, i) => x.fixed(32, `proof hash ${i}`), 'consistency proof'),
  }), 'consistency answer');
}

/** Encodes a `ConsistencyAnswer` (`codec::encode`). */
export function encodeConsistencyAnswer(a, options) {
  const w = new BorshWriter();
  writeBlockHeader(w, a.header, options);
  writeCommitCertificate(w, a.certificate);
  w.u64(a.fromSize).vec(a.proof, CONSISTENCY_PROOF_MAX, (ww, h) => ww.fixed(h, 32));
  return w.toCanonical();
}

function popcount64(x) {
  let n = 0;
  for (let v = x; v > 0n; v >>= 1n) n += Number(v & 1n);
  return n;
}

/**
 * Decodes a stored log value (`codec::encode(LogState)`: size u64, then one hash per set bit
 * of the size) and returns `{size, root}`.
 */
export async function decodeLogState(bytes) {
  const { size, hashes } = decodeCanonical(bytes, LOG_VALUE_BYTES_MAX, (r) => {
    const size = r.u64('log size');
    const count = r.u32('frontier hash count');
    const want = popcount64(size);
    if (count !== want || count > FRONTIER_HASHES_MAX) r.fail(`frontier of size ${size} must hold ${want} hashes, got ${count}`);
    const hashes = [];
    for (let i = 0; i < count; i++) hashes.push(r.fixed(32, `frontier hash ${i}`));
    return { size, hashes };
  }, 'log value');
  return { size, root: await frontierRoot(hashes) };
}

/** Encodes a LogState from `{size, hashes}` (for vectors). */
export function encodeLogState(size, hashes) {
  return new BorshWriter().u64(size).vec(hashes, FRONTIER_HASHES_MAX, (w, h) => w.fixed(h, 32)).toCanonical();
}

/** The RFC 6962 root from a frontier, folded from the right as `Frontier::root` does. */
async function frontierRoot(hashes) {
  if (hashes.length === 0) return emptyRoot();
  let acc = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) acc = await nodeHash(hashes[i], acc);
  return acc;
}

/** The Rust `Checkpoint` as its JSON file holds it (`serde_json`): hex digests, u64 numbers. */
export function checkpointToJson(cp) {
  return {
    height: Number(cp.height),
    header_hash: toHex(cp.headerHash),
    time_ms: Number(cp.timeMs),
    access_log_size: Number(cp.accessLogSize),
    access_log_root: toHex(cp.accessLogRoot),
  };
}

/** A checkpoint from its JSON form; throws on a missing or malformed field. */
export function checkpointFromJson(j) {
  const num = (v, what) => {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`checkpoint ${what}: not a u64`);
    return BigInt(v);
  };
  return {
    height: num(j.height, 'height'),
    headerHash: fromHex(j.header_hash, 32, 'checkpoint header_hash'),
    timeMs: num(j.time_ms, 'time_ms'),
    accessLogSize: num(j.access_log_size, 'access_log_size'),
    accessLogRoot: fromHex(j.access_log_root, 32, 'checkpoint access_log_root'),
  };
}
