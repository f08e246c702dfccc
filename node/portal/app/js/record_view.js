// Her opened record: where the result of a download is shown (what it holds, and the link that
// saves it), built in the page with its text in both languages.

import { $, el, say } from './dom.js';
import { worded } from './rotate_view.js';

/** The box under her records list: a status, a summary and the save link. */
export function downloadBox() {
  return el('div', { id: 'download-box', class: 'download' },
    el('p', { id: 'download-status', class: 'status', 'aria-live': 'polite' }),
    el('div', { id: 'download-summary', class: 'summary' }),
    worded('a', 'download.save', { id: 'download-link', class: 'file', hidden: '' }));
}

/**
 * Shows what `done` (from `openOwnRecord`) holds: a FHIR bundle's kind, its entries by resource
 * type; and offers `href` to save it, named after the archive `id`.
 */
export function showOpened(done, href, id) {
  const box = $('download-summary');
  const s = done.summary;
  const line = el('p');
  // Shown first, then worded: a message is rendered within its parent.
  if (s) {
    const types = el('ul', { class: 'types' }, ...s.types.slice(0, 8).map(([type, n]) => el('li', { text: `${type}: ${n}` })));
    box.replaceChildren(line, types);
    say(line, 'download.summary', { kind: s.kind, entries: s.entries, bytes: done.plaintext.length });
  } else {
    box.replaceChildren(line);
    say(line, 'download.notFhir', { bytes: done.plaintext.length });
  }
  const link = $('download-link');
  link.href = href;
  link.download = `cradle-record-${id.slice(0, 12)}.json`;
  link.hidden = false;
  link.dataset.archive = id;
}
