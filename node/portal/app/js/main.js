// The patient's portal: wires the page's three steps (her genesis file, her key, her access
// history) and the language switch. Each step keeps what it learnt in IndexedDB, so a second
// visit starts where the first ended.

import { toHex } from '../../js/bytes.js';
import { loadGenesis } from '../../js/genesis.js';
import { $, say } from './dom.js';
import { initialLanguage, onLanguageChange, setLanguage } from './i18n.js';
import * as store from './store.js';
import { KeyFileError, createKeypair, forgetKeypair, importKeyFile, loadKeypair, saveKeypair } from './keyring.js';
import { Node, NodeError } from './node.js';
import { defaultRange, fetchVerifiedHistory, rangeOf, renderHistory } from './history_view.js';

/** Largest file the page reads from the file pickers. */
const FILE_BYTES_MAX = 4 * 1024 * 1024;

const state = { genesis: null, keypair: null, node: null, result: null };

function showGenesis() {
  const g = state.genesis;
  if (!g) return say('genesis-status', 'genesis.none');
  say('genesis-status', 'genesis.loaded', { name: g.doc.chainName, members: g.doc.members.length, chain: `${g.chainIdHex.slice(0, 16)}…` }, 'ok');
}

function showKey(message) {
  const box = $('key-public-box');
  if (!state.keypair) {
    box.hidden = true;
    $('key-public').textContent = '';
    return say('key-status', message ?? 'key.none');
  }
  box.hidden = false;
  $('key-public').textContent = toHex(state.keypair.signing.publicKey);
  say('key-status', message ?? 'key.kept', {}, 'ok');
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
    state.node = null;
    await store.put(store.KEYS.genesis, text);
    showGenesis();
  } catch (e) {
    say('genesis-status', 'genesis.invalid', { reason: e.message }, 'error');
  }
}

async function onKeyFile(event) {
  let text = null;
  try {
    text = await readFile(event.target);
    if (text === null) return;
    state.keypair = await importKeyFile(text);
    state.node = null;
    await saveKeypair(state.keypair);
    showKey('key.imported');
  } catch (e) {
    const reason = e instanceof KeyFileError ? e.message : 'unreadable';
    say('key-status', 'key.bad', { reason }, 'error');
  } finally {
    text = null;
  }
}

async function onCreateKey() {
  try {
    state.keypair = await createKeypair();
    state.node = null;
    await saveKeypair(state.keypair);
    showKey('key.created');
  } catch {
    say('key-status', 'key.unsupported', {}, 'error');
  }
}

async function onForgetKey() {
  await forgetKeypair();
  state.keypair = null;
  state.node = null;
  showKey('key.forgotten');
}

/** The node that served the page, checked once per genesis and key: a member running her genesis. */
async function node() {
  if (!state.node) {
    const n = new Node(state.genesis, state.keypair);
    const member = await n.connect();
    await n.checkGenesis();
    say('node-status', 'node.ok', { member: member.name }, 'ok');
    state.node = n;
  }
  return state.node;
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
    state.result = await fetchVerifiedHistory(n, state.genesis, state.keypair, range);
    say('node-status', 'node.ok', { member: n.member.name }, 'ok');
    renderHistory(parts, state.genesis, state.result);
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
  if (state.result) {
    renderHistory({ verdict: $('history-verdict'), status: $('history-status'), detail: $('history-detail'), list: $('history-list') }, state.genesis, state.result);
  }
}

async function start() {
  onLanguageChange(markLanguage);
  setLanguage(initialLanguage());
  $('lang-en').addEventListener('click', () => setLanguage('en'));
  $('lang-zh').addEventListener('click', () => setLanguage('zh-CN'));
  const range = defaultRange();
  $('history-from').value = range.from;
  $('history-to').value = range.to;
  $('genesis-file').addEventListener('change', onGenesisFile);
  $('key-file').addEventListener('change', onKeyFile);
  $('key-create').addEventListener('click', onCreateKey);
  $('key-forget').addEventListener('click', onForgetKey);
  $('history-form').addEventListener('submit', onHistory);
  try {
    const text = await store.get(store.KEYS.genesis);
    if (text) state.genesis = await loadGenesis(text);
  } catch {
    state.genesis = null;
  }
  try {
    state.keypair = (await loadKeypair()) ?? null;
  } catch {
    state.keypair = null;
  }
  showGenesis();
  showKey();
  document.body.dataset.ready = 'true';
}

start();
