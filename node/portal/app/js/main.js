// The patient's portal: wires the page's four steps (her genesis file, her key, her access
// history, her records and consents) and the language switch. Each step keeps what it learnt in IndexedDB, so a second
// visit starts where the first ended.

import { loadGenesis } from '../../js/genesis.js';
import { $, say } from './dom.js';
import { initialLanguage, onLanguageChange, setLanguage } from './i18n.js';
import * as store from './store.js';
import { adoptIdentity, loadIdentity, loadKeypair, ownKeys } from './keyring.js';
import { discoverIdentity } from './identity.js';
import { equalBytes, toHex } from '../../js/bytes.js';
import { setupKey } from './key_panel.js';
import { Node, NodeError } from './node.js';
import { defaultRange, fetchVerifiedHistory, markNew, rangeOf, renderHistory } from './history_view.js';
import { loadSets, updateSets } from './members.js';
import { failure, setupRecords } from './records_panel.js';
import { decorate, showAlerts } from './alerts_view.js';

/** Largest file the page reads from the file pickers. */
const FILE_BYTES_MAX = 4 * 1024 * 1024;

const state = { genesis: null, sets: null, keypair: null, identity: null, mine: new Set(), node: null, result: null, records: null, showKey: null };

/** The history's list, drawn over: her own reads as "you", the alert, "Ask why" (alerts_view.js). */
function showHistory() {
  const parts = { verdict: $('history-verdict'), status: $('history-status'), detail: $('history-detail'), list: $('history-list') };
  renderHistory(parts, state.sets, state.result);
  decorate(parts.list, state.sets, state.result, state.mine);
  showAlerts(state.sets, state.result);
}

function showGenesis() {
  const g = state.genesis;
  if (!g) return say('genesis-status', 'genesis.none');
  say('genesis-status', 'genesis.loaded', { name: g.doc.chainName, members: g.doc.members.length, chain: `${g.chainIdHex.slice(0, 16)}…` }, 'ok');
}

async function readFile(input) {
  const file = input.files?.[0];
  input.value = '';
  if (!file) return null;
  if (file.size > FILE_BYTES_MAX) throw new Error('file too large');
  return file.text();
}

async function onGenesisFile(event) {
  try {
    const text = await readFile(event.target);
    if (text === null) return;
    state.genesis = await loadGenesis(text);
    state.sets = await loadSets(state.genesis);
    state.node = null;
    state.records?.reset();
    await store.put(store.KEYS.genesis, text);
    showGenesis();
    // Her QR code carries her proof for this consortium.
    await state.showKey?.();
  } catch (e) {
    say('genesis-status', 'genesis.invalid', { reason: e.message }, 'error');
  }
}

/**
 * The node that served the page, checked once per genesis and key: it runs her genesis, every
 * member set change since is verified, and its key signs for a member of the newest set.
 */
async function node() {
  if (!state.node) {
    const n = new Node(state.genesis, state.keypair);
    await n.connect();
    await n.checkGenesis();
    state.node = n;
  }
  const n = state.node;
  try {
    // Asked before every action: a vote may have changed the set since the last one.
    state.sets = await updateSets(n, state.genesis, state.sets ?? (await loadSets(state.genesis)));
    const member = n.checkMember(state.sets);
    say('node-status', 'node.ok', { member: member.name }, 'ok');
  } catch (e) {
    state.node = null;
    throw e;
  }
  await learnIdentity(n);
  state.records?.refresh();
  return n;
}

/**
 * Once per key, when this browser kept no identity for it (a key bound to her at her clinic or
 * the command line): the key she enrolled with, proven by her verified history (identity.js).
 */
async function learnIdentity(n) {
  const key = state.keypair?.signing.publicKey;
  if (!key || state.identityAskedFor === toHex(key) || !equalBytes(state.identity ?? key, key)) return;
  state.identityAskedFor = toHex(key);
  try {
    const identity = await discoverIdentity(n, state.genesis, state.sets, state.keypair);
    if (!identity) return;
    await adoptIdentity(state.keypair, identity);
    state.identity = identity;
  } catch {
    // A node that cannot say: the key is taken for her enrolment key, as before.
  }
}

async function onHistory(event) {
  event.preventDefault();
  const parts = { verdict: $('history-verdict'), status: $('history-status'), detail: $('history-detail'), list: $('history-list') };
  if (!state.genesis || !state.keypair) return say('node-status', 'history.needs', {}, 'error');
  const range = rangeOf($('history-from').value, $('history-to').value);
  if (!range) return;
  const button = $('history-load');
  button.disabled = true;
  parts.verdict.hidden = true;
  parts.verdict.dataset.state = 'none';
  parts.list.replaceChildren();
  say('node-status', 'history.asking');
  try {
    const n = await node();
    // Her history is kept under the key she enrolled with, whichever key signs now.
    const identity = state.identity ?? state.keypair.signing.publicKey;
    state.result = await fetchVerifiedHistory(n, state.genesis, state.sets, { signing: { publicKey: identity } }, range);
    await markNew(state.genesis, identity, state.result);
    state.mine = await ownKeys(state.keypair);
    say('node-status', 'node.ok', { member: n.member.name }, 'ok');
    showHistory();
    // The answer is what she came for: bring it into view (on a phone it is below the fold).
    $('history-section').scrollIntoView({ block: 'start' });
  } catch (e) {
    state.result = null;
    if (e instanceof NodeError) {
      state.node = null;
      const key = {
        notMember: 'node.notMember',
        genesisMismatch: 'node.genesisMismatch',
        notEnrolled: 'node.notEnrolled',
        signatureRefused: 'node.signatureRefused',
        setsRefused: 'node.setsRefused',
      }[e.code] ?? 'node.failed';
      say('node-status', key, { reason: e.message }, 'error');
    } else {
      say('node-status', 'node.failed', { reason: e.message }, 'error');
    }
  } finally {
    button.disabled = false;
  }
}

function markLanguage(lang) {
  $('lang-en').setAttribute('aria-pressed', String(lang === 'en'));
  $('lang-zh').setAttribute('aria-pressed', String(lang === 'zh-CN'));
  state.records?.refresh();
  if (state.result) showHistory();
}

async function start() {
  // The styles of the parts this module adds (a linked file: the CSP allows no inline style).
  document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href: 'app/mother.css' }));
  onLanguageChange(markLanguage);
  setLanguage(initialLanguage());
  $('lang-en').addEventListener('click', () => setLanguage('en'));
  $('lang-zh').addEventListener('click', () => setLanguage('zh-CN'));
  const range = defaultRange();
  $('history-from').value = range.from;
  $('history-to').value = range.to;
  $('genesis-file').addEventListener('change', onGenesisFile);
  state.showKey = setupKey(state, () => {
    state.node = null;
    state.result = null;
    state.records?.reset();
  }, readFile, node, failure);
  $('history-form').addEventListener('submit', onHistory);
  const ctx = () => ({ genesis: state.genesis, sets: state.sets, keypair: state.keypair, identity: state.identity });
  try {
    const text = await store.get(store.KEYS.genesis);
    if (text) {
      state.genesis = await loadGenesis(text);
      state.sets = await loadSets(state.genesis);
    }
  } catch {
    state.genesis = null;
    state.sets = null;
  }
  try {
    state.keypair = (await loadKeypair()) ?? null;
    state.identity = state.keypair ? await loadIdentity(state.keypair) : null;
  } catch {
    state.keypair = null;
    state.identity = null;
  }
  showGenesis();
  await state.showKey();
  state.records = setupRecords(ctx, node);
  document.body.dataset.ready = 'true';
  // A key change whose answer was lost may have committed: take up its new key.
  await state.showKey.resume().catch(() => {});
}

start();
