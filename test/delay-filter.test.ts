/**
 * A peer's delay filter (lib/core/delay-filter.ts): the bound is 1.2x the
 * median of recent best round trips, never closer to it than 5 µs, and
 * widens with each rejection in a row; rejected round trips enter the
 * history; before synchronization nothing is rejected.
 */
import test from 'ava';
import { DELAY_FLOOR_NS, DELAY_HISTORY, DELAY_MIN_HISTORY, DelayFilter } from '../lib/core/delay-filter.js';

const US = 1_000n;
/** A filter whose last n bursts all had this best round trip. */
function filled(delayNs: bigint, n = DELAY_MIN_HISTORY): DelayFilter {
  const f = new DelayFilter();
  for (let i = 0; i < n; i++) f.judge(delayNs, true);
  return f;
}

test('no bound, and no rejection, while the history is short', (t) => {
  const f = new DelayFilter();
  for (let i = 0; i < DELAY_MIN_HISTORY - 1; i++) t.is(f.judge(100n * US, true), null);
  t.is(f.bound(), null);
  t.is(f.typicalNs, null);
  t.is(f.judge(10_000n * US, true), null, 'the fourth burst is judged against no bound yet');
  t.not(f.bound(), null);
});

test('1.2x the median on a slow path; the median plus 5 µs on a fast one', (t) => {
  t.is(filled(100n * US).bound(), 120n * US);
  t.is(filled(10n * US).bound(), 10n * US + DELAY_FLOOR_NS, '1.2x 10 µs is inside the scheduling noise');
  const f = filled(100n * US);
  t.is(f.judge(121n * US, true), 120n * US, 'above the bound: rejected, with the bound it exceeded');
  t.is(filled(100n * US).judge(120n * US, true), null, 'at the bound: kept');
});

test('each rejection in a row widens the bound by 0.6x the median; a kept burst resets it', (t) => {
  const f = filled(100n * US, DELAY_HISTORY);
  t.is(f.judge(500n * US, true), 120n * US);
  t.is(f.bound(), 180n * US);
  t.is(f.judge(500n * US, true), 180n * US);
  t.is(f.bound(), 240n * US);
  t.is(f.judge(100n * US, true), null);
  t.is(f.bound(), 120n * US);
});

test('rejected round trips enter the history: a path that really became slower is followed', (t) => {
  const f = filled(100n * US, DELAY_HISTORY);
  let rejected = 0;
  for (let i = 0; i < DELAY_HISTORY; i++) if (f.judge(300n * US, true) !== null) rejected += 1;
  // 300 µs against bounds of 120, 180, 240 µs: rejected; the fourth, against 300 µs, kept. Three more rejected the
  // same way, the eighth kept; with 8 of 16 at 300 µs the median is 300 µs, and every later one is kept.
  t.is(rejected, 6, `${rejected} of ${DELAY_HISTORY} rejected`);
  t.is(f.typicalNs, 300n * US);
  t.is(f.judge(300n * US, true), null);
});

test('before synchronization nothing is rejected, and the history still fills', (t) => {
  const f = filled(100n * US);
  t.is(f.judge(1_000n * US, false), null);
  t.is(f.bound(), 120n * US, 'the median of 100, 100, 100, 100, 1000 µs');
});
