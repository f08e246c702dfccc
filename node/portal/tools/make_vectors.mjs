// Writes the portal's JSON vectors (chain-*.json, history-*.json) from the JavaScript
// implementation and the fixtures that mirror `testkit`. `node/portal/rust/portal_vectors.rs`
// builds the same scenario with the Rust implementation and must write byte-identical files
// (Ed25519 signing is deterministic); see README.md here for the format.
//
//   node node/portal/tools/make_vectors.mjs [OUT_DIR]   (default: node/portal/test/vectors)

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { BorshWriter, fromHex, sha256, toHex } from '../js/bytes.js';
import { HEADER_LAYOUT, encodeBlockHeader, headerHash, precommitSignBytes, writeCommitCertificate } from '../js/chain.js';
import { leafHash, rootOf } from '../js/merkle.js';
import { patientLogKey, breakGlassLogKey } from '../js/smt.js';
import { checkpointToJson, encodeAuditAnswer, encodeConsistencyAnswer, encodeLogState, eventLeafHash } from '../js/audit.js';
import { GENESIS_MS, accessEvent, consistencyProof, frontier, patientKey, sparseTree, testConsortium } from './fixtures.mjs';

const LAYOUT_FILES = { [HEADER_LAYOUT.V1]: 'v1', [HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH]: 'next-members' };
const fill = (b) => new Uint8Array(32).fill(b);

/** A certificate for `header` signed by the validators at `signers` (indices), round 0. */
async function certify(t, header, layout, signers) {
  const value = await headerHash(header, { headerLayout: layout });
  const signatures = [];
  for (const i of signers) {
    const msg = precommitSignBytes(t.chainId, header.height, 0, value, i);
    signatures.push({ validator: i, signature: await t.validatorKeys[i].sign(msg) });
  }
  return { height: header.height, round: 0, value, signatures };
}

/**
 * `MemberSet::hash` of the testkit consortium's genesis set, as `ledger/tests/portal_vectors.rs`
 * computes it: every header of the scenario names it for the next height. (The page does not
 * compute member set hashes yet; when it follows governance changes it will.)
 */
const TESTKIT_MEMBERS_HASH = '1730efee79ebe4ebe0e80c21501fd188c2bc9f4ccdb15d0b4a40656ac2a6cf22';

function header(t, fields, layout) {
  const h = { chainId: t.chainId, prevHash: fill(0x11), proposer: t.hospitalA.publicKey, txCount: 1, txRoot: fill(0x22), ...fields };
  if (layout === HEADER_LAYOUT.WITH_NEXT_MEMBERS_HASH) h.nextMembersHash = fromHex(TESTKIT_MEMBERS_HASH);
  return h;
}

const hex = toHex;
const dec = (v) => v.toString();

function headerJson(h) {
  const out = {
    chain_id: hex(h.chainId), height: dec(h.height), time_ms: dec(h.timeMs), prev_hash: hex(h.prevHash),
    proposer: hex(h.proposer), tx_count: h.txCount, tx_root: hex(h.txRoot), state_root: hex(h.stateRoot),
    access_log_size: dec(h.accessLogSize), access_log_root: hex(h.accessLogRoot),
  };
  if (h.nextMembersHash) out.next_members_hash = hex(h.nextMembersHash);
  return out;
}

const membersJson = (t) => t.members.map((m) => ({ name: m.name, public_key: hex(m.public_key), voting_power: m.voting_power }));
const certBytes = (c) => hex(writeCommitCertificate(new BorshWriter(), c).toBytes());
const clone = (v) => structuredClone(v);

/** The chain vectors: headers, their hashes, precommit bytes and certificates good and bad. */
async function chainVectors(t, layout) {
  const options = { headerLayout: layout };
  const h = header(t, { height: 7n, timeMs: GENESIS_MS + 7000n, stateRoot: fill(0x33), accessLogSize: 2n, accessLogRoot: fill(0x44) }, layout);
  const value = await headerHash(h, options);
  const good = await certify(t, h, layout, [0, 1, 2]);
  const certs = [
    ['all-three-validators', good, null],
    ['two-of-three-is-not-more-than-two-thirds', await certify(t, h, layout, [0, 1]), 'insufficient-power'],
    ['duplicate-signer', { ...clone(good), signatures: [...clone(good).signatures.slice(0, 2), clone(good).signatures[0]] }, 'duplicate-signature'],
    ['unknown-validator-index', { ...clone(good), signatures: [...clone(good).signatures.slice(0, 2), { validator: 3, signature: good.signatures[2].signature }] }, 'unknown-validator'],
    ['forged-signature', (() => { const c = clone(good); c.signatures[1].signature[0] ^= 1; return c; })(), 'bad-signature'],
    ['wrong-round', { ...clone(good), round: 1 }, 'bad-signature'],
    ['wrong-height', { ...clone(good), height: 8n }, 'wrong-height'],
    ['wrong-value', { ...clone(good), value: fill(0x99) }, 'wrong-value'],
  ];
  const other = { ...clone(h), chainId: fill(0x01) };
  return {
    members: membersJson(t),
    headers: [{ name: 'height-7', fields: headerJson(h), borsh: hex(encodeBlockHeader(h, options)), hash: hex(value) }],
    precommits: [0, 1, 2].map((i) => ({ height: '7', round: 0, value: hex(value), validator: i, sign_bytes: hex(precommitSignBytes(t.chainId, 7n, 0, value, i)) })),
    certificates: certs.map(([name, c, error]) => ({ name, header: 'height-7', borsh: certBytes(c), error })),
    wrong_chain: { header: hex(encodeBlockHeader(other, options)), certificate: certBytes(good), error: 'wrong-chain' },
  };
}

/** The history scenario: six global events, patients P and Q, checkpoint at 10, tip at 12. */
async function historyVectors(t, layout) {
  const options = { headerLayout: layout };
  const [p, q, r] = await Promise.all([1, 2, 3].map(patientKey));
  const [A, B, C] = [t.hospitalA.publicKey, t.hospitalB.publicKey, t.clinic.publicKey];
  const P = p.publicKey;
  const Q = q.publicKey;
  const events = [
    accessEvent(0, P, A, P, 'PATRQT', { kind: 'permitted' }),
    accessEvent(1, P, A, B, 'TREAT', { kind: 'permitted' }),
    accessEvent(2, Q, C, Q, 'PATRQT', { kind: 'permitted' }),
    accessEvent(3, P, A, B, 'TREAT', { kind: 'denied', reason: 'no_grant' }),
    accessEvent(4, P, A, B, 'ETREAT', { kind: 'break_glass' }),
    accessEvent(5, P, A, C, 'TREAT', { kind: 'permitted' }),
  ];
  const leaves = await Promise.all(events.map(eventLeafHash));
  const logOf = async (evs) => { const f = await frontier(await Promise.all(evs.map(eventLeafHash))); return encodeLogState(f.size, f.hashes); };
  const ofP = events.filter((e) => e.patient === P);
  const ofQ = events.filter((e) => e.patient === Q);
  const glass = events.filter((e) => e.outcome.kind === 'break_glass');
  const state = [
    [patientLogKey(P), await logOf(ofP)], [patientLogKey(Q), await logOf(ofQ)],
    [breakGlassLogKey(), await logOf(glass)], [Uint8Array.of(0x4c), await logOf(events)],
  ];
  const entries = await Promise.all(state.map(async ([k, v]) => ({ key: k, value: v, keyHash: await sha256(k), valueHash: await sha256(v) })));
  const tree = sparseTree(entries);
  const tip = header(t, { height: 12n, timeMs: GENESIS_MS + 5n * 61_001n + 1000n, stateRoot: await tree.root(), accessLogSize: 6n, accessLogRoot: await rootOf(leaves) }, layout);
  const tipCert = await certify(t, tip, layout, [0, 1, 2]);
  const old = header(t, { height: 10n, timeMs: GENESIS_MS + 2n * 61_001n + 500n, stateRoot: fill(0x55), accessLogSize: 3n, accessLogRoot: await rootOf(leaves.slice(0, 3)) }, layout);
  const checkpoint = { height: old.height, headerHash: await headerHash(old, options), timeMs: old.timeMs, accessLogSize: old.accessLogSize, accessLogRoot: old.accessLogRoot };

  const answer = async (subject, key, range) => {
    const e = entries.find((x) => x.key.length === key.length && x.key.every((b, i) => b === key[i]));
    const base = { header: tip, certificate: tipCert, subject, logProof: await tree.prove(await sha256(key)), logValue: e ? e.value : null };
    const mine = events.filter((ev) => (subject.kind === 'break_glass' ? ev.outcome.kind === 'break_glass' : ev.patient === subject.id));
    if (!range) return { ...base, events: { kind: 'whole', events: mine } };
    const mineLeaves = await Promise.all(mine.map(eventLeafHash));
    const firstIn = mine.findIndex((ev) => ev.timeMs >= range[0]);
    const lastIn = mine.findLastIndex((ev) => ev.timeMs <= range[1]);
    const run = [];
    for (let i = Math.max(firstIn - 1, 0); i <= Math.min(lastIn + 1, mine.length - 1); i++) run.push({ index: BigInt(i), event: mine[i] });
    return { ...base, events: { kind: 'range', fromMs: range[0], toMs: range[1], leaves: mineLeaves, events: run } };
  };
  const sP = { kind: 'patient', id: P };
  const sQ = { kind: 'patient', id: Q };
  const whole = await answer(sP, patientLogKey(P));
  const range = [events[1].timeMs, events[3].timeMs];
  const ranged = await answer(sP, patientLogKey(P), range);
  const tamper = (a, f) => { const c = clone(a); f(c); return c; };
  const consistency = { header: tip, certificate: tipCert, fromSize: 3n, proof: await consistencyProof(leaves, 3) };
  const forkedCheckpoint = { ...checkpoint, accessLogRoot: await rootOf([leaves[0], leaves[1], await leafHash(Uint8Array.of(9))]) };

  const cases = [
    ['honest-whole', whole, sP, null, {}, { verified: true, events: 5, log_size: 5 }],
    ['honest-range', ranged, sP, range, {}, { verified: true, events: 2, log_size: 5 }],
    ['honest-absent-log', await answer({ kind: 'patient', id: r.publicKey }, patientLogKey(r.publicKey)), { kind: 'patient', id: r.publicKey }, null, {}, { verified: true, events: 0, log_size: 0 }],
    ['honest-break-glass', await answer({ kind: 'break_glass' }, breakGlassLogKey()), { kind: 'break_glass' }, null, {}, { verified: true, events: 1, log_size: 1 }],
    ['dropped-entry', tamper(whole, (a) => a.events.events.splice(1, 1)), sP, null, {}, { verified: false, code: 'dropped-entry' }],
    ['altered-entry', tamper(whole, (a) => { a.events.events[2].outcome = { kind: 'permitted' }; }), sP, null, {}, { verified: false, code: 'altered-entry' }],
    ['reordered-entry', tamper(whole, (a) => { const e = a.events.events; [e[1], e[3]] = [e[3], e[1]]; }), sP, null, {}, { verified: false, code: 'reordered-entry' }],
    ['altered-range-entry', tamper(ranged, (a) => { a.events.events[1].event.purpose = 'ETREAT'; }), sP, range, {}, { verified: false, code: 'altered-entry' }],
    ['range-gap', tamper(ranged, (a) => a.events.events.splice(1, 1)), sP, range, {}, { verified: false, code: 'range-gap' }],
    ['wrong-subject', tamper(await answer(sQ, patientLogKey(Q)), (a) => { a.events.events = [events[0]]; }), sQ, null, {}, { verified: false, code: 'wrong-subject' }],
    ['not-asked', whole, sQ, null, {}, { verified: false, code: 'not-asked' }],
    ['wrong-chain', tamper(whole, (a) => { a.header.chainId = fill(0x01); }), sP, null, {}, { verified: false, code: 'wrong-chain' }],
    ['uncertified-too-few-signers', tamper(whole, (a) => a.certificate.signatures.splice(2, 1)), sP, null, {}, { verified: false, code: 'uncertified-header' }],
    ['uncertified-forged-signature', tamper(whole, (a) => { a.certificate.signatures[0].signature[0] ^= 1; }), sP, null, {}, { verified: false, code: 'uncertified-header' }],
    ['uncertified-rewritten-header', tamper(whole, (a) => { a.header.stateRoot = fill(0x09); }), sP, null, {}, { verified: false, code: 'uncertified-header' }],
    ['state-proof-mismatch', tamper(whole, (a) => { a.logValue = entries[1].value; }), sP, null, {}, { verified: false, code: 'state-proof' }],
    ['checkpoint-advanced-over-consistency-proof', whole, sP, null, { checkpoint, consistency }, { verified: true, events: 5, log_size: 5, checkpoint_height: 12 }],
    ['checkpoint-without-consistency-proof', whole, sP, null, { checkpoint }, { verified: false, code: 'missing-consistency-proof' }],
    ['checkpoint-forked', whole, sP, null, { checkpoint: forkedCheckpoint, consistency }, { verified: false, code: 'inconsistent-checkpoint' }],
    ['checkpoint-newer-than-answer', whole, sP, null, { checkpoint: { ...checkpoint, height: 13n, timeMs: tip.timeMs + 1n } }, { verified: false, code: 'stale-answer' }],
    ['stale-node', whole, sP, null, { nowMs: tip.timeMs + 5000n, maxAgeMs: 1000n }, { verified: false, code: 'stale-node' }],
  ];
  return {
    members: membersJson(t),
    cases: cases.map(([name, a, subject, rg, extra, want]) => ({
      name,
      subject: subject.kind === 'break_glass' ? { kind: subject.kind } : { kind: subject.kind, id: hex(subject.id) },
      range: rg ? rg.map(dec) : null,
      answer: hex(encodeAuditAnswer(a, options)),
      checkpoint: extra.checkpoint ? checkpointToJson(extra.checkpoint) : null,
      consistency: extra.consistency ? hex(encodeConsistencyAnswer(extra.consistency, options)) : null,
      now_ms: extra.nowMs !== undefined ? dec(extra.nowMs) : null,
      max_age_ms: extra.maxAgeMs !== undefined ? dec(extra.maxAgeMs) : null,
      want,
    })),
  };
}

export async function makeVectors() {
  const t = await testConsortium();
  const files = {};
  for (const layout of Object.values(HEADER_LAYOUT)) {
    const common = { format: 'cradle-portal-vectors/1', source: 'node/portal/tools/make_vectors.mjs', header_layout: layout, chain_id: hex(t.chainId) };
    files[`chain-${LAYOUT_FILES[layout]}.json`] = { ...common, ...await chainVectors(t, layout) };
    files[`history-${LAYOUT_FILES[layout]}.json`] = { ...common, ...await historyVectors(t, layout) };
  }
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? fileURLToPath(new URL('../test/vectors/', import.meta.url));
  for (const [name, doc] of Object.entries(await makeVectors())) {
    writeFileSync(`${out}/${name}`, `${JSON.stringify(doc, null, 1)}\n`);
  }
}
