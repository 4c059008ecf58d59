/**
 * Naming faulty members, and the group's common frequency (pure).
 *
 * A member left out of the average FAULTY_OUTLIER_ROUNDS rounds in a row,
 * each time farther than twice its interval's half-width from the point the
 * majority agreed on (a clock just outside, still slewing or measured in a
 * noisy round, is left out of that round's average and no more), or whose
 * frequency estimate needs more than the frequency limit
 * FAULTY_LIMIT_ROUNDS rounds in a row (one: an estimate is trusted only
 * once its standard error is 30 ppm, so a good clock within ±100 ppm is
 * never 500 ppm off), is named faulty; it recovers after RECOVER_ROUNDS
 * clean rounds in a row. Only rounds with a majority count. A faulty member
 * still gets its entry. The master judges its own clock by the same rules
 * (runaway.ts).
 */
import { DEFAULT_DISCIPLINE } from './discipline.js';
import type { FaultReason, Notice } from './types.js';

export const FAULTY_OUTLIER_ROUNDS = 3;
export const FAULTY_LIMIT_ROUNDS = 1;
export const RECOVER_ROUNDS = 3;

/**
 * The group's common frequency (ppm): the mean of the estimates, leaving out
 * any farther than half the frequency limit from their median. A clock
 * whose estimate is that far off cannot be followed anyway, and before it
 * is named faulty its runaway estimate would otherwise drag the mean, and
 * with it every good clock, toward the limit. Clamped to ±limitPpm.
 */
export function commonFrequency(estimates: readonly number[], limitPpm: number): number {
  if (estimates.length === 0) return 0;
  const sorted = [...estimates].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const med = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const near = estimates.filter((e) => Math.abs(e - med) <= limitPpm / 2);
  const mean = near.reduce((a, b) => a + b, 0) / near.length;
  return Math.max(-limitPpm, Math.min(limitPpm, mean));
}

/** What the judgement reads and writes of a member (master.ts's Member). */
export interface Judged {
  node: bigint;
  name: string;
  /** The frequency its estimate calls for (ppm), from its last report, or null. */
  frequencyPpm: number | null;
  faulty: FaultReason | null;
  faultySinceRound: number | null;
  outlierRounds: number;
  limitRounds: number;
  cleanRounds: number;
}

/** Its frequency estimate lies beyond the frequency limit from the group's common frequency. */
export function beyondLimit(frequencyPpm: number | null, commonPpm: number): boolean {
  return frequencyPpm !== null && Math.abs(frequencyPpm - commonPpm) > DEFAULT_DISCIPLINE.maxFrequencyPpm;
}

/**
 * Name members faulty, or recovered, from a round with a majority: the
 * entries of the members that reported this round, whether each was left
 * out, and which were far. Returns how many were newly named.
 */
export function judgeMembers(
  judged: Iterable<{ member: Judged; outlier: boolean; far: boolean }>,
  commonPpm: number,
  round: number,
  notice: (n: Notice) => void,
): number {
  let named = 0;
  for (const { member: m, outlier, far } of judged) {
    const atLimit = beyondLimit(m.frequencyPpm, commonPpm);
    // Only a clear miss counts toward a fault: a clock just outside the agreement (a slew of its own still
    // running at its measurement, a noisy round on a busy host) is left out of this average, no more.
    if (!outlier) m.outlierRounds = 0;
    else if (far) m.outlierRounds += 1;
    m.limitRounds = atLimit ? m.limitRounds + 1 : 0;
    const reason: FaultReason | null = m.limitRounds >= FAULTY_LIMIT_ROUNDS ? 'frequency-limit' : m.outlierRounds >= FAULTY_OUTLIER_ROUNDS ? 'outlier' : null;
    if (m.faulty === null) {
      if (reason === null) continue;
      m.faulty = reason;
      m.faultySinceRound = round;
      m.cleanRounds = 0;
      named += 1;
      notice({ kind: 'member-faulty', name: m.name, node: m.node, reason, round });
      continue;
    }
    m.cleanRounds = outlier || atLimit ? 0 : m.cleanRounds + 1;
    if (m.cleanRounds >= RECOVER_ROUNDS) {
      m.faulty = null;
      m.faultySinceRound = null;
      notice({ kind: 'member-faulty', name: m.name, node: m.node, reason: null, round });
    } else if (reason !== null && reason !== m.faulty) {
      m.faulty = reason;
    }
  }
  return named;
}
