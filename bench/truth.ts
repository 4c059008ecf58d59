/**
 * The benchmarks' ground truth over real daemons (bench, bench:scale
 * --real): a sample of every daemon's group clock brought to one monotonic
 * instant (lib/daemon/truth.ts), and the precision figures over a run's
 * samples, counted as README "Benchmark" says: the steady state from the
 * round after which the group stays within 100 µs and after the fast start;
 * beside it, from the 100 µs round on; and each clock's error against the
 * reference (the first reading: the master).
 */
import { FAST_START_ROUNDS } from '../lib/core/master.js';
import { groupTimesAt, readingOf, spreadNs } from '../lib/daemon/truth.js';
import { convergedRound, percentiles, precisionAfter, steadyFrom } from '../lib/sim/stats.js';

export interface Sample {
  atMs: number;
  /** Rounds the master had completed. */
  label: number;
  spreadNs: bigint;
  /** Each daemon's clock minus the reference's (ns) and its rate error left after its frequency correction (ppm), in reading order. */
  offsetsNs: bigint[];
  ratesPpm: number[];
}

/** What readingOf needs of a status. */
export type ClockStatus = Parameters<typeof readingOf>[0];

/** One sample: the readings (the reference first) at the latest reading's instant. */
export function sampleOf(statuses: readonly ClockStatus[], label: number, atMs: number): Sample {
  const readings = statuses.map(readingOf);
  const at = readings.reduce((m, r) => (r.monotonicNs > m ? r.monotonicNs : m), 0n);
  const times = groupTimesAt(readings, at);
  return { atMs, label, spreadNs: spreadNs(readings), offsetsNs: times.map((t) => t - times[0]!), ratesPpm: readings.map((r) => r.rateErrorPpm) };
}

const us = (p: { p50: number; p99: number; max: number }): { p50: number; p99: number; max: number } => ({ p50: p.p50 / 1000, p99: p.p99 / 1000, max: p.max / 1000 });

export interface Precision {
  convergeRounds: { ms1: number | null; us100: number | null };
  steadyFromRound: number | null;
  roundsAfterConvergence: number;
  /** Largest disagreement between two clocks, µs: steady state, and from the 100 µs round on. */
  precisionUs: { p50: number; p99: number; max: number };
  precisionFromConvergenceUs: { p50: number; p99: number; max: number };
  /** Each clock's error against the reference, pooled over clocks and steady samples, µs. */
  clockErrorUs: { p50: number; p99: number; max: number };
}

export function precisionOf(samples: readonly Sample[], lastRound: number, fastStartRounds = FAST_START_ROUNDS): Precision {
  const ms1 = convergedRound(samples, 1_000_000n);
  const us100 = convergedRound(samples, 100_000n);
  const from = steadyFrom(samples, fastStartRounds);
  const clockErr = percentiles(samples.filter((x) => from !== null && x.label >= from).flatMap((x) => x.offsetsNs.slice(1).map((d) => Math.abs(Number(d)))));
  return {
    convergeRounds: { ms1, us100 },
    steadyFromRound: from,
    roundsAfterConvergence: from === null ? 0 : Math.max(0, lastRound - from + 1),
    precisionUs: us(precisionAfter(samples, from)),
    precisionFromConvergenceUs: us(precisionAfter(samples, us100)),
    clockErrorUs: us(clockErr),
  };
}

/** What boundPairs needs of a status: the reading and the bound read with it. */
export type BoundStatus = ClockStatus & { nodeId: string; role: string; errorBoundNs?: string | null; boundState?: string; boundDriftPpb?: number };

/** One (daemon, instant) pair: its bound (null: none) and its distance from the group's time, ns. */
export interface BoundPair {
  boundNs: number | null;
  errorNs: number;
  state: string;
  node: string;
  role: string;
}

/**
 * Each daemon's error against the group's time and its bound, at the
 * latest reading's instant. The group's time is the master's clock with
 * its own adjustment applied (docs/protocol.md, "Error bound"): the
 * master's reading plus what it had yet to slew, carried at its rate. A
 * bound read earlier is carried to that instant at its own drift, as its
 * reader would (ErrorBound). Empty when no master answered.
 */
export function boundPairs(statuses: readonly BoundStatus[]): BoundPair[] {
  const master = statuses.find((s) => s.role === 'master');
  if (!master) return [];
  const readings = statuses.map(readingOf);
  const at = readings.reduce((m, r) => (r.monotonicNs > m ? r.monotonicNs : m), 0n);
  const times = groupTimesAt(readings, at);
  const m = readingOf(master);
  const gap = Number(at - m.monotonicNs);
  const groupNs = m.groupTimeNs + (m.pendingNs ?? 0n) + BigInt(gap) + BigInt(Math.round((gap * m.rateErrorPpm) / 1e6));
  return statuses.map((s, i) => {
    const b = s.errorBoundNs === null || s.errorBoundNs === undefined ? null : Number(BigInt(s.errorBoundNs)) + (Number(at - readings[i]!.monotonicNs) * (s.boundDriftPpb ?? 0)) / 1e9;
    return { boundNs: b, errorNs: Math.abs(Number(times[i]! - groupNs)), state: s.boundState ?? 'none', node: s.nodeId, role: s.role };
  });
}

/** Honesty (|error| > bound counts as a violation) and tightness over a run's pairs. */
export function boundFigures(pairs: readonly BoundPair[]): { samples: number; violations: number; none: number; freeRunning: number; medianBoundUs: number | null; medianErrorUs: number | null; ratio: number | null; worstFraction: number | null; worst: BoundPair | null; boundUs: { p50: number; p99: number; max: number } } {
  const kept = pairs.filter((p) => p.boundNs !== null);
  const med = (xs: number[]): number | null => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1]! : null);
  const mb = med(kept.map((p) => p.boundNs!));
  const me = med(kept.map((p) => p.errorNs));
  const b = percentiles(kept.map((p) => p.boundNs!));
  // The pair whose error came closest to its bound.
  const worst = kept.reduce<BoundPair | null>((w, p) => (p.boundNs! > 0 && (w === null || p.errorNs / p.boundNs! > w.errorNs / w.boundNs!) ? p : w), null);
  return {
    samples: kept.length,
    violations: kept.filter((p) => p.errorNs > p.boundNs!).length,
    none: pairs.length - kept.length,
    freeRunning: kept.filter((p) => p.state === 'free-running').length,
    medianBoundUs: mb === null ? null : mb / 1000,
    medianErrorUs: me === null ? null : me / 1000,
    ratio: mb !== null && me ? mb / me : null,
    // The largest |error| / bound (≤ 1 when honest): how close the error came.
    worstFraction: worst ? worst.errorNs / worst.boundNs! : null,
    worst,
    boundUs: us(b),
  };
}
