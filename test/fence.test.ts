/**
 * Replay fencing of SYNCs (lib/core/fence.ts): a master's SYNC must beat
 * its last accepted (epoch, round); a master silent for FENCE_INTERVALS is
 * forgotten; at most FENCE_MEMORY masters are remembered.
 */
import test from 'ava';
import { FENCE_INTERVALS, FENCE_MEMORY, ReplayFence } from '../lib/core/fence.js';

const MS = 1_000_000n;
const sync = (sender: bigint, epoch: number, round: number) => ({ sender, epoch, round, intervalMs: 1000 });

test('a SYNC not newer than the last accepted from its master is a replay; a newer one, or another master, is not', (t) => {
  const f = new ReplayFence();
  t.false(f.stale(sync(1n, 3, 10), 0n), 'nothing remembered yet');
  f.remember(sync(1n, 3, 10), 0n);
  t.true(f.stale(sync(1n, 3, 10), 500n * MS), 'the same round again');
  t.true(f.stale(sync(1n, 3, 9), 500n * MS), 'an older round');
  t.true(f.stale(sync(1n, 2, 50), 500n * MS), 'an older epoch, whatever its round');
  t.false(f.stale(sync(1n, 3, 11), 500n * MS), 'the next round');
  t.false(f.stale(sync(1n, 4, 1), 500n * MS), 'a newer epoch from round 1');
  t.false(f.stale(sync(2n, 1, 1), 500n * MS), 'another master');
});

test('a master silent for more than FENCE_INTERVALS intervals is forgotten: restarted at round 1, it is heard again', (t) => {
  const f = new ReplayFence();
  f.remember(sync(1n, 1, 40), 0n);
  const limit = FENCE_INTERVALS * 1000n * MS;
  t.true(f.stale(sync(1n, 1, 1), limit), 'still remembered at exactly the limit');
  t.false(f.stale(sync(1n, 1, 1), limit + 1n), 'forgotten past it');
  t.is(f.size, 0);
});

test('at most FENCE_MEMORY masters are remembered, the one heard longest ago forgotten first', (t) => {
  const f = new ReplayFence();
  for (let i = 0; i <= FENCE_MEMORY; i++) f.remember(sync(BigInt(i), 1, 5), BigInt(i) * MS);
  t.is(f.size, FENCE_MEMORY);
  t.false(f.stale(sync(0n, 1, 5), 100n * MS), 'the first master was forgotten');
  t.true(f.stale(sync(1n, 1, 5), 100n * MS), 'the second is still fenced');
  // Heard again, master 1 becomes the most recent: the next one in is master 2's loss, not its.
  f.remember(sync(1n, 1, 6), 101n * MS);
  f.remember(sync(999n, 1, 1), 102n * MS);
  t.true(f.stale(sync(1n, 1, 6), 103n * MS));
  t.false(f.stale(sync(2n, 1, 5), 103n * MS), 'master 2 was forgotten');
});
