// Her access history: asked of the node, verified in the page against her genesis and the
// checkpoint this browser kept, and shown (time, institution, who, purpose, outcome, the
// break-glass accesses highlighted). "Verified" is shown only for an answer `verifyHistory`
// accepted; any other answer is "untrustworthy" with the refusal's code and reason, and
// nothing of it is listed.

import { toHex } from '../../js/bytes.js';
import { checkpointFromJson, checkpointToJson, decodeAuditAnswer } from '../../js/audit.js';
import { needsConsistencyProof, verifyHistory } from '../../js/history.js';
import * as store from './store.js';
import { el, msg } from './dom.js';
import { language, t } from './i18n.js';

/** A node whose newest proven block is older than this is refused (`stale-node`). */
export const MAX_AGE_MS = 10 * 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;

/** The default period: the last twelve months, to the end of today. */
export function defaultRange(now = new Date()) {
  const to = new Date(now);
  const from = new Date(now);
  from.setFullYear(from.getFullYear() - 1);
  return { from: isoDate(from), to: isoDate(to) };
}

function isoDate(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** `[fromMs, toMs]` of two `yyyy-mm-dd` dates, whole local days, inclusive. */
export function rangeOf(from, to) {
  const start = new Date(`${from}T00:00:00`).getTime();
  const end = new Date(`${to}T00:00:00`).getTime() + DAY_MS - 1;
  if (!Number.isFinite(start) || !Number.isFinite(end) || start < 0 || start > end) return null;
  return [start, end];
}

async function loadCheckpoint(chainIdHex) {
  const saved = await store.get(store.KEYS.checkpoint(chainIdHex));
  if (!saved) return null;
  try {
    return checkpointFromJson(saved);
  } catch {
    return null;
  }
}

/**
 * Asks `node` for the patient's history over `[fromMs, toMs]` and verifies it against the
 * member `sets` followed from her genesis (each header judged by the set of its height). Returns
 * `verifyHistory`'s result; a verified one's checkpoint is kept for the next visit. Throws a
 * NodeError when the node cannot be asked.
 */
export async function fetchVerifiedHistory(node, genesis, sets, keypair, [fromMs, toMs]) {
  const patient = keypair.signing.publicKey;
  const path = `/v1/audit/patient/${toHex(patient)}?from_ms=${fromMs}&to_ms=${toMs}`;
  const bytes = await node.signedGet(path);
  const checkpoint = await loadCheckpoint(genesis.chainIdHex);
  let consistency = null;
  let decoded = null;
  try {
    decoded = decodeAuditAnswer(bytes);
  } catch {
    // verifyHistory refuses it as malformed.
  }
  if (decoded && needsConsistencyProof(decoded, checkpoint)) {
    consistency = await node.signedGet(`/v1/audit/consistency?from=${checkpoint.accessLogSize}`);
  }
  const result = await verifyHistory({
    answer: bytes,
    trust: { chainId: genesis.chainId, sets },
    expect: { subject: { kind: 'patient', id: patient }, range: [BigInt(fromMs), BigInt(toMs)] },
    checkpoint,
    consistency,
    nowMs: Date.now(),
    maxAgeMs: MAX_AGE_MS,
  });
  if (result.verified) await store.put(store.KEYS.checkpoint(genesis.chainIdHex), checkpointToJson(result.checkpoint));
  return result;
}

function when(ms) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(Number(ms)));
}

function institution(sets, key) {
  const m = sets.memberByAnyKey(key);
  if (!m) return t('institution.unknown', { key: toHex(key).slice(0, 12) });
  return `${m.name} (${t(`role.${m.role}`)})`;
}

/**
 * The text of `key` for whoever reads the history: the mother herself ("you"), or, on the
 * commission's page (`view.third`), a reader speaking of her ("the patient").
 */
function said(view, key, vars) {
  return t(view?.third ? `${key}.third` : key, vars);
}

function outcome(e, view) {
  const o = e.outcome;
  // A regulator's review of a break-glass access (the commission's finding, not an access).
  if (o.kind === 'reviewed') return t('outcome.reviewed', { decision: t(`reg.decision.${o.decision}`) });
  // Her keys changed: by her own rotation, or a member's recovery (not accesses).
  if (o.kind === 'rotated' || o.kind === 'recovered') return said(view, `outcome.${o.kind}`, { key: toHex(o.newKey).slice(0, 12) });
  if (o.kind !== 'denied') return t(`outcome.${o.kind}`);
  const known = `denial.${o.reason}`;
  const reason = t(known) === known ? t('denial.other', { code: o.reason }) : t(known);
  return t('outcome.denied', { reason });
}

function row(label, value) {
  return [el('dt', { text: label }), el('dd', { text: value })];
}

/**
 * Marks what is new since her last visit: the size of her log when this page was loaded (kept
 * per chain and patient in IndexedDB after each verified history), read once per visit, so the
 * marks stay while she looks and move on at her next visit. Sets `result.newFrom`, the first
 * log index that is new (null on her first visit, when there is nothing to compare with).
 */
const seenAtLoad = new Map();
export async function markNew(genesis, patient, result) {
  if (!result.verified) return;
  const key = store.KEYS.seen(genesis.chainIdHex);
  const kept = (await store.get(key)) ?? {};
  const id = toHex(patient);
  if (!seenAtLoad.has(`${genesis.chainIdHex}:${id}`)) {
    seenAtLoad.set(`${genesis.chainIdHex}:${id}`, kept[id] === undefined ? null : BigInt(kept[id]));
  }
  result.newFrom = seenAtLoad.get(`${genesis.chainIdHex}:${id}`);
  const size = BigInt(kept[id] ?? 0);
  kept[id] = (result.logSize > size ? result.logSize : size).toString();
  await store.put(key, kept);
}

/** The flag an event carries: break-glass accesses and recoveries by a member stand out. */
function flagOf(e) {
  if (e.outcome.kind === 'break_glass') return el('span', { class: 'flag', text: t('outcome.break_glass') });
  if (e.outcome.kind === 'recovered') return el('span', { class: 'flag', text: t('flag.recovered') });
  return '';
}

/** One access, as a card: time first, then where, who, why and what came of it. */
function eventCard(sets, e, isNew, view) {
  const rotated = e.outcome.kind === 'rotated';
  const who = e.staff
    ? t('person.staff', { role: t(`staff.${e.staff.role}`), id: toHex(e.staff.id).slice(0, 8) })
    : rotated ? said(view, 'you.person') : t('person.institution');
  const reader = e.staff ? e.staff.institution : e.accessor;
  // A key change reads no record: its archive and category name nothing.
  const record = rotated || e.outcome.kind === 'recovered' ? said(view, 'record.keys') : t(`category.${e.category}`);
  const details = el('dl', {},
    ...row(t('field.institution'), rotated ? said(view, 'you.institution') : institution(sets, reader)),
    ...row(t('field.person'), who),
    ...row(t('field.purpose'), `${t(`purpose.${e.purpose}`)} (${e.purpose})`),
    ...row(t('field.record'), record),
    ...row(t('field.outcome'), outcome(e, view)));
  const flag = flagOf(e);
  const badge = isNew ? el('span', { class: 'new', text: t('history.new') }) : '';
  return el('li', { class: 'event', dataset: { outcome: e.outcome.kind, new: String(isNew) } },
    el('div', {}, el('div', { class: 'when' }, when(e.timeMs), badge), flag), details);
}

/**
 * Shows `result` in the verdict box and the list. The list shows the events of a verified
 * answer, newest first, and nothing of a refused one. `view.third`: the reader is not the
 * patient (the commission's page), so her own acts are told in the third person.
 */
export function renderHistory(parts, sets, result, view = {}) {
  const { verdict, status, detail, list } = parts;
  verdict.hidden = false;
  list.replaceChildren();
  if (!result.verified) {
    verdict.dataset.state = 'untrustworthy';
    status.textContent = t('history.untrustworthy');
    const code = result.code;
    detail.textContent = t('history.untrustworthyDetail', { code, reason: t(`refusal.${code}`) });
    detail.title = result.reason;
    verdict.dataset.code = code;
    return;
  }
  verdict.dataset.state = 'verified';
  delete verdict.dataset.code;
  status.textContent = t('history.verified');
  detail.title = '';
  detail.textContent = t('history.verifiedDetail', { height: result.height, time: when(result.timeMs), count: result.events.length });
  const events = [...result.events].reverse();
  if (events.length === 0) list.append(msg('li', 'history.empty'));
  const from = result.newFrom ?? null;
  for (const ie of events) list.append(eventCard(sets, ie.event, from !== null && BigInt(ie.index) >= from, view));
  const fresh = from === null ? 0 : events.filter((ie) => BigInt(ie.index) >= from).length;
  verdict.dataset.new = String(fresh);
  if (fresh > 0) detail.textContent += ` ${t('history.newCount', { count: fresh })}`;
  list.lastElementChild?.classList.toggle('empty', events.length === 0);
}
