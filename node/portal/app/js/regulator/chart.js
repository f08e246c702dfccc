// Accesses per institution per week, from the institutions' verified histories: accesses
// permitted, denied and by break-glass (reviews are not accesses and are not counted), in the
// last `WEEKS` weeks (weeks start on Monday, UTC). Drawn as plain SVG, no third-party code:
// one group of three bars per week, one small chart per institution; colours come from
// regulator.css by class (the page's CSP allows no inline style).

import { el } from '../dom.js';
import { t } from '../i18n.js';

export const WEEKS = 8;
const WEEK_MS = 7 * 24 * 3600 * 1000;
/** 1970-01-01 was a Thursday: Monday 1970-01-05 starts week 0. */
const MONDAY_MS = 4 * 24 * 3600 * 1000;
export const SERIES = Object.freeze(['permitted', 'denied', 'break_glass']);

/** The start (ms, UTC Monday 00:00) of the week holding `ms`. */
export function weekStart(ms) {
  return Math.floor((ms - MONDAY_MS) / WEEK_MS) * WEEK_MS + MONDAY_MS;
}

/**
 * Counts per week of `events` (verified, `{event}` each) for the `WEEKS` weeks ending with the
 * one holding `nowMs`: `[{start, permitted, denied, break_glass}]`, oldest first.
 */
export function weeklyCounts(events, nowMs, weeks = WEEKS) {
  const last = weekStart(nowMs);
  const rows = [];
  for (let i = weeks - 1; i >= 0; i--) rows.push({ start: last - i * WEEK_MS, permitted: 0, denied: 0, break_glass: 0 });
  const first = rows[0].start;
  for (const ie of events) {
    const kind = ie.event.outcome.kind;
    if (!SERIES.includes(kind)) continue;
    const ms = Number(ie.event.timeMs);
    if (ms < first || ms >= last + WEEK_MS) continue;
    rows[Math.floor((ms - first) / WEEK_MS)][kind] += 1;
  }
  return rows;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

function label(start) {
  const d = new Date(start);
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}`;
}

/** One institution's chart: an SVG that scales to its box (usable at 375 px), with a table. */
export function chartOf(name, rows) {
  const max = Math.max(1, ...rows.flatMap((r) => SERIES.map((s) => r[s])));
  const width = 320;
  const height = 140;
  const base = 112;
  const group = width / rows.length;
  const bar = (group - 6) / SERIES.length;
  const figure = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'bars', 'aria-label': name });
  figure.append(svg('line', { x1: 0, y1: base, x2: width, y2: base, class: 'axis' }));
  rows.forEach((r, i) => {
    SERIES.forEach((s, j) => {
      const h = Math.round((r[s] / max) * (base - 14));
      const x = i * group + 3 + j * bar;
      const rect = svg('rect', { x: x.toFixed(1), y: base - h, width: (bar - 1).toFixed(1), height: h, class: `bar ${s}` });
      rect.append(svg('title', {}, `${label(r.start)} ${t(`reg.series.${s}`)}: ${r[s]}`));
      figure.append(rect);
      if (r[s] > 0) figure.append(svg('text', { x: (x + bar / 2).toFixed(1), y: base - h - 2, class: 'count' }, String(r[s])));
    });
    figure.append(svg('text', { x: (i * group + group / 2).toFixed(1), y: height - 12, class: 'week' }, label(r.start)));
  });
  const totals = SERIES.map((s) => rows.reduce((n, r) => n + r[s], 0));
  const legend = el('ul', { class: 'legend' }, ...SERIES.map((s, j) => el('li', { class: s, dataset: { series: s, total: String(totals[j]) } },
    `${t(`reg.series.${s}`)}: ${totals[j]}`)));
  return el('figure', { class: 'institution-chart', dataset: { institution: name } }, el('figcaption', { text: name }), figure, legend);
}
