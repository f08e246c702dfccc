// Small DOM helpers: elements by id, and messages that re-render when the language changes.

import { apply } from './i18n.js';

export const $ = (id) => document.getElementById(id);

/** A new element with properties and children (strings become text, never HTML). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** An element showing the message `key` (translated now and on every language switch). */
export function msg(tag, key, vars) {
  const node = el(tag);
  say(node, key, vars);
  return node;
}

/** Shows the message `key` with `vars` in `node`; `state` ('ok', 'error', ...) styles it. */
export function say(node, key, vars = {}, state = '') {
  const target = typeof node === 'string' ? $(node) : node;
  if (key === null) {
    delete target.dataset.i18n;
    delete target.dataset.i18nVars;
    target.textContent = '';
  } else {
    target.dataset.i18n = key;
    target.dataset.i18nVars = JSON.stringify(vars);
    apply(target.parentElement ?? target);
  }
  if (state) target.dataset.state = state;
  else delete target.dataset.state;
}
