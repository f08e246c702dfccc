// Verifying an access history (an audit answer) in the page, from genesis alone.
//
// Mirrors `ledger/src/audit/verify.rs` (`verify_answer`), `ledger/src/audit/checkpoint.rs`
// (`advance_checkpoint`, `ConsistencyAnswer::advance`) and the client's `audit_verified`
// (`client/src/audit.rs`): the answer must be about what was asked; its header must be
// finalised on this chain by the member set in force at its height (followed from genesis,
// `sets.js`) and name the set it knows for the next height; the subject's log (size and root) must be
// proven by the header's state root; the events must be all of that log, about the subject, in
// log order, hashing to its root; a time-range answer must cover its range with no gap; and the
// header must extend the checkpoint the browser kept, over a consistency proof of the global
// access log when that log grew.
//
// `verifyHistory` never throws for a bad answer: it returns `{verified: true, ...}` only when
// every check passed, and otherwise `{verified: false, code, reason}` naming the first check
// that failed. It does no I/O; `needsConsistencyProof` tells the page when to fetch
// `GET /v1/audit/consistency?from=SIZE` before calling it.

import { equalBytes, requireBytes, sha256 } from './bytes.js';
import { ChainError, headerHash as hashOfHeader, verifyHeaderCertificate } from './chain.js';
import { emptyRoot, rootOf, verifyConsistency } from './merkle.js';
import { patientLogKey, archiveLogKey, accessorLogKey, breakGlassLogKey, verifySmtProof } from './smt.js';
import { decodeAuditAnswer, decodeConsistencyAnswer, decodeLogState, eventLeafHash, inBreakGlassLog, isKeyChange } from './audit.js';
import { SetError } from './sets.js';

/** Why a history was refused; `code` is stable for the page to show its own words. */
export class HistoryRefusal extends Error {
  constructor(code, reason) {
    super(reason);
    this.name = 'HistoryRefusal';
    this.code = code;
  }
}

/** Every refusal code `verifyHistory` may return, with what it means for the reader. */
export const REFUSALS = Object.freeze({
  'malformed': 'the answer does not decode',
  'not-asked': 'the node answered another question',
  'wrong-chain': 'the header is for another chain',
  'uncertified-header': 'the header is not finalised by the member set in force at its height',
  'unfollowed-set': 'the header names a member set this page has not verified',
  'state-proof': "the subject's log is not proven by the header's state root",
  'dropped-entry': 'entries are missing from the history',
  'altered-entry': 'an entry differs from the committed one',
  'reordered-entry': 'entries are out of log order',
  'wrong-subject': 'an entry is not about the subject',
  'range-gap': 'the time range is not covered without a gap',
  'stale-answer': 'the header is older than the checkpoint kept in this browser',
  'stale-node': "the node's newest proven block is too old",
  'missing-consistency-proof': 'a consistency proof from the kept checkpoint is needed',
  'inconsistent-checkpoint': 'the history forks from the checkpoint kept in this browser',
});

const refuse = (code, detail) => new HistoryRefusal(code, `${REFUSALS[code]}: ${detail}`);

/** The state key of a subject's log (`AuditSubject::state_key`). */
export function subjectStateKey(subject) {
  switch (subject.kind) {
    case 'patient': return patientLogKey(subject.id);
    case 'archive': return archiveLogKey(subject.id);
    case 'accessor': return accessorLogKey(subject.id);
    case 'break_glass': return breakGlassLogKey();
    default: throw new Error(`unknown subject kind ${subject.kind}`);
  }
}

/** Whether `event` belongs in the subject's log (`AuditSubject::matches`). */
export function subjectMatches(subject, e) {
  switch (subject.kind) {
    case 'patient': return equalBytes(e.patient, subject.id);
    // A key change names no archive.
    case 'archive': return !isKeyChange(e) && equalBytes(e.archive, subject.id);
    // An institution answers for its clinicians' accesses too.
    case 'accessor': return equalBytes(e.accessor, subject.id) || (e.staff !== null && equalBytes(e.staff.institution, subject.id));
    // Every break-glass access, every regulator's review of one, every recovery by a member.
    case 'break_glass': return inBreakGlassLog(e);
    default: return false;
  }
}

function sameSubject(a, b) {
  return a.kind === b.kind && (a.kind === 'break_glass' || equalBytes(a.id, b.id));
}

/** Checks the certificate, mapping chain errors to refusals. Returns the header hash. */
async function certified(header, certificate, trust, options) {
  try {
    if (trust.sets) return await trust.sets.checkHeader(header, certificate, options);
    return await verifyHeaderCertificate(header, certificate, trust.chainId, trust.validatorSet, options);
  } catch (e) {
    if (e instanceof SetError) {
      const code = { 'wrong-chain': 'wrong-chain', unfollowed: 'unfollowed-set' }[e.code] ?? 'uncertified-header';
      throw refuse(code, e.message);
    }
    if (!(e instanceof ChainError)) throw e;
    throw refuse(e.code === 'wrong-chain' ? 'wrong-chain' : 'uncertified-header', e.message);
  }
}

/** The subject's log `{size, root}` as the header's state root commits to it. */
async function provenLog(answer) {
  const keyHash = await sha256(subjectStateKey(answer.subject));
  const valueHash = answer.logValue === null ? null : await sha256(answer.logValue);
  try {
    await verifySmtProof(answer.logProof, answer.header.stateRoot, keyHash, valueHash);
  } catch (e) {
    throw refuse('state-proof', e.message);
  }
  if (answer.logValue === null) return { size: 0n, root: await emptyRoot() };
  try {
    return await decodeLogState(answer.logValue);
  } catch (e) {
    throw refuse('state-proof', `log value: ${e.message}`);
  }
}

/** Every event is about the subject; indices increase strictly, heights and times never fall. */
function checkSubjectAndOrder(subject, indexed) {
  indexed.forEach((ie, i) => {
    if (!subjectMatches(subject, ie.event)) throw refuse('wrong-subject', `entry at log index ${ie.index}`);
    const prev = indexed[i - 1];
    if (prev && (ie.index <= prev.index || ie.event.height < prev.event.height || ie.event.timeMs < prev.event.timeMs)) {
      throw refuse('reordered-entry', `entry at log index ${ie.index} is out of log order`);
    }
  });
}

/** A range answer's events are one contiguous run with a boundary event or a log end each side. */
function checkRange(events, size, fromMs, toMs) {
  if (fromMs > toMs) throw refuse('range-gap', 'the range ends before it starts');
  if (events.length === 0) {
    if (size === 0n) return [];
    throw refuse('range-gap', 'no events for a non-empty log');
  }
  for (let i = 1; i < events.length; i++) {
    if (events[i].index !== events[i - 1].index + 1n) throw refuse('range-gap', 'the events are not contiguous');
  }
  const first = events[0];
  const last = events[events.length - 1];
  const before = first.event.timeMs < fromMs;
  const after = last.event.timeMs > toMs;
  if (!before && first.index !== 0n) throw refuse('range-gap', 'no boundary event before the range');
  if (!after && last.index + 1n !== size) throw refuse('range-gap', 'no boundary event after the range');
  const inner = events.slice(before ? 1 : 0, events.length - (after ? 1 : 0));
  if (inner.some((ie) => ie.event.timeMs < fromMs || ie.event.timeMs > toMs)) {
    throw refuse('range-gap', 'a boundary event lies inside the run');
  }
  return inner;
}

/** The events of the answer, checked against the proven log; mirrors `verify_answer`. */
async function checkEvents(answer, log) {
  const ev = answer.events;
  if (ev.kind === 'whole') {
    if (BigInt(ev.events.length) !== log.size) {
      throw refuse('dropped-entry', `the committed log holds ${log.size} entries, the answer ${ev.events.length}`);
    }
    const indexed = ev.events.map((event, i) => ({ index: BigInt(i), event }));
    checkSubjectAndOrder(answer.subject, indexed);
    const leaves = [];
    for (const e of ev.events) leaves.push(await eventLeafHash(e));
    if (!equalBytes(await rootOf(leaves), log.root)) {
      throw refuse('altered-entry', 'the entries do not hash to the committed log root');
    }
    return indexed;
  }
  if (BigInt(ev.leaves.length) !== log.size) {
    throw refuse('dropped-entry', `the committed log holds ${log.size} entries, the answer ${ev.leaves.length}`);
  }
  if (!equalBytes(await rootOf(ev.leaves), log.root)) {
    throw refuse('altered-entry', 'the leaf hashes do not hash to the committed log root');
  }
  for (const ie of ev.events) {
    if (ie.index >= BigInt(ev.leaves.length)) throw refuse('range-gap', 'an entry index is beyond the log');
    if (!equalBytes(await eventLeafHash(ie.event), ev.leaves[Number(ie.index)])) {
      throw refuse('altered-entry', `entry at log index ${ie.index} differs from the committed one`);
    }
  }
  checkSubjectAndOrder(answer.subject, ev.events);
  return checkRange(ev.events, log.size, ev.fromMs, ev.toMs);
}

/** The checkpoint of a verified header. */
export function checkpointOf(header, headerHash) {
  return { height: header.height, headerHash, timeMs: header.timeMs, accessLogSize: header.accessLogSize, accessLogRoot: header.accessLogRoot };
}

function sameCheckpoint(a, b) {
  return a.height === b.height && a.timeMs === b.timeMs && a.accessLogSize === b.accessLogSize
    && equalBytes(a.headerHash, b.headerHash) && equalBytes(a.accessLogRoot, b.accessLogRoot);
}

/** Moves `old` to a certified header (`advance_checkpoint`); `proof` is null when none came. */
async function advance(old, header, hash, proof) {
  const next = checkpointOf(header, hash);
  if (!old) return next;
  if (header.height < old.height) throw refuse('stale-answer', `header at height ${header.height}, checkpoint at ${old.height}`);
  if (header.height === old.height) {
    if (sameCheckpoint(next, old)) return next;
    throw refuse('inconsistent-checkpoint', `another block at the remembered height ${old.height}`);
  }
  if (header.timeMs <= old.timeMs) throw refuse('inconsistent-checkpoint', 'a later block that is not later in time');
  const [size1, size2] = [old.accessLogSize, header.accessLogSize];
  if (size2 < size1) throw refuse('inconsistent-checkpoint', `the access log shrank from ${size1} to ${size2} entries`);
  if (size1 === 0n) {
    if (!equalBytes(old.accessLogRoot, await emptyRoot())) throw refuse('inconsistent-checkpoint', 'the remembered empty log has a non-empty root');
    return next;
  }
  if (proof === null && size1 !== size2) throw refuse('missing-consistency-proof', `from log size ${size1} to ${size2}`);
  try {
    await verifyConsistency(size1, size2, proof ?? [], old.accessLogRoot, header.accessLogRoot);
  } catch (e) {
    throw refuse('inconsistent-checkpoint', `the access log of ${size2} entries does not extend the remembered ${size1}: ${e.message}`);
  }
  return next;
}

/** Whether the page must fetch a consistency proof from `checkpoint` before verifying `answer`. */
export function needsConsistencyProof(answer, checkpoint) {
  const h = answer.header;
  return Boolean(checkpoint) && h.height > checkpoint.height && checkpoint.accessLogSize > 0n && h.accessLogSize !== checkpoint.accessLogSize;
}

/** The decoded answer: `value` itself, or its bytes decoded (a decode failure is a refusal). */
function decoded(value, decode, options) {
  if (value instanceof Uint8Array) {
    try {
      return decode(value, options);
    } catch (e) {
      throw refuse('malformed', e.message);
    }
  }
  return value;
}

/**
 * Verifies an audit answer (its bytes from the node, or a decoded answer) from genesis:
 * `trust = {chainId, sets}` (a `Sets` from `sets.js`, following every member set since genesis),
 * or `{chainId, validatorSet}` for a chain whose genesis validators sign every header,
 * `expect = {subject, range}`
 * (range `[fromMs, toMs]` as BigInt, or null for the whole history), the `checkpoint` this
 * browser kept (or null), the node's `consistency` answer when `needsConsistencyProof` says so,
 * and with `maxAgeMs` the current time `nowMs`. Returns `{verified: true, events, checkpoint,
 * ...}` (the new checkpoint to keep) or `{verified: false, code, reason}`.
 */
export async function verifyHistory({ answer, trust, expect, checkpoint = null, consistency = null, nowMs, maxAgeMs, headerLayout } = {}) {
  const options = { headerLayout };
  // What the page trusts is its own to get right: a bad argument throws, it is not the node's lie.
  requireBytes(trust?.chainId, 'trusted chain id', 32);
  if (!trust.sets && !Array.isArray(trust.validatorSet?.validators)) throw new Error('trust: give `sets` (a Sets) or `validatorSet` (validatorSetFromMembers)');
  if (!expect?.subject) throw new Error('expect.subject: say what was asked, so another answer is refused');
  try {
    const a = decoded(answer, decodeAuditAnswer, options);
    if (!sameSubject(a.subject, expect.subject)) throw refuse('not-asked', 'another subject');
    const got = a.events.kind === 'range' ? [a.events.fromMs, a.events.toMs] : null;
    const want = expect.range ?? null;
    if ((got === null) !== (want === null) || (got && (got[0] !== BigInt(want[0]) || got[1] !== BigInt(want[1])))) {
      throw refuse('not-asked', 'another time range');
    }
    const headerHash = await certified(a.header, a.certificate, trust, options);
    const log = await provenLog(a);
    const events = await checkEvents(a, log);
    if (maxAgeMs !== undefined) {
      const age = BigInt(nowMs) - a.header.timeMs;
      if (age > BigInt(maxAgeMs)) throw refuse('stale-node', `block ${a.header.height} is ${age} ms old, more than ${maxAgeMs}`);
    }
    let next;
    if (needsConsistencyProof(a, checkpoint)) {
      if (consistency === null) throw refuse('missing-consistency-proof', `from log size ${checkpoint.accessLogSize}`);
      const c = decoded(consistency, decodeConsistencyAnswer, options);
      // The proof's header must be the answer's or a newer one; both are certified.
      if (c.header.height <= a.header.height && !equalBytes(await hashOfHeader(c.header, options), headerHash)) {
        throw refuse('inconsistent-checkpoint', "the consistency proof is not for the answer's block or a later one");
      }
      if (c.fromSize !== checkpoint.accessLogSize) {
        throw refuse('inconsistent-checkpoint', `the proof starts at log size ${c.fromSize}, the checkpoint is at ${checkpoint.accessLogSize}`);
      }
      const proofHeaderHash = await certified(c.header, c.certificate, trust, options);
      next = await advance(checkpoint, c.header, proofHeaderHash, c.proof);
    } else {
      next = await advance(checkpoint, a.header, headerHash, null);
    }
    return {
      verified: true,
      subject: a.subject,
      range: a.events.kind === 'range' ? [a.events.fromMs, a.events.toMs] : null,
      events,
      height: a.header.height,
      timeMs: a.header.timeMs,
      headerHash,
      logSize: log.size,
      logRoot: log.root,
      accessLogSize: a.header.accessLogSize,
      accessLogRoot: a.header.accessLogRoot,
      checkpoint: next,
    };
  } catch (e) {
    if (e instanceof HistoryRefusal) return { verified: false, code: e.code, reason: e.message };
    return { verified: false, code: 'malformed', reason: `${REFUSALS.malformed}: ${e.message}` };
  }
}
