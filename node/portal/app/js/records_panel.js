// The page's fourth step: her records and consents listed, the grant form and the revoke
// buttons, with a message for every outcome (the ledger's refusals in its own words).

import { fromHex, toHex } from '../../js/bytes.js';
import { KeyUnwrapError } from '../../js/keywrap.js';
import { $, el, say } from './dom.js';
import { CATEGORIES, GRANT_PURPOSES, GrantError, archiveItem, fetchArchives, fetchGrants, grant, grantItem, grantees, revoke } from './consent_view.js';
import { NodeError } from './node.js';
import { ArchiveError } from '../../js/archive.js';
import { DownloadError, dataHref, openOwnRecord } from './download.js';
import { downloadBox, showOpened } from './record_view.js';
import { worded } from './rotate_view.js';

/** The message key and values for a failure of a records action. */
export function failure(e) {
  if (e instanceof GrantError) return [e.code, { max: e.message }];
  if (e instanceof DownloadError) return [e.code, { reason: e.message }];
  if (e instanceof ArchiveError) return [`archive.${e.code}`, { reason: e.message }];
  if (e instanceof KeyUnwrapError) return ['grant.keyUnwrap', {}];
  if (e instanceof NodeError) {
    const key = { txRefused: 'tx.refused', notEnrolled: 'node.notEnrolled', signatureRefused: 'node.signatureRefused', notMember: 'node.notMember', setsRefused: 'node.setsRefused', genesisMismatch: 'node.genesisMismatch' }[e.code] ?? 'node.failed';
    return [key, { reason: e.message }];
  }
  return ['node.failed', { reason: e.message }];
}

function checkbox(name, value, labelKey) {
  const box = el('input', { type: 'checkbox', name, value });
  const label = el('label', { class: 'check' }, box, el('span'));
  say(label.lastChild, labelKey);
  return label;
}

/**
 * Wires the section. `ctx()` gives `{genesis, sets, keypair, identity}` as the page holds them now, and
 * `node()` the checked node (see main.js); `changed()` is told after a grant or a revocation.
 */
export function setupRecords(ctx, node, changed = () => {}) {
  const view = { archives: [], grants: [] };
  const purposes = $('grant-purposes');
  for (const p of GRANT_PURPOSES) purposes.append(checkbox('purpose', p, `purpose.${p}`));
  purposes.querySelector('input[value="TREAT"]').checked = true;
  const categories = $('grant-categories');
  for (const c of CATEGORIES) categories.append(checkbox('category', c, `category.${c}`));
  $('grant-scope').addEventListener('change', () => {
    categories.hidden = $('grant-scope').value !== 'categories';
  });

  function render() {
    const { sets } = ctx();
    const archives = $('archive-list');
    archives.replaceChildren(...view.archives.map((a) => {
      const item = archiveItem(sets, a);
      item.append(worded('button', 'download.button', { type: 'button', class: 'open-record', 'data-archive': toHex(a.id) }));
      return item;
    }));
    if (view.archives.length === 0) archives.append(el('li', { class: 'empty' }, el('span')));
    if (view.archives.length === 0) say(archives.lastChild.firstChild, 'records.noArchives');
    const active = view.grants.filter((g) => g.status === 'active' || g.status === 'pending');
    const past = view.grants.filter((g) => !(g.status === 'active' || g.status === 'pending'));
    $('grant-list').replaceChildren(...active.map((g) => grantItem(sets, g)));
    $('grant-past-list').replaceChildren(...past.map((g) => grantItem(sets, g)));
    if (active.length === 0) {
      $('grant-list').append(el('li', { class: 'empty' }, el('span')));
      say($('grant-list').lastChild.firstChild, 'records.noGrants');
    }
    fillGrantees();
  }

  /** The institutions she may grant, from the newest verified member set. */
  function fillGrantees() {
    const { sets } = ctx();
    if (!sets) return;
    const select = $('grant-grantee');
    const chosen = select.value;
    select.replaceChildren(...grantees(sets).map((m) => el('option', { value: toHex(m.publicKey), text: m.name })));
    if (chosen) select.value = chosen;
  }

  async function load() {
    const { genesis, keypair } = ctx();
    if (!genesis || !keypair) return say('records-status', 'history.needs', {}, 'error');
    $('records-load').disabled = true;
    say('records-status', 'records.loading');
    try {
      const n = await node();
      const me = ctx().identity ?? keypair.signing.publicKey;
      view.archives = await fetchArchives(n, me);
      view.grants = await fetchGrants(n, me);
      $('records-lists').hidden = false;
      render();
      say('records-status', 'records.loaded', { archives: view.archives.length, grants: view.grants.length }, 'ok');
    } catch (e) {
      const [key, vars] = failure(e);
      say('records-status', key, vars, 'error');
    } finally {
      $('records-load').disabled = false;
    }
  }

  async function onGrant(event) {
    event.preventDefault();
    const { genesis, sets, keypair } = ctx();
    if (!genesis || !keypair) return say('grant-status', 'history.needs', {}, 'error');
    const button = $('grant-submit');
    button.disabled = true;
    say('grant-status', 'grant.sending');
    try {
      const n = await node();
      const key = $('grant-grantee').value;
      const grantee = grantees(sets).find((m) => toHex(m.publicKey) === key);
      const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
      const scope = $('grant-scope').value === 'categories' ? { kind: 'categories', categories: checked('category') } : { kind: 'all' };
      // Asked again now, as the CLI does: every archive the scope covers at this moment gets its key.
      view.archives = await fetchArchives(n, ctx().identity ?? keypair.signing.publicKey);
      const done = await grant({ node: n, keypair, genesis, sets, grantee, purposes: checked('purpose'), scope, days: $('grant-days').value, archives: view.archives });
      changed();
      // The lists first, so that what the message says is already shown.
      await load();
      $('grant-status').dataset.grant = done.grant;
      say('grant-status', 'grant.done', { grantee: grantee.name, grant: `${done.grant.slice(0, 16)}…`, height: done.height, keys: done.keys }, 'ok');
    } catch (e) {
      const [key, vars] = failure(e);
      say('grant-status', key, vars, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function onRevoke(event) {
    const button = event.target.closest('button.revoke');
    if (!button) return;
    const { genesis, keypair } = ctx();
    button.disabled = true;
    say('grant-status', 'grant.revoking');
    try {
      const done = await revoke({ node: await node(), keypair, genesis, id: fromHex(button.dataset.grant, 32, 'grant id') });
      changed();
      await load();
      say('grant-status', 'grant.revoked', { height: done.height }, 'ok');
    } catch (e) {
      const [key, vars] = failure(e);
      say('grant-status', key, vars, 'error');
      button.disabled = false;
    }
  }

  /** Her own record, fetched (the access logged first), checked, opened and offered here. */
  async function onOpen(event) {
    const button = event.target.closest('button.open-record');
    if (!button) return;
    const { genesis, keypair, identity } = ctx();
    if (!genesis || !keypair) return say('download-status', 'history.needs', {}, 'error');
    button.disabled = true;
    $('download-link').hidden = true;
    $('download-summary').replaceChildren();
    say('download-status', 'download.working');
    try {
      const n = await node();
      const id = button.dataset.archive;
      const done = await openOwnRecord({ node: n, genesis, sets: ctx().sets, keypair, identity: identity ?? keypair.signing.publicKey, id });
      showOpened(done, dataHref(done.plaintext), id);
      say('download-status', 'download.done', { height: done.height, index: Number(done.index) + 1 }, 'ok');
      changed();
    } catch (e) {
      const [key, vars] = failure(e);
      say('download-status', key, vars, 'error');
    } finally {
      button.disabled = false;
    }
  }

  $('archive-list').after(downloadBox());
  $('archive-list').addEventListener('click', onOpen);
  $('records-load').addEventListener('click', load);
  $('grant-form').addEventListener('submit', onGrant);
  $('grant-list').addEventListener('click', onRevoke);
  fillGrantees();
  return {
    /** Re-renders after a language switch or a new member set. */
    refresh: () => (view.archives.length || view.grants.length ? render() : fillGrantees()),
    /** Forgets what was listed (another key or genesis). */
    reset: () => {
      view.archives = [];
      view.grants = [];
      $('records-lists').hidden = true;
      fillGrantees();
    },
  };
}
