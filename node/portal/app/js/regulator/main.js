// The regulator's page: the consortium's genesis file, the commission's key (imported from its
// key file into non-extractable WebCrypto keys, kept in IndexedDB apart from a patient's), the
// break-glass accesses awaiting review with the clinician's justification (opened in the page
// with the commission's key) and a review button each, the weekly access counts per
// institution, and any patient's or institution's history, each verified in the page from
// genesis as the patient's page verifies hers (js/history.js, js/sets.js), with a FHIR download.

import { fromHex, toHex } from '../../../js/bytes.js';
import { loadGenesis } from '../../../js/genesis.js';
import { $, el, say } from '../dom.js';
import { initialLanguage, onLanguageChange, setLanguage, t } from '../i18n.js';
import * as store from '../store.js';
import { importKeyFile } from '../keyring.js';
import { Node, NodeError } from '../node.js';
import { renderHistory } from '../history_view.js';
import { loadSets, updateSets } from '../members.js';
import { chartOf, weeklyCounts } from './chart.js';
import { fhirBundle, offerDownload } from './fhir.js';
import { displayText, justificationOf, pendingOf, sendReview, verifiedHistory } from './review.js';

const FILE_BYTES_MAX = 4 * 1024 * 1024;
/** Where the commission's key pair is kept: apart from the key a patient keeps in this browser. */
const KEYPAIR = 'regulator-keypair';
const GENESIS = 'regulator-genesis';
/** Most justifications opened for one list: the node is asked for one record each. */
const JUSTIFICATIONS_MAX = 100;

const state = {
  genesis: null, sets: null, keypair: null, node: null, pending: null, history: null, charts: null,
  // The justifications of the listed accesses, by the hex of their transaction hash, and which
  // asking of the list they belong to (a later one drops the earlier one's answers).
  justifications: new Map(), asked: 0,
};

async function readFile(input) {
  const file = input.files?.[0];
  input.value = '';
  if (!file) return null;
  if (file.size > FILE_BYTES_MAX) throw new Error('file too large');
  return file.text();
}

function showGenesis() {
  const g = state.genesis;
  if (!g) return say('genesis-status', 'genesis.none');
  say('genesis-status', 'genesis.loaded', { name: g.doc.chainName, members: g.doc.members.length, chain: `${g.chainIdHex.slice(0, 16)}…` }, 'ok');
}

function showKey() {
  if (!state.keypair) return say('key-status', 'reg.keyNone');
  say('key-status', 'reg.keyLoaded', { key: toHex(state.keypair.signing.publicKey).slice(0, 16) }, 'ok');
}

/** The node that served the page, checked as the patient's page checks it, before every action. */
async function node() {
  if (!state.genesis || !state.keypair) throw new NodeError('needs', '');
  if (!state.node) {
    const n = new Node(state.genesis, state.keypair);
    await n.connect();
    await n.checkGenesis();
    state.node = n;
  }
  try {
    state.sets = await updateSets(state.node, state.genesis, state.sets ?? (await loadSets(state.genesis)));
    const member = state.node.checkMember(state.sets);
    say('node-status', 'node.ok', { member: member.name }, 'ok');
  } catch (e) {
    state.node = null;
    throw e;
  }
  return state.node;
}

function failed(statusId, e) {
  state.node = null;
  if (e instanceof NodeError && e.code === 'needs') return say(statusId, 'reg.needs', {}, 'error');
  const key = e instanceof NodeError ? ({
    notMember: 'node.notMember', genesisMismatch: 'node.genesisMismatch', notEnrolled: 'reg.notKnown',
    signatureRefused: 'node.signatureRefused', setsRefused: 'node.setsRefused', txRefused: 'reg.refused',
  }[e.code] ?? 'node.failed') : 'node.failed';
  say(statusId, key, { reason: e.message }, 'error');
}

function verdictParts(prefix) {
  return { verdict: $(`${prefix}-verdict`), status: $(`${prefix}-status`), detail: $(`${prefix}-detail`), list: $(`${prefix}-list`) };
}

function when(ms) {
  return new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(Number(ms)));
}

function memberName(key) {
  const m = state.sets?.memberByAnyKey(key);
  return m ? m.name : `${toHex(key).slice(0, 12)}…`;
}

/**
 * Shows a justification in `dd`: the clinician's words as text (never HTML), or why there are
 * none to show, in the page's language. `data-justification` says which.
 */
function showJustification(dd, view) {
  dd.dataset.justification = view.state;
  if (view.state === 'read') {
    say(dd, null);
    dd.textContent = displayText(view.text);
    return;
  }
  const [key, vars, look] = {
    opening: ['reg.justOpening', {}, ''],
    later: ['reg.justLater', { max: JUSTIFICATIONS_MAX }, ''],
    sealed: ['reg.justSealed', {}, 'error'],
    unavailable: ['reg.justUnavailable', { reason: view.reason }, 'error'],
  }[view.state] ?? [`reg.unreadable.${view.why}`, {}, 'error'];
  say(dd, key, vars, look);
}

/** One access awaiting review, with its justification and two buttons. */
function pendingCard(ie) {
  const e = ie.event;
  const entry = toHex(e.txHash);
  const who = e.staff ? t('person.staff', { role: t(`staff.${e.staff.role}`), id: toHex(e.staff.id).slice(0, 8) }) : t('person.institution');
  const dl = el('dl', {},
    el('dt', { text: t('field.institution') }), el('dd', { text: memberName(e.staff ? e.staff.institution : e.accessor) }),
    el('dt', { text: t('field.person') }), el('dd', { text: who }),
    el('dt', { text: t('reg.patient') }), el('dd', { class: 'key', text: `${toHex(e.patient).slice(0, 16)}…` }),
    el('dt', { text: t('field.record') }), el('dd', { text: `${t(`category.${e.category}`)} (${memberName(e.custodian)})` }),
    el('dt', { text: t('reg.entry') }), el('dd', { class: 'key', text: entry }),
    el('dt', { text: t('reg.justification') }));
  const justification = el('dd', { class: 'justification' });
  // In the list before its message is set: a message renders from its parent.
  dl.append(justification);
  showJustification(justification, state.justifications.get(entry) ?? { state: 'opening' });
  const buttons = el('div', { class: 'actions' },
    el('button', { type: 'button', class: 'review', dataset: { entry, decision: 'justified' }, text: t('reg.justified') }),
    el('button', { type: 'button', class: 'review quiet', dataset: { entry, decision: 'not_justified' }, text: t('reg.notJustified') }));
  return el('li', { class: 'event', dataset: { outcome: 'break_glass', entry } },
    el('div', {}, el('div', { class: 'when' }, when(e.timeMs)), el('span', { class: 'flag', text: t('outcome.break_glass') })), dl, buttons);
}

/** Histories on this page are read by the commission: a patient's own acts in the third person. */
const THIRD = { third: true };

/** One recovery of a patient by a member, from the verified break-glass (oversight) log. */
function recoveryCard(ie) {
  const e = ie.event;
  const dl = el('dl', {},
    el('dt', { text: t('field.institution') }), el('dd', { text: memberName(e.accessor) }),
    el('dt', { text: t('reg.patient') }), el('dd', { class: 'key', text: `${toHex(e.patient).slice(0, 16)}…` }),
    el('dt', { text: t('reg.newKey') }), el('dd', { class: 'key', text: `${toHex(e.outcome.newKey).slice(0, 16)}…` }),
    el('dt', { text: t('reg.entry') }), el('dd', { class: 'key', text: toHex(e.txHash) }));
  return el('li', { class: 'event', dataset: { outcome: 'recovered', entry: toHex(e.txHash) } },
    el('div', {}, el('div', { class: 'when' }, when(e.timeMs)), el('span', { class: 'flag', text: t('flag.recovered') })), dl);
}

/** The recoveries of the verified oversight log, newest first. */
function renderRecoveries(result) {
  const list = $('recoveries-list');
  list.replaceChildren();
  $('recoveries-title').hidden = !result?.verified;
  if (!result?.verified) return;
  const recoveries = result.events.filter((ie) => ie.event.outcome.kind === 'recovered').reverse();
  list.dataset.count = String(recoveries.length);
  if (recoveries.length === 0) list.append(el('li', { class: 'empty', dataset: { i18n: 'reg.noneRecovered' }, text: t('reg.noneRecovered') }));
  for (const ie of recoveries) list.append(recoveryCard(ie));
}

function renderPending() {
  const parts = verdictParts('pending');
  const result = state.pending;
  if (!result) return;
  renderHistory(parts, state.sets, result, THIRD);
  parts.list.replaceChildren();
  if (!result.verified) return;
  const { pending } = pendingOf(result.events);
  parts.detail.textContent = t('reg.pendingDetail', { height: result.height, count: pending.length });
  parts.verdict.dataset.pending = String(pending.length);
  if (pending.length === 0) parts.list.append(el('li', { class: 'empty', dataset: { i18n: 'reg.nonePending' }, text: t('reg.nonePending') }));
  for (const ie of pending) parts.list.append(pendingCard(ie));
  renderRecoveries(result);
}

/**
 * Asks the node for the access record of each listed access, one at a time, and shows its
 * justification as soon as it is opened (or why not).
 */
async function openJustifications(n, pending, asked) {
  for (const [i, ie] of pending.entries()) {
    const entry = toHex(ie.event.txHash);
    const view = i < JUSTIFICATIONS_MAX
      ? await justificationOf(n, state.genesis, state.keypair, ie.event)
      : { state: 'later' };
    if (asked !== state.asked) return;
    state.justifications.set(entry, view);
    const dd = $('pending-list').querySelector(`li[data-entry="${entry}"] dd.justification`);
    if (dd) showJustification(dd, view);
  }
}

async function onPending() {
  const button = $('pending-load');
  button.disabled = true;
  say('node-status', 'reg.asking');
  const asked = ++state.asked;
  state.justifications = new Map();
  try {
    const n = await node();
    state.pending = await verifiedHistory(n, state.genesis, state.sets, { kind: 'break_glass' });
    renderPending();
    if (state.pending.verified) await openJustifications(n, pendingOf(state.pending.events).pending, asked);
  } catch (e) {
    failed('node-status', e);
  } finally {
    button.disabled = false;
  }
}

async function onReview(event) {
  const button = event.target.closest('button.review');
  if (!button) return;
  const { entry, decision } = button.dataset;
  for (const b of document.querySelectorAll('button.review')) b.disabled = true;
  say('review-status', 'reg.sending');
  try {
    const n = await node();
    await sendReview(n, state.genesis, state.keypair, fromHex(entry, 32, 'entry'), decision);
    say('review-status', 'reg.reviewed', { entry: entry.slice(0, 12), decision: t(`reg.decision.${decision}`) }, 'ok');
    await onPending();
  } catch (e) {
    failed('review-status', e);
    for (const b of document.querySelectorAll('button.review')) b.disabled = false;
  }
}

function renderCharts() {
  const box = $('chart');
  box.replaceChildren();
  if (!state.charts) return;
  for (const c of state.charts) {
    if (c.verified) box.append(chartOf(c.name, c.rows));
    else box.append(el('p', { class: 'status', dataset: { state: 'error', institution: c.name }, text: t('reg.chartUntrustworthy', { name: c.name, code: c.code }) }));
  }
}

async function onChart() {
  const button = $('chart-load');
  button.disabled = true;
  say('chart-status', 'reg.asking');
  try {
    const n = await node();
    const charts = [];
    for (const m of state.sets.latest().members) {
      if (m.role === 'regulator') continue;
      const result = await verifiedHistory(n, state.genesis, state.sets, { kind: 'accessor', id: m.publicKey });
      charts.push(result.verified ? { name: m.name, verified: true, rows: weeklyCounts(result.events, Date.now()) } : { name: m.name, verified: false, code: result.code });
    }
    state.charts = charts;
    renderCharts();
    say('chart-status', charts.every((c) => c.verified) ? 'reg.chartVerified' : 'reg.chartSome', {}, charts.every((c) => c.verified) ? 'ok' : 'error');
  } catch (e) {
    failed('chart-status', e);
  } finally {
    button.disabled = false;
  }
}

function fillMembers() {
  const select = $('history-member');
  select.replaceChildren();
  for (const m of state.sets?.latest().members ?? []) {
    if (m.role !== 'regulator') select.append(el('option', { value: toHex(m.publicKey), text: m.name }));
  }
}

async function onHistory(event) {
  event.preventDefault();
  const kind = $('history-kind').value;
  const parts = verdictParts('history');
  const link = $('fhir-download');
  link.hidden = true;
  parts.verdict.hidden = true;
  parts.list.replaceChildren();
  try {
    const id = fromHex(kind === 'patient' ? $('history-key').value.trim() : $('history-member').value, 32, 'key');
    const n = await node();
    state.history = await verifiedHistory(n, state.genesis, state.sets, { kind, id });
    renderHistory(parts, state.sets, state.history, THIRD);
    if (state.history.verified) offerDownload(link, fhirBundle(state.sets, state.genesis.chainIdHex, state.history.events));
  } catch (e) {
    failed('node-status', e);
  }
}

function onKind() {
  const patient = $('history-kind').value === 'patient';
  $('history-key-field').hidden = !patient;
  $('history-member-field').hidden = patient;
  fillMembers();
}

async function onGenesisFile(event) {
  try {
    const text = await readFile(event.target);
    if (text === null) return;
    state.genesis = await loadGenesis(text);
    state.sets = await loadSets(state.genesis);
    state.node = null;
    await store.put(GENESIS, text);
    showGenesis();
    fillMembers();
  } catch (e) {
    say('genesis-status', 'genesis.invalid', { reason: e.message }, 'error');
  }
}

async function onKeyFile(event) {
  try {
    const text = await readFile(event.target);
    if (text === null) return;
    const { keypair } = await importKeyFile(text, null);
    await store.put(KEYPAIR, keypair);
    state.keypair = keypair;
    state.node = null;
    showKey();
  } catch (e) {
    say('key-status', 'reg.keyInvalid', { reason: e.message }, 'error');
  }
}

function rerender() {
  $('lang-en').setAttribute('aria-pressed', String(document.documentElement.lang === 'en'));
  $('lang-zh').setAttribute('aria-pressed', String(document.documentElement.lang === 'zh-CN'));
  renderPending();
  renderCharts();
  if (state.history) renderHistory(verdictParts('history'), state.sets, state.history, THIRD);
}

async function start() {
  onLanguageChange(rerender);
  setLanguage(initialLanguage());
  document.title = t('reg.title');
  onLanguageChange(() => { document.title = t('reg.title'); });
  $('lang-en').addEventListener('click', () => setLanguage('en'));
  $('lang-zh').addEventListener('click', () => setLanguage('zh-CN'));
  $('genesis-file').addEventListener('change', onGenesisFile);
  $('key-file').addEventListener('change', onKeyFile);
  $('pending-load').addEventListener('click', onPending);
  $('pending-list').addEventListener('click', onReview);
  $('chart-load').addEventListener('click', onChart);
  $('history-form').addEventListener('submit', onHistory);
  $('history-kind').addEventListener('change', onKind);
  try {
    const text = await store.get(GENESIS);
    if (text) {
      state.genesis = await loadGenesis(text);
      state.sets = await loadSets(state.genesis);
    }
    state.keypair = (await store.get(KEYPAIR)) ?? null;
  } catch {
    state.genesis = null;
  }
  showGenesis();
  showKey();
  onKind();
  document.body.dataset.ready = 'true';
}

start();
