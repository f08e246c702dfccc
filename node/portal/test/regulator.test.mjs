// The regulator page's own logic, apart from the browser: which break-glass accesses of a
// verified break-glass log still await review, and the weekly counts its chart draws.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { weekStart, weeklyCounts } from '../app/js/regulator/chart.js';
import { pendingOf } from '../app/js/regulator/review.js';

const hash = (b) => new Uint8Array(32).fill(b);
const access = (index, tx, kind, timeMs = 0) => ({ index, event: { txHash: hash(tx), timeMs: BigInt(timeMs), outcome: { kind } } });
const review = (index, tx, entry, decision) => ({
  index, event: { txHash: hash(tx), timeMs: 0n, outcome: { kind: 'reviewed', entry: hash(entry), decision } },
});

test('an access awaits review until a review names it', () => {
  const log = [access(0, 1, 'break_glass'), access(1, 2, 'break_glass'), review(2, 3, 1, 'not_justified')];
  const { pending, reviews } = pendingOf(log);
  assert.deepEqual(pending.map((ie) => ie.index), [1]);
  assert.equal(reviews.size, 1);
  // A review naming an access that is not in the log reviews nothing here.
  assert.deepEqual(pendingOf([access(0, 1, 'break_glass'), review(1, 3, 9, 'justified')]).pending.length, 1);
  assert.deepEqual(pendingOf([]).pending, []);
});

test('weeks start on Monday, UTC', () => {
  const monday = Date.UTC(2026, 10, 30); // 30 November 2026 is a Monday.
  assert.equal(weekStart(monday), monday);
  assert.equal(weekStart(monday + 6 * 86_400_000 + 86_399_999), monday);
  assert.equal(weekStart(monday - 1), monday - 7 * 86_400_000);
});

test('the chart counts accesses, denials and break-glass per week, and no reviews', () => {
  const now = Date.UTC(2026, 11, 2, 12); // Wednesday 2 December 2026.
  const thisWeek = weekStart(now);
  const lastWeek = thisWeek - 7 * 86_400_000;
  const events = [
    access(0, 1, 'permitted', lastWeek + 1000),
    access(1, 2, 'denied', lastWeek + 2000),
    access(2, 3, 'permitted', thisWeek + 1000),
    access(3, 4, 'break_glass', thisWeek + 2000),
    { ...review(4, 5, 4, 'justified'), event: { ...review(4, 5, 4, 'justified').event, timeMs: BigInt(thisWeek + 3000) } },
    // Before the eight weeks: not counted.
    access(5, 6, 'permitted', thisWeek - 8 * 7 * 86_400_000),
  ];
  const rows = weeklyCounts(events, now);
  assert.equal(rows.length, 8);
  assert.equal(rows[7].start, thisWeek);
  assert.deepEqual(rows[6], { start: lastWeek, permitted: 1, denied: 1, break_glass: 0 });
  assert.deepEqual(rows[7], { start: thisWeek, permitted: 1, denied: 0, break_glass: 1 });
  assert.equal(rows.slice(0, 6).reduce((n, r) => n + r.permitted + r.denied + r.break_glass, 0), 0);
});
