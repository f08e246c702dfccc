// The "change my key" part of the key step, built in the page (its text in both languages).

import { el } from './dom.js';
import { t } from './i18n.js';

/** An element showing message `key`, now and after every language switch. */
export function worded(tag, key, props = {}) {
  return el(tag, { ...props, 'data-i18n': key, text: t(key) });
}

/** The section: a heading, what a rotation does, the button and its status. */
export function rotationSection() {
  return el('div', { id: 'rotate-box', class: 'rotate' },
    worded('h3', 'rotate.title'),
    worded('p', 'rotate.help', { class: 'help' }),
    el('div', { class: 'actions' }, worded('button', 'rotate.button', { type: 'button', id: 'key-rotate' })),
    el('p', { id: 'rotate-status', class: 'status', 'aria-live': 'polite' }));
}
