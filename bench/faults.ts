/**
 * npm run bench:faults: does the group hold while some of its members are bad?
 *
 * Runs the same group of real daemons on loopback twice, with the same
 * starting offsets and drifts: once with the good members alone (the
 * baseline), once with the bad ones added: clocks that drift beyond what
 * any frequency correction can follow (--faulty n3:2000), and/or members
 * that lie by a fixed amount in every REPORT while holding the group's key
 * (--liar n5:3ms). For the good clocks alone it reports, in each run, the
 * steady-state precision (largest disagreement between two good clocks,
 * from the round after which they stay within 100 µs and after the fast
 * start), their common rate against the mean of their own drifts (the slope
 * of their mean offset from the shared monotonic clock), and, in the faulty
 * run, in which round the master named each bad member faulty. Ground truth
 * as in bench.ts: every process shares CLOCK_MONOTONIC.
 *
 * Without bad members it runs once: the common rate over a long run
 * (`--duration 600s`) is the group's walk away from its members' mean rate.
 *
 * A runaway master (--master-drift 2000): the faulty run gives the master
 * n0 that drift, the baseline keeps its own; the good clocks are n1 and up
 * in both runs. n0 is pinned (--master) unless --elect: then every daemon
 * may be elected, n0 with the best priority, so that it leads first and
 * must step down; the run reports the intervals from its step-down to the
 * next master, the CLAIMs sent meanwhile, and the line of its log that
 * says why.
 */
import { Command, Option } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { int, positiveDuration, ppm } from '../bin/parse.js';
import { parsePpm, parseSignedDurationNs } from '../lib/units.js';
import { FAST_START_ROUNDS } from '../lib/core/master.js';
import { Cluster } from '../lib/daemon/cluster.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { groupTimesAt, readingOf } from '../lib/daemon/truth.js';
import { freeUdpPort } from '../lib/net/transport.js';
import { precisionAfter, slopePpm, steadyFrom, type Percentiles } from '../lib/sim/stats.js';
import { generateKeyFile } from '../lib/wire/keys.js';
import { lying } from '../test/helpers/liar.js';

interface Member {
  name: string;
  offsetNs: bigint;
  driftPpm: number;
  liarNs?: bigint;
  bad: boolean;
}

/** With --elect: n0's step-down and the election after it. */
interface Failover {
  /** Intervals from the first status that showed n0 stood down to the first that showed another master; null: none seen. */
  intervalsToNewMaster: number | null;
  newMaster: string | null;
  /** CLAIMs sent by all daemons from n0's step-down to the end of the run, and by n0 itself. */
  claimsAfter: number;
  claimsByN0After: number;
  reasonLine: string | null;
}

interface RunResult {
  failover?: Failover;
  good: string[];
  rounds: number;
  steadyFromRound: number | null;
  precisionUs: Percentiles;
  ratePpm: number | null;
  meanDriftPpm: number;
  rateErrorPpm: number | null;
  flagged: Record<string, { round: number; reason: string }>;
  /** The 5 largest steady samples and their rounds: where a p99 comes from (a transition, or spikes anywhere). */
  worst: { round: number; spreadUs: number }[];
}

const pair = (what: string, parse: (v: string) => unknown) => (text: string, prev: [string, unknown][] = []): [string, unknown][] => {
  const m = /^(n\d+):(.+)$/.exec(text);
  if (!m) throw new Error(`${what} "${text}": expected NODE:VALUE, e.g. n3:${what === '--faulty' ? '2000' : '3ms'}`);
  return [...prev, [m[1]!, parse(m[2]!)]];
};

async function runGroup(members: Member[], o: { intervalNs: bigint; durationMs: number; rate: number; keyFile: string | null; elect: boolean; goodNames?: string[] }, log: (s: string) => void): Promise<RunResult> {
  const port = await freeUdpPort();
  const group = `239.255.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const cluster = new Cluster();
  const stop = (): void => void cluster.stop().then(() => process.exit(130));
  process.once('SIGINT', stop);
  try {
    const common = ['--group', group, '--port', String(port), '--interface', '127.0.0.1', '--interval', `${o.intervalNs}ns`, ...(o.keyFile ? ['--key-file', o.keyFile] : [])];
    // Peers first, the master (n0) last, as bench.ts does; to be elected, n0 starts first and leads before the others come.
    for (const m of o.elect ? members : [...members.slice(1), members[0]!]) {
      const role = o.elect ? ['--priority', m.name === 'n0' ? '200' : '100'] : m.name === 'n0' ? ['--master'] : ['--priority', '0'];
      await cluster.add({
        name: m.name,
        args: [...common, '--sim-offset', `${m.offsetNs}ns`, '--sim-drift', m.driftPpm.toFixed(3), ...role],
        ...(m.liarNs !== undefined ? { wrap: lying(m.liarNs) } : {}),
      });
    }
    const names = members.map((m) => m.name);
    const good = members.filter((m) => (o.goodNames ? o.goodNames.includes(m.name) : !m.bad));
    const goodIdx = good.map((g) => names.indexOf(g.name));
    const samples: { label: number; spreadNs: bigint; monoNs: bigint; meanOffsetNs: number }[] = [];
    // --elect: when n0 stood down, when another master first showed, and the CLAIMs counted at the step-down.
    let downMs: number | null = null;
    let newMaster: { name: string; ms: number } | null = null;
    let claimsAtDown = 0;
    let n0ClaimsAtDown = 0;
    let claimsNow = 0;
    let n0ClaimsNow = 0;
    const watch = (st: StatusJson[], ms: number): void => {
      claimsNow = st.reduce((a, x) => a + x.counters.claims, 0);
      n0ClaimsNow = st[0]!.counters.claims;
      if (downMs === null && st[0]!.faults.ownClock?.action === 'stood-down') {
        downMs = ms;
        claimsAtDown = claimsNow;
        n0ClaimsAtDown = n0ClaimsNow;
      }
      const other = st.find((x) => x.role === 'master' && x.nodeId !== 'n0');
      if (downMs !== null && newMaster === null && other) newMaster = { name: other.nodeId, ms };
    };
    const flagged: RunResult['flagged'] = {};
    const t0 = Date.now();
    let rounds = 0;
    while (Date.now() - t0 < o.durationMs) {
      await new Promise((r) => setTimeout(r, 1000 / o.rate));
      const all = await cluster.statusAll();
      const byName = names.map((n) => all.find((s): s is StatusJson => s !== null && s.nodeId === n));
      if (byName.some((s) => !s)) throw new Error(`a daemon stopped answering (${names.filter((_, i) => !byName[i]).join(', ')})`);
      const master = byName.find((b) => b!.role === 'master') ?? byName[0]!;
      rounds = master.lastRound?.round ?? 0;
      if (o.elect) watch(byName as StatusJson[], Number(process.hrtime.bigint() / 1_000_000n));
      for (const f of master.faults?.members ?? []) flagged[f.nodeId] ??= { round: f.sinceRound ?? rounds, reason: f.reason };
      const own = byName[0]!.faults.ownClock;
      if (own) flagged.n0 ??= { round: byName[0]!.lastRound?.round ?? rounds, reason: `own-clock-faulty (${own.fault}), ${own.action}` };
      const readings = goodIdx.map((i) => readingOf(byName[i]!));
      const at = readings.reduce((m, r) => (r.monotonicNs > m ? r.monotonicNs : m), 0n);
      const times = groupTimesAt(readings, at);
      const min = times.reduce((a, b) => (b < a ? b : a));
      const max = times.reduce((a, b) => (b > a ? b : a));
      samples.push({ label: rounds, spreadNs: max - min, monoNs: at, meanOffsetNs: times.reduce((a, t) => a + Number(t - at), 0) / times.length });
    }
    const from = steadyFrom(samples, FAST_START_ROUNDS);
    const steady = samples.filter((s) => s.label >= (from ?? FAST_START_ROUNDS + 1));
    const ratePpm = steady.length >= 3 ? slopePpm(steady.map((s) => [Number(s.monoNs - steady[0]!.monoNs), s.meanOffsetNs])) : null;
    const meanDriftPpm = good.reduce((a, m) => a + m.driftPpm, 0) / good.length;
    const p = precisionAfter(samples, from);
    log(`  ${members.length} daemons (${good.length} good), ${rounds} rounds, ${samples.length} samples`);
    const intervalMs = Number(o.intervalNs) / 1e6;
    const down = downMs as number | null;
    const next = newMaster as { name: string; ms: number } | null;
    const failover: Failover | undefined = o.elect
      ? {
          intervalsToNewMaster: down !== null && next !== null ? (next.ms - down) / intervalMs : null,
          newMaster: next?.name ?? null,
          claimsAfter: down !== null ? claimsNow - claimsAtDown : 0,
          claimsByN0After: down !== null ? n0ClaimsNow - n0ClaimsAtDown : 0,
          reasonLine: cluster.members.find((m) => m.name === 'n0')?.stderr.split('\n').find((l) => l.includes('own-clock-faulty')) ?? null,
        }
      : undefined;
    return {
      ...(failover ? { failover } : {}),
      good: good.map((g) => g.name),
      rounds,
      steadyFromRound: from,
      precisionUs: { p50: p.p50 / 1000, p99: p.p99 / 1000, max: p.max / 1000 },
      ratePpm,
      meanDriftPpm,
      rateErrorPpm: ratePpm === null ? null : ratePpm - meanDriftPpm,
      flagged,
      worst: [...steady].sort((a, b) => (b.spreadNs > a.spreadNs ? 1 : b.spreadNs < a.spreadNs ? -1 : 0)).slice(0, 5).map((x) => ({ round: x.label, spreadUs: Number(x.spreadNs) / 1000 })),
    };
  } finally {
    process.off('SIGINT', stop);
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const o = new Command('bench:faults')
    .description('the good clocks of a group with and without bad members: precision, common rate, and when the bad ones are named')
    .option('--nodes <n>', 'good daemons (n0 is the master)', int(2, 32, 'nodes'), 8)
    .option('--faulty <node:ppm>', 'a bad member whose clock drifts this much (beyond any correction), repeatable: n3:2000', pair('--faulty', parsePpm))
    .option('--liar <node:duration>', 'a bad member that adds this to every REPORT (it holds the key), repeatable: n5:3ms', pair('--liar', parseSignedDurationNs))
    .option('--master-drift <ppm>', 'a runaway master: in the faulty run the master n0 drifts this much (beyond any correction); the good clocks are n1 and up in both runs', ppm)
    .option('--elect', 'with --master-drift: no pinned master; n0 has the best priority, is elected first and must step down')
    .option('--keys', 'authenticate the group (a fresh key file)')
    .option('--drift <ppm>', "the good clocks' drifts, random within ± this", ppm, 20)
    .addOption(new Option('--interval <duration>', 'round interval').argParser(positiveDuration).default(1_000_000_000n, '1s'))
    .addOption(new Option('--duration <duration>', 'each run samples this long').argParser(positiveDuration).default(60_000_000_000n, '60s'))
    .option('--rate <n>', 'ground-truth samples per second', int(1, 20, 'rate'), 5)
    .option('--json', 'one JSON object as the last line of standard output')
    .parse(process.argv)
    .opts();
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const faulty = new Map<string, number>((o.faulty ?? []) as [string, number][]);
  const liars = new Map<string, bigint>((o.liar ?? []) as [string, bigint][]);
  const badNames = [...faulty.keys(), ...liars.keys()];
  // Bad members take the names given; the good members are the first --nodes names not taken by them, so that the
  // baseline keeps every good clock with the same offset and drift.
  const members: Member[] = [];
  for (let i = 0; members.filter((m) => !m.bad).length < o.nodes; i++) {
    const name = `n${i}`;
    if (badNames.includes(name)) continue;
    members.push({ name, offsetNs: BigInt(Math.round((Math.random() * 2 - 1) * 1e9)), driftPpm: (Math.random() * 2 - 1) * o.drift, bad: false });
  }
  if (badNames.includes('n0')) throw new Error('n0 is the master: name bad members n1 and up');
  for (const [name, ppmValue] of faulty) members.push({ name, offsetNs: BigInt(Math.round((Math.random() * 2 - 1) * 1e9)), driftPpm: ppmValue, bad: true });
  for (const [name, lie] of liars) members.push({ name, offsetNs: BigInt(Math.round((Math.random() * 2 - 1) * 1e9)), driftPpm: (Math.random() * 2 - 1) * o.drift, liarNs: lie, bad: true });
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-faults-'));
  let keyFile: string | null = null;
  if (o.keys || liars.size > 0) {
    keyFile = join(dir, 'key');
    writeFileSync(keyFile, generateKeyFile(1), { mode: 0o600 });
  }
  const masterDrift = o.masterDrift as number | undefined;
  if (o.elect && masterDrift === undefined) throw new Error('--elect goes with --master-drift');
  // A runaway master: n0 is not among the good clocks in either run (the baseline keeps its drawn drift).
  const goodNames = masterDrift !== undefined ? members.filter((m) => !m.bad && m.name !== 'n0').map((m) => m.name) : undefined;
  const run = { intervalNs: o.interval as bigint, durationMs: Number((o.duration as bigint) / 1_000_000n), rate: o.rate as number, keyFile, elect: o.elect === true, ...(goodNames ? { goodNames } : {}) };
  try {
    const good = members.filter((m) => (o.goodNames ? o.goodNames.includes(m.name) : !m.bad));
    log(`bench:faults: ${good.length} good daemons (drift ±${o.drift} ppm)${badNames.length ? `, bad: ${[...faulty].map(([n, p]) => `${n} drifting ${p} ppm`).concat([...liars].map(([n, l]) => `${n} lying by ${Number(l) / 1e6} ms`)).join(', ')}` : ''}; ${run.durationMs / 1000} s per run${keyFile ? ', with keys' : ''}`);
    const fmt = (r: RunResult): string =>
      `steady p50 ${r.precisionUs.p50.toFixed(1)} µs, p99 ${r.precisionUs.p99.toFixed(1)} µs, max ${r.precisionUs.max.toFixed(1)} µs (from round ${r.steadyFromRound ?? 'never'}); ` +
      `common rate ${r.ratePpm?.toFixed(2) ?? '-'} ppm against their mean drift ${r.meanDriftPpm.toFixed(2)} ppm (${r.rateErrorPpm?.toFixed(2) ?? '-'} ppm apart); ` +
      `worst samples ${r.worst.map((w) => `${w.spreadUs.toFixed(1)} µs (round ${w.round})`).join(', ')}`;
    log('baseline, the good members alone:');
    const baseline = await runGroup(good, run, log);
    log(`  good clocks: ${fmt(baseline)}`);
    let withBad: RunResult | null = null;
    if (masterDrift !== undefined) {
      log(`the same with the master n0 drifting ${masterDrift} ppm (${o.elect ? 'elected' : 'pinned'}):`);
      withBad = await runGroup([{ ...members[0]!, driftPpm: masterDrift, bad: true }, ...members.slice(1)], run, log);
      log(`  good clocks: ${fmt(withBad)}`);
      log(`  n0: ${withBad.flagged.n0 ? `named faulty (${withBad.flagged.n0.reason}) in round ${withBad.flagged.n0.round}` : 'never named faulty by another master'}`);
      const f = withBad.failover;
      if (f) log(`  step-down: new master ${f.newMaster ?? 'none'} after ${f.intervalsToNewMaster?.toFixed(2) ?? '-'} intervals, ${f.claimsAfter} CLAIM(s) sent (${f.claimsByN0After} by n0); n0's log: ${f.reasonLine ?? '(no own-clock-faulty line)'}`);
      log(`  p99 with the runaway master / without: ${(withBad.precisionUs.p99 / baseline.precisionUs.p99).toFixed(2)}`);
    } else if (badNames.length) {
      log('the same with the bad members:');
      withBad = await runGroup(members, run, log);
      log(`  good clocks: ${fmt(withBad)}`);
      for (const n of badNames) log(`  ${n}: ${withBad.flagged[n] ? `named faulty (${withBad.flagged[n]!.reason}) in round ${withBad.flagged[n]!.round}` : 'never named faulty'}`);
      const wrongly = Object.keys(withBad.flagged).filter((n) => !badNames.includes(n));
      if (wrongly.length) log(`  good members named faulty: ${wrongly.join(', ')}`);
      log(`  p99 with bad members / without: ${(withBad.precisionUs.p99 / baseline.precisionUs.p99).toFixed(2)}`);
    }
    if (o.json) {
      const machine = { cpus: cpus().length, loadavg1: Number(loadavg()[0]!.toFixed(2)), node: process.version };
      process.stdout.write(JSON.stringify({ nodes: o.nodes, driftPpm: o.drift, masterDriftPpm: masterDrift ?? null, elect: o.elect === true, faulty: Object.fromEntries(faulty), liars: Object.fromEntries([...liars].map(([n, l]) => [n, Number(l)])), baseline, withBad, machine }) + '\n');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:faults: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
