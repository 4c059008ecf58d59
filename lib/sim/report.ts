/**
 * The simulator's report: a readable account of each round, like the
 * seed's printout made clear, and one JSON object for machines.
 */
import { byName, magnitude, roundTableLines } from '../table.js';
import { formatDurationNs } from '../units.js';
import type { Fault, RoundRecord, SimResult } from './simulator.js';
import { FAST_START_ROUNDS } from '../core/master.js';
import type { BoundHonesty } from './honesty.js';
import { convergedRound, precisionAfter, slopePpm, steadyFrom, type Percentiles } from './stats.js';

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
  /**
   * With --fault: the clocks without a fault, separately. Their precision
   * over the steady state (as precisionSteadyNs, on their own spread), their
   * common rate against true time and against the mean of their own drifts
   * (ppm), and every member the master named faulty or recovered, with the
   * round. Without faults the good clocks are all clocks.
   */
  faults: string[];
  good: {
    nodes: string[];
    steadyFromRound: number | null;
    precisionSteadyNs: Percentiles;
    ratePpm: number | null;
    meanDriftPpm: number;
    rateErrorPpm: number | null;
  };
  flagged: { node: string; reason: string | null; round: number }[];
  /**
   * What the group asked of its master: the table's rows per round after the
   * fast start (min and median; a member missing from a table lost its
   * round), the requests it shed, and, with the receive model
   * (--receive-cost), the unicast datagrams dropped at full queues.
   */
  load: { receiveCostNs: number; receiveDrops: number; staleRequests: number; tableRows: { min: number | null; median: number | null } };
  /** Every node's error bound against the ground truth at every sample (honesty.ts). */
  bound: BoundHonesty;
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
    faults: o.faults.map(formatFault),
    good: goodFigures(r),
    flagged: r.flags.map((f) => ({ node: f.node, reason: f.reason, round: f.round })),
    load: loadFigures(r),
    bound: r.bound,
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

function loadFigures(r: SimResult): SimSummary['load'] {
  const rows = r.rounds.slice(FAST_START_ROUNDS).map((x) => x.table.length).sort((a, b) => a - b);
  return {
    receiveCostNs: Number(r.options.receiveCostNs ?? 0n),
    receiveDrops: Object.values(r.receiveDrops).reduce((a, b) => a + b, 0),
    staleRequests: r.statuses.reduce((a, st) => a + (st.dropped['stale-request'] ?? 0), 0),
    tableRows: { min: rows[0] ?? null, median: rows.length ? rows[rows.length >> 1]! : null },
  };
}

/** A fault as --fault spells it. */
export function formatFault(f: Fault): string {
  switch (f.kind) {
    case 'drift':
      return `${f.node}:drift=${f.ppm}`;
    case 'jump':
      return `${f.node}:jump=${formatDurationNs(f.ns)}@${f.round}`;
    case 'lie':
      return `${f.node}:lie=${formatDurationNs(f.ns)}`;
    case 'mute':
      return `${f.node}:mute@${f.round}`;
  }
}

/** The good clocks' figures: steady precision on their own spread, and their common rate (least-squares slope of their mean offset from true time). */
function goodFigures(r: SimResult): SimSummary['good'] {
  const faulty = new Set(r.options.faults.map((f) => f.node));
  const nodes = r.statuses.map((s) => s.name).filter((n) => !faulty.has(n));
  const drifts = r.driftsPpm.filter((_, i) => !faulty.has(`n${i}`));
  const meanDriftPpm = drifts.length ? drifts.reduce((a, b) => a + b, 0) / drifts.length : 0;
  const goodSamples = r.samples.map((s) => ({ label: s.label, spreadNs: s.goodSpreadNs }));
  const from = steadyFrom(goodSamples, FAST_START_ROUNDS);
  const steady = r.samples.filter((s) => s.label >= (from ?? FAST_START_ROUNDS + 1));
  const ratePpm = steady.length >= 3 ? slopePpm(steady.map((s) => [Number(s.atNs), s.goodMeanOffsetNs])) : null;
  return {
    nodes,
    steadyFromRound: from,
    precisionSteadyNs: precisionAfter(goodSamples, from),
    ratePpm,
    meanDriftPpm,
    rateErrorPpm: ratePpm === null ? null : ratePpm - meanDriftPpm,
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
  if (s.load.receiveCostNs > 0) {
    const l = s.load;
    lines.push(
      `receive model: ${magnitude(BigInt(l.receiveCostNs))} per unicast datagram; after the fast start the tables held ${l.tableRows.min ?? '-'} rows at least, ${l.tableRows.median ?? '-'} in the median round; ` +
        `${l.receiveDrops} datagrams dropped at full receive queues, ${l.staleRequests} requests shed`,
    );
  }
  if (s.faults.length) {
    const g = s.good;
    const gp = g.precisionSteadyNs;
    lines.push(
      `faults ${s.faults.join(' ')}; the ${g.nodes.length} good clocks: ` +
        (g.steadyFromRound === null ? 'no steady state' : `steady p50 ${us(gp.p50)}, p99 ${us(gp.p99)}, max ${us(gp.max)}`) +
        (g.ratePpm === null ? '' : `; common rate ${g.ratePpm.toFixed(2)} ppm against their mean drift ${g.meanDriftPpm.toFixed(2)} ppm (${(g.rateErrorPpm ?? 0).toFixed(2)} ppm apart)`),
    );
    lines.push(
      s.flagged.length
        ? `named faulty: ${s.flagged.map((f) => (f.reason === null ? `${f.node} recovered in round ${f.round}` : `${f.node} (${f.reason}) in round ${f.round}`)).join(', ')}`
        : 'named faulty: none',
    );
  } else if (s.good.ratePpm !== null) {
    lines.push(`common rate ${s.good.ratePpm.toFixed(2)} ppm against the mean drift ${s.good.meanDriftPpm.toFixed(2)} ppm (${(s.good.rateErrorPpm ?? 0).toFixed(2)} ppm apart)`);
  }
  lines.push(boundLine(s.bound));
  return lines.join('\n');
}

/** The error bound's honesty and tightness, in one line. */
function boundLine(b: BoundHonesty): string {
  const tight = b.medianBoundNs === null ? '' : `; median bound ${us(b.medianBoundNs)}, median |error| ${us(b.medianErrorNs ?? 0)} (ratio ${b.ratio === null ? '-' : b.ratio.toFixed(1)})`;
  const faulty = b.faulty.samples + b.faulty.none > 0 ? `; nodes with a fault: ${b.faulty.violations} of ${b.faulty.samples} over, ${b.faulty.none} without` : '';
  return `error bound: ${b.violations} of ${b.samples} (node, instant) pairs over their bound (${b.freeRunning} free-running), ${b.none} without a bound${tight}${faulty}`;
}

function us(ns: number): string {
  return `${(ns / 1000).toFixed(1)} µs`;
}

/**
 * The election after a simulated crash of the master (--crash-master): the
 * CLAIMs sent from the crash on (a node turning candidate sends one), the
 * nodes that became master, and how long after the crash the first did, in
 * intervals. Null without a crash, or when the run kept no events.
 */
export function electionAfterCrash(r: SimResult): { claims: number; masters: string[]; takeoverIntervals: number | null } | null {
  const crashed = r.events.find((e) => e.notice.kind === 'role' && e.notice.why === 'crashed (simulated)');
  if (!crashed) return null;
  const roles = r.events.filter((e) => e.atNs >= crashed.atNs && e.notice.kind === 'role');
  const claims = roles.filter((e) => e.notice.kind === 'role' && e.notice.role === 'candidate').length;
  const masters = roles.filter((e) => e.notice.kind === 'role' && e.notice.role === 'master');
  return {
    claims,
    masters: masters.map((e) => e.node),
    takeoverIntervals: masters.length ? Number(masters[0]!.atNs - crashed.atNs) / Number(r.options.intervalNs) : null,
  };
}

