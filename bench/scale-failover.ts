/**
 * bench:scale --failover: the master of a big group dies (SIGKILL, no
 * LEAVE), and the real daemons inside the group (bench:scale --real N,
 * here with the default priority, so that they may claim) elect a new one,
 * which then serves the emulated members as the old master did.
 *
 * Reported: intervals from the kill to the first SYNC of the new epoch (as
 * the generator hears it), the CLAIMs the real daemons sent (their status
 * counters, read before and after), who won, and the new master's first
 * rounds: table rows and the emulated members that got their entry, so
 * that a new master that takes over thousands at once shows whether its
 * first rounds held them. Pure bookkeeping over what bench/scale.ts
 * collects; the kill and the status queries go through the Cluster.
 */
import type { Cluster } from '../lib/daemon/cluster.js';
import type { GenRound } from './scale-types.js';

/** A SYNC as the generator heard it, with this process's performance.now(). */
export interface HeardSync {
  epoch: number;
  round: number;
  atMs: number;
}

export interface FailoverResult {
  /** Rounds of the old master before the kill. */
  killedAfterRound: number;
  /** Kill to the first SYNC of a new epoch, ms and intervals; null: none came within the watch. */
  takeoverMs: number | null;
  takeoverIntervals: number | null;
  newMaster: string | null;
  newEpoch: number | null;
  /** CLAIMs the real daemons sent during the election, and elections they counted. */
  claims: number;
  elections: number;
  /** The new master's first rounds, as the emulated members saw them. */
  rounds: Array<{ round: number; rows: number; gotEntry: number; reports: number; probes?: number }>;
  error?: string;
}

/** Counters of the real daemons: claims and elections, summed. */
async function counts(cluster: Cluster, names: string[]): Promise<{ claims: number; elections: number; masters: string[] }> {
  const st = await Promise.all(names.map((n) => cluster.status(n).catch(() => null)));
  let claims = 0;
  let elections = 0;
  const masters: string[] = [];
  for (const [i, s] of st.entries()) {
    if (!s) continue;
    claims += s.counters.claims;
    elections += s.counters.elections;
    if (s.role === 'master') masters.push(names[i]!);
  }
  return { claims, elections, masters };
}

export async function measureFailover(o: {
  cluster: Cluster;
  masterName: string;
  realNames: string[];
  intervalMs: number;
  /** Rounds of the new master to watch. */
  watchRounds: number;
  syncs: HeardSync[];
  records: GenRound[];
  killedAfterRound: number;
  signal: AbortSignal;
}): Promise<FailoverResult> {
  const before = await counts(o.cluster, o.realNames);
  const oldEpoch = o.syncs.at(-1)?.epoch ?? 0;
  const killedAt = performance.now();
  await o.cluster.kill(o.masterName, 'SIGKILL');
  const result: FailoverResult = { killedAfterRound: o.killedAfterRound, takeoverMs: null, takeoverIntervals: null, newMaster: null, newEpoch: null, claims: 0, elections: 0, rounds: [] };
  // Bounded: the election (a few intervals) and the rounds to watch, with slack.
  const deadline = killedAt + (10 + o.watchRounds * 2) * o.intervalMs;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  while (performance.now() < deadline && !o.signal.aborted) {
    const first = o.syncs.find((s) => s.epoch > oldEpoch && s.atMs >= killedAt);
    if (first && result.takeoverMs === null) {
      result.takeoverMs = first.atMs - killedAt;
      result.takeoverIntervals = result.takeoverMs / o.intervalMs;
      result.newEpoch = first.epoch;
    }
    const newRounds = o.records.filter((r) => result.newEpoch !== null && r.epoch === result.newEpoch && !r.partial);
    if (newRounds.length >= o.watchRounds) break;
    await sleep(50);
  }
  const after = await counts(o.cluster, o.realNames);
  result.claims = after.claims - before.claims;
  result.elections = after.elections - before.elections;
  result.newMaster = after.masters.join(',') || null;
  result.rounds = o.records
    .filter((r) => result.newEpoch !== null && r.epoch === result.newEpoch)
    .slice(0, o.watchRounds)
    .map((r) => ({ round: r.round, rows: r.tableRows, gotEntry: r.gotEntry, reports: r.reports }));
  if (result.takeoverMs === null) result.error = `no SYNC of a new epoch within ${((deadline - killedAt) / 1000).toFixed(0)} s of the kill`;
  return result;
}

/** One line for the text report. */
export function failoverLine(f: FailoverResult, members: number): string {
  if (f.takeoverIntervals === null) return `failover at ${members}: ${f.error}; CLAIMs sent ${f.claims}`;
  const rounds = f.rounds.map((r) => `r${r.round} ${r.gotEntry}/${members}`).join(', ');
  return (
    `failover at ${members}: master killed after round ${f.killedAfterRound}; ${f.newMaster ?? '?'} took over (epoch ${f.newEpoch}) ` +
    `${f.takeoverIntervals.toFixed(2)} intervals after the kill; CLAIMs sent ${f.claims}; the new master's first rounds (members with their entry): ${rounds}`
  );
}
