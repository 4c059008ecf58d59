/**
 * The simulator's report: a readable account of each round, like the
 * seed's printout made clear, and one JSON object for machines.
 */
import { byName, magnitude, roundTableLines } from '../table.js';
import { formatDurationNs } from '../units.js';
import type { RoundRecord, SimResult } from './simulator.js';
import { FAST_START_ROUNDS } from '../core/master.js';
import { convergedRound, precisionAfter, steadyFrom, type Percentiles } from './stats.js';

export interface SimSummary {
  nodes: number;
  rounds: number;
  roundsCompleted: number;
  seed: number;
  convergedRound: number | null;
  precisionNs: Percentiles;
  firstRoundAdjustmentsNs: Record<string, number>;
  /** As the benchmark reports them: the rounds after which the group stays within 1 ms and within 100 µs, and the precision from the latter on. */
  convergeRounds: { ms1: number | null; us100: number | null };
  precisionAfter100usNs: Percentiles;
  /** The steady state's precision, as the benchmark's precisionUs: from the 100 µs round, and after the fast start. */
  steadyFromRound: number | null;
  precisionSteadyNs: Percentiles;
  masters: string[];
  conditions: {
    intervalNs: number;
    driftPpm: number;
    delayNs: number;
    jitterNs: number;
    asymmetryNs: number;
    loss: number;
    toleranceNs: number;
    master: string | null;
  };
  wallMs: number;
}

export function summarize(r: SimResult): SimSummary {
  const o = r.options;
  const converged = convergedRound(r.samples, o.toleranceNs);
  const us100 = convergedRound(r.samples, 100_000n);
  const first = r.rounds[0];
  const firstRoundAdjustmentsNs: Record<string, number> = {};
  for (const row of [...(first?.table ?? [])].sort(byName)) firstRoundAdjustmentsNs[row.name] = Number(row.adjustmentNs);
  return {
    nodes: o.nodes,
    rounds: o.rounds,
    roundsCompleted: r.rounds.length,
    seed: o.seed,
    convergedRound: converged,
    precisionNs: precisionAfter(r.samples, converged),
    firstRoundAdjustmentsNs,
    convergeRounds: { ms1: convergedRound(r.samples, 1_000_000n), us100 },
    precisionAfter100usNs: precisionAfter(r.samples, us100 ?? convergedRound(r.samples, 1_000_000n)),
    steadyFromRound: steadyFrom(r.samples, FAST_START_ROUNDS),
    precisionSteadyNs: precisionAfter(r.samples, steadyFrom(r.samples, FAST_START_ROUNDS)),
    masters: [...new Set(r.rounds.map((x) => x.master))],
    conditions: {
      intervalNs: Number(o.intervalNs),
      driftPpm: o.driftPpm,
      delayNs: Number(o.delayNs),
      jitterNs: Number(o.jitterNs),
      asymmetryNs: Number(o.asymmetryNs),
      loss: o.loss,
      toleranceNs: Number(o.toleranceNs),
      master: o.master,
    },
    wallMs: r.wallMs,
  };
}

/** Lines describing one round. Tables of more than maxRows nodes are summarised. */
export function formatRound(rec: RoundRecord, maxRows = 16): string[] {
  const lines = [`round ${rec.index}: epoch ${rec.epoch}, round ${rec.round}, master ${rec.master}${rec.quorum ? '' : ' (no majority within the tolerance: following the master)'}`];
  lines.push(...roundTableLines(rec.table, rec.master, maxRows));
  const seconds = (Number(rec.groupTimeNs) / 1e9).toFixed(6);
  const spread = rec.spreadAfterNs === null ? 'n/a' : magnitude(rec.spreadAfterNs);
  lines.push(`  average ${formatDurationNs(rec.averageNs)}   synchronized time ${seconds} s   spread before next round ${spread}`);
  return lines;
}

export function formatReport(r: SimResult, s: SimSummary, show: { rounds: boolean } = { rounds: true }): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(
    `berkeleyd simulate: ${o.nodes} nodes, seed ${o.seed}, interval ${magnitude(o.intervalNs)}, ` +
      `delay ${magnitude(o.delayNs)} + jitter ${magnitude(o.jitterNs)}, ` +
      `asymmetry ${magnitude(o.asymmetryNs)}, loss ${(o.loss * 100).toFixed(1)}%, drift ±${o.driftPpm} ppm, ` +
      `master ${o.master ?? 'elected'}`,
  );
  if (show.rounds) for (const rec of r.rounds) lines.push(...formatRound(rec, 16));
  lines.push(
    s.convergedRound === null
      ? `never converged within the tolerance (${magnitude(o.toleranceNs)})`
      : `converged after round ${s.convergedRound}; precision since: p50 ${us(s.precisionNs.p50)}, p99 ${us(s.precisionNs.p99)}, max ${us(s.precisionNs.max)}`,
  );
  const c = s.convergeRounds;
  const st = s.precisionSteadyNs;
  lines.push(
    `as the benchmark counts: within 1 ms after round ${c.ms1 ?? 'never'}, within 100 µs after round ${c.us100 ?? 'never'}` +
      (s.steadyFromRound === null || s.steadyFromRound > s.roundsCompleted
        ? ''
        : `; steady state from round ${s.steadyFromRound}: p50 ${us(st.p50)}, p99 ${us(st.p99)}, max ${us(st.max)}`),
  );
  return lines.join('\n');
}

function us(ns: number): string {
  return `${(ns / 1000).toFixed(1)} µs`;
}
