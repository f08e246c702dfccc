// The pages' two languages: Simplified Chinese and English, chosen from the browser's languages
// the first time and remembered after. Text lives in `lang/*.js` (the patient's page) and
// `regulator/lang/*.js` (the regulator's page, and the commission's reviews in a history);
// elements name their text with `data-i18n` (and `data-i18n-vars`, JSON), so switching
// re-renders every message.

import patientEn from './lang/en.js';
import patientZh from './lang/zh-CN.js';
import regulatorEn from './regulator/lang/en.js';
import regulatorZh from './regulator/lang/zh-CN.js';

// Each page keeps its strings in its own dictionary; both pages read the merged ones.
const en = Object.freeze({ ...patientEn, ...regulatorEn });
const zh = Object.freeze({ ...patientZh, ...regulatorZh });
export const LANGUAGES = Object.freeze({ en, 'zh-CN': zh });
const STORAGE_KEY = 'cradle.portal.lang';
const listeners = [];
let current = 'en';

/** The remembered choice, else Chinese for a browser that prefers any Chinese, else English. */
export function initialLanguage() {
  let stored = null;
  try {
    stored = globalThis.localStorage?.getItem(STORAGE_KEY);
  } catch {
    // Storage refused (a private window): the browser's language decides.
  }
  if (stored && stored in LANGUAGES) return stored;
  const prefs = globalThis.navigator?.languages?.length ? navigator.languages : [globalThis.navigator?.language ?? 'en'];
  for (const p of prefs) {
    const l = String(p).toLowerCase();
    if (l.startsWith('zh')) return 'zh-CN';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

export function language() {
  return current;
}

/** `key`'s text in the current language, with `{name}` filled from `vars`. */
export function t(key, vars = {}) {
  const text = LANGUAGES[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Renders every `data-i18n` element under `root`. */
export function apply(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    let vars = {};
    if (node.dataset.i18nVars) {
      try {
        vars = JSON.parse(node.dataset.i18nVars);
      } catch {
        vars = {};
      }
    }
    node.textContent = t(node.dataset.i18n, vars);
  }
}

/** Switches the page to `lang`, remembers it, and tells whoever listens. */
export function setLanguage(lang) {
  current = lang in LANGUAGES ? lang : 'en';
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, current);
  } catch {
    // Not remembered: still switched for this visit.
  }
  document.documentElement.lang = current;
  document.title = t('app.title');
  apply();
  for (const fn of listeners) fn(current);
}

export function onLanguageChange(fn) {
  listeners.push(fn);
}
