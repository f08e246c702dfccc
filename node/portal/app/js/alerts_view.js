// What her verified history adds for her, drawn over the list history_view.js renders: an alert
// at the top of the page for emergency (break-glass) accesses she has not seen, her own reads
// named "you", and an "Ask why" action on each access.
//
// "Ask why" sends nothing: the ledger holds no free text and no names, and Cradle has no
// messaging service. It shows what she can quote, proven by her verified history (the block
// height, the entry's place in her access history and the access record's hash), the
// institution's name and role from the verified member set, and a message in her language to
// copy and give to that institution (or to the regional health commission, which reviews
// emergency accesses). Genesis lists no contact details, so none is invented.

import { toHex } from '../../js/bytes.js';
import { $, el } from './dom.js';
import { language, t } from './i18n.js';
import { worded } from './rotate_view.js';

/** The events of `result` in the order the list shows them (newest first). */
const shown = (result) => [...result.events].reverse();

/**
 * Break-glass accesses and recoveries of her identity by a member that she has not seen: since
 * her last visit, or all on her first.
 */
export function unseenBreakGlass(result) {
  if (!result?.verified) return [];
  const from = result.newFrom ?? null;
  const flagged = (kind) => kind === 'break_glass' || kind === 'recovered';
  return shown(result).filter((ie) => flagged(ie.event.outcome.kind) && (from === null || BigInt(ie.index) >= from));
}

function when(ms) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(Number(ms)));
}

/** The banner at the top of the page (made once), shown while there is something to say. */
function banner() {
  let b = $('alert-banner');
  if (!b) {
    b = el('div', { id: 'alert-banner', class: 'glass-alert', role: 'alert', hidden: '' },
      el('strong', { id: 'alert-title' }), el('span', { id: 'alert-detail' }),
      worded('button', 'alert.show', { type: 'button', id: 'alert-show' }));
    document.querySelector('main').before(b);
    b.querySelector('#alert-show').addEventListener('click', () => {
      document.querySelector('#history-list li[data-glass-new="true"]')?.scrollIntoView({ block: 'center' });
    });
  }
  return b;
}

/** Shows (or hides) the alert for the unseen break-glass accesses of `result`. */
export function showAlerts(sets, result) {
  const b = banner();
  const unseen = unseenBreakGlass(result);
  b.hidden = unseen.length === 0;
  b.dataset.count = String(unseen.length);
  if (unseen.length === 0) return;
  const first = result.newFrom === null || result.newFrom === undefined;
  const nameOf = (e) => {
    const reader = e.staff ? e.staff.institution : e.accessor;
    return sets.memberByAnyKey(reader)?.name ?? toHex(reader).slice(0, 12);
  };
  // A recovery she did not ask for is someone else holding her identity: it comes first.
  const recovery = unseen.find((ie) => ie.event.outcome.kind === 'recovered');
  if (recovery) {
    const e = recovery.event;
    $('alert-title').textContent = t('alert.recovered', { institution: nameOf(e), time: when(e.timeMs) });
    const regulators = sets.latest().members.filter((m) => m.role === 'regulator').map((m) => m.name).join(', ');
    $('alert-detail').textContent = t('alert.recoveredHelp', { regulators: regulators || t('role.regulator') });
    return;
  }
  $('alert-title').textContent = t(first ? 'alert.glassFirst' : 'alert.glass', { count: unseen.length });
  const latest = unseen[0].event;
  $('alert-detail').textContent = t('alert.latest', { time: when(latest.timeMs), institution: nameOf(latest) });
}

/** What she can quote and ask about access `ie`. */
function question(sets, ie) {
  const e = ie.event;
  const reader = e.staff ? e.staff.institution : e.accessor;
  const member = sets.memberByAnyKey(reader);
  const institution = member?.name ?? t('institution.unknown', { key: toHex(reader).slice(0, 12) });
  const who = e.staff ? t('person.staff', { role: t(`staff.${e.staff.role}`), id: toHex(e.staff.id).slice(0, 8) }) : t('person.institution');
  const reference = t('ask.reference', { height: String(e.height), entry: String(BigInt(ie.index) + 1n), tx: toHex(e.txHash).slice(0, 16) });
  const message = t('ask.message', {
    institution, time: when(e.timeMs), record: t(`category.${e.category}`), who,
    purpose: `${t(`purpose.${e.purpose}`)} (${e.purpose})`, reference,
    outcome: e.outcome.kind === 'denied' ? t('outcome.denied', { reason: t(`denial.${e.outcome.reason}`) }) : t(`outcome.${e.outcome.kind}`),
  });
  const regulators = sets.latest().members.filter((m) => m.role === 'regulator').map((m) => m.name).join(', ');
  return { institution, reference, message, regulators };
}

function askPanel(sets, ie) {
  const q = question(sets, ie);
  const text = el('textarea', { class: 'ask-message', readonly: '', rows: '7' });
  text.value = q.message;
  const copy = worded('button', 'ask.copy', { type: 'button', class: 'ask-copy' });
  const copied = el('span', { class: 'ask-copied status', 'aria-live': 'polite' });
  copy.addEventListener('click', async () => {
    text.select();
    try {
      await navigator.clipboard.writeText(q.message);
    } catch {
      document.execCommand?.('copy');
    }
    copied.textContent = t('ask.copied');
  });
  return el('div', { class: 'ask-panel' },
    el('p', { class: 'ask-reference', text: q.reference }),
    el('p', { class: 'help', text: t('ask.how', { institution: q.institution, regulators: q.regulators || t('role.regulator') }) }),
    text, el('div', { class: 'actions' }, copy, copied));
}

/**
 * Draws over the rendered `list` of verified `result`: her own reads (by any key in `mine`, a
 * set of hex keys) named "you", unseen break-glass accesses marked, and an "Ask why" button on
 * every other access, which opens what she can quote and a message to copy.
 */
export function decorate(list, sets, result, mine) {
  if (!result?.verified) return;
  const events = shown(result);
  const unseen = new Set(unseenBreakGlass(result).map((ie) => String(ie.index)));
  const items = [...list.querySelectorAll('li.event')];
  items.forEach((li, i) => {
    const ie = events[i];
    if (!ie) return;
    li.dataset.index = String(ie.index);
    li.dataset.height = String(ie.event.height);
    if (unseen.has(String(ie.index))) li.dataset.glassNew = 'true';
    if (mine.has(toHex(ie.event.accessor))) {
      li.dataset.self = 'true';
      const dds = li.querySelectorAll('dd');
      if (dds[0]) dds[0].textContent = t('you.institution');
      if (dds[1]) dds[1].textContent = t('you.person');
      return;
    }
    // A commission's review is a finding about an access, not an access to ask about; a
    // recovery is for the commission (the alert says so).
    if (['reviewed', 'rotated', 'recovered'].includes(ie.event.outcome.kind)) return;
    const ask = worded('button', 'ask.button', { type: 'button', class: 'ask-why quiet' });
    ask.addEventListener('click', () => {
      const open = li.querySelector('.ask-panel');
      if (open) return open.remove();
      li.append(askPanel(sets, ie));
    });
    li.append(ask);
  });
}
