/**
 * bench:scale's figures: from the generator's round records and the
 * master's /proc samples taken at each SYNC, the steady state and the fast
 * start of one group size, and the text table that compares sizes (pure).
 */
import { percentiles } from '../lib/sim/stats.js';
import type { FailoverResult } from './scale-failover.js';
import type { RealResult } from './scale-real.js';
import type { GenRound } from './scale-types.js';

/** Read when the generator heard SYNC of a round: the master's CPU (s), the machine's ticks, the master's kernel drops. */
export interface SyncSample {
  round: number;
  atMs: number;
  masterCpuS: number | null;
  masterSysS: number | null;
  masterWaitS: number | null;
  machine: { busy: number; total: number } | null;
  masterDrops: number | null;
}

export interface Window {
  rounds: number;
  wallS: number;
  /** The master's CPU over the window: per emulated member and round (µs), and as % of one core. */
  masterCpuUsPerMemberRound: number | null;
  masterCpuPercent: number | null;
  /** Its CPU per reply that reached the generator (in time or late), µs: the cost of one exchange, whatever the size. */
  masterCpuUsPerReply: number | null;
  /** Time its threads were runnable but waited for a CPU, % of the window: high when the machine's other work held the cores. */
  masterWaitPercent: number | null;
  genWaitPercent: number | null;
  /** The kernel's part of those (system time: on loopback a sender also delivers its datagrams into the receiver's socket). */
  masterSysPercent: number | null;
  /** The generator's CPU over the same rounds, % of one core, its system part, and per member and round (µs). */
  genCpuPercent: number;
  genSysPercent: number;
  genCpuUsPerMemberRound: number | null;
  /** The whole machine, in cores busy (all processes, these two included), and the cores the others used. */
  machineBusyCores: number | null;
  otherCores: number | null;
  /** ADJUST rows per round and emulated members that got their entry: min and median over the rounds. */
  rows: { min: number; median: number };
  gotEntry: { min: number; median: number };
  partsMissing: number;
  reports: number;
  requests: number;
  late: number;
  lost: number;
  timeouts: number;
  failedBursts: number;
  cutBursts: number;
  notStarted: number;
  outliers: number;
  /** Entries for members that had not reported, and entries that do not answer the member's report. */
  strayEntries: number;
  masterKernelDrops: number | null;
  /** Median over rounds of the median reported round trip, µs. */
  bestDelayUs: number;
}

const median = (xs: number[]): number => percentiles(xs).p50;
const perCore = (cpuS: number, wallS: number): number => (wallS > 0 ? (100 * cpuS) / wallS : 0);

/**
 * The figures over rounds [from, from + count): CPU between the SYNC of
 * `from` and the SYNC of `from + count`, counts summed over the records.
 */
export function windowOf(records: readonly GenRound[], samples: ReadonlyMap<number, SyncSample>, from: number, count: number, members: number, cpus: number): Window | null {
  const recs = records.filter((r) => r.round >= from && r.round < from + count && !r.partial);
  const a = samples.get(from);
  const b = samples.get(from + count);
  if (recs.length === 0 || !a || !b) return null;
  const wallS = (b.atMs - a.atMs) / 1000;
  const masterCpuS = a.masterCpuS !== null && b.masterCpuS !== null ? b.masterCpuS - a.masterCpuS : null;
  const masterSysS = a.masterSysS !== null && b.masterSysS !== null ? b.masterSysS - a.masterSysS : null;
  const genCpuS = recs.reduce((n, r) => n + r.genCpuUs, 0) / 1e6;
  const busy = a.machine && b.machine && b.machine.total > a.machine.total ? ((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * cpus : null;
  const memberRounds = members * recs.length;
  const sum = (f: (r: GenRound) => number): number => recs.reduce((n, r) => n + f(r), 0);
  return {
    rounds: recs.length,
    wallS,
    masterCpuUsPerMemberRound: masterCpuS === null || memberRounds === 0 ? null : (masterCpuS * 1e6) / memberRounds,
    masterCpuPercent: masterCpuS === null ? null : perCore(masterCpuS, wallS),
    masterCpuUsPerReply: masterCpuS === null || sum((r) => r.onTime + r.late + r.lateEarlier) === 0 ? null : (masterCpuS * 1e6) / sum((r) => r.onTime + r.late + r.lateEarlier),
    masterWaitPercent: a.masterWaitS !== null && b.masterWaitS !== null ? perCore(b.masterWaitS - a.masterWaitS, wallS) : null,
    genWaitPercent: recs.some((r) => r.genWaitUs === null) ? null : perCore(sum((r) => r.genWaitUs!) / 1e6, wallS),
    masterSysPercent: masterSysS === null ? null : perCore(masterSysS, wallS),
    genCpuPercent: perCore(genCpuS, wallS),
    genSysPercent: perCore(recs.reduce((n, r) => n + r.genSysUs, 0) / 1e6, wallS),
    genCpuUsPerMemberRound: memberRounds === 0 ? null : (genCpuS * 1e6) / memberRounds,
    machineBusyCores: busy,
    otherCores: busy === null || masterCpuS === null ? null : Math.max(0, busy - (masterCpuS + genCpuS) / wallS),
    rows: { min: Math.min(...recs.map((r) => r.tableRows)), median: median(recs.map((r) => r.tableRows)) },
    gotEntry: { min: Math.min(...recs.map((r) => r.gotEntry)), median: median(recs.map((r) => r.gotEntry)) },
    partsMissing: sum((r) => Math.max(0, r.adjustPartsAnnounced - r.adjustParts) + (r.adjustPartsAnnounced === 0 ? 1 : 0)),
    reports: sum((r) => r.reports),
    requests: sum((r) => r.requests),
    // A late reply may be heard in the round after its request's: counted as late, and not as lost.
    late: sum((r) => r.late + r.lateEarlier),
    lost: Math.max(0, sum((r) => r.lost - r.lateEarlier)),
    timeouts: sum((r) => r.timeouts),
    failedBursts: sum((r) => r.failed),
    cutBursts: sum((r) => r.cut),
    notStarted: sum((r) => r.notStarted),
    outliers: sum((r) => r.outliers),
    strayEntries: sum((r) => r.unreportedEntries + r.wrongEntries),
    masterKernelDrops: a.masterDrops !== null && b.masterDrops !== null ? b.masterDrops - a.masterDrops : null,
    bestDelayUs: median(recs.filter((r) => r.reports > 0).map((r) => r.bestDelayUs.p50)),
  };
}

export interface SizeResult {
  members: number;
  intervalMs: number;
  steady: Window | null;
  fastStart: Window | null;
  master: {
    rssMb: number | null;
    hwmMb: number | null;
    /** Kernel drops on its sockets over the whole run, by port (group, unicast). */
    kernelDrops: Record<string, number> | null;
    /** Its member table at the end, and what it dropped, by reason (status counters, whole run). */
    members: number | null;
    dropped: Record<string, number>;
    rejected: Record<string, number>;
  };
  generator: { sockets: number; directSend: boolean; cpuS: number; rssMb: number; kernelDrops: number | null; foreign: number; sendErrors: number };
  machine: { cpus: number; loadavgStart: number[]; loadavgEnd: number[] };
  /** With --real: the real peers' precision. */
  real?: RealResult;
  failover?: FailoverResult;
  error?: string;
  rounds: (GenRound & { masterCpuMs: number | null })[];
}

const f1 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(1));
const f2 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(2));

/** The table of a run, one line per size and window, then the notes that make the figures readable. */
export function formatResults(results: readonly SizeResult[]): string[] {
  const head = ['members', 'window', 'rounds', 'master µs/member·round', 'master µs/reply', 'master %core (sys)', 'master waited %', 'master RSS MB', 'rows min/med', 'got entry min/med', 'late', 'lost', 'master kernel drops', 'gen %core (sys)', 'gen waited %', 'machine busy cores', 'others cores'];
  const rows: string[][] = [];
  for (const r of results) {
    for (const [name, w] of [['steady', r.steady], ['fast start', r.fastStart]] as const) {
      if (!w) {
        rows.push([String(r.members), name, '0', ...head.slice(3).map(() => '-')]);
        continue;
      }
      rows.push([
        String(r.members), name, String(w.rounds), f2(w.masterCpuUsPerMemberRound), f1(w.masterCpuUsPerReply), `${f1(w.masterCpuPercent)} (${f1(w.masterSysPercent)})`, f1(w.masterWaitPercent), f1(r.master.rssMb),
        `${w.rows.min}/${w.rows.median}`, `${w.gotEntry.min}/${w.gotEntry.median}`, String(w.late), String(w.lost), String(w.masterKernelDrops ?? '-'),
        `${f1(w.genCpuPercent)} (${f1(w.genSysPercent)})`, f1(w.genWaitPercent), f2(w.machineBusyCores), f2(w.otherCores),
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(head), ...rows.map(line)];
  for (const r of results) {
    const dropped = Object.entries(r.master.dropped).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
    const w = r.steady;
    out.push(
      `${r.members}: master table ${r.master.members ?? '-'} members at the end; engine drops (whole run) ${dropped}; kernel drops by port ${JSON.stringify(r.master.kernelDrops)}`,
      `   steady: ${w ? `${w.requests} requests, ${w.timeouts} probe timeouts, ${w.failedBursts} bursts with no usable reply, ${w.cutBursts} cut by the report deadline, ${w.notStarted} slots never reached, ${w.partsMissing} ADJUST parts missing, ${w.outliers} outlier entries, ${w.strayEntries} stray entries, best round trip p50 ${f1(w.bestDelayUs)} µs, over ${f1(w.wallS)} s` : 'no steady rounds'}`,
      ...(r.real ? [realLine(r.real)] : []),
      `   generator: ${r.generator.sockets} sockets, ${r.generator.directSend ? 'sendto(2) by FFI' : "Node's send"}, ${f1(r.generator.cpuS)} s CPU in all, RSS ${f1(r.generator.rssMb)} MB, kernel drops ${r.generator.kernelDrops ?? '-'}, foreign datagrams ${r.generator.foreign}, send errors ${r.generator.sendErrors}; load average ${r.machine.loadavgStart.map(f2).join(' ')} at the start, ${r.machine.loadavgEnd.map(f2).join(' ')} at the end${r.error ? `; ERROR: ${r.error}` : ''}`,
    );
  }
  return out;
}

function realLine(x: RealResult): string {
  const p = (v: { p50: number; p99: number; max: number }): string => `p50 ${f1(v.p50)} µs, p99 ${f1(v.p99)} µs, max ${f1(v.max)} µs`;
  return `   ${x.daemons} real peers: precision (master and them, steady, from round ${x.steadyFromRound ?? 'never'}, ${x.roundsAfterConvergence} rounds) ${p(x.precisionUs)}; clock error against the master ${p(x.clockErrorUs)}; within 1 ms after round ${x.convergeRounds.ms1 ?? 'never'}, 100 µs after round ${x.convergeRounds.us100 ?? 'never'}; ${x.samples} samples, ${x.failures} failed; their CPU while sampled (a status 5 times a second) ${x.cpuPct.map((c) => `${c.toFixed(2)} %`).join(', ')}`;
}
