/**
 * npm run bench:ipv6: an IPv6 group beside an IPv4 group, in the same run
 * and under the same load (issue 18, "Must show").
 *
 * Two LANs of network-namespace hosts (test/helpers/netns.ts), each with
 * --hosts daemons and no --master (so that they elect): one IPv4-only on a
 * random 239.255.x.y group, one IPv6-only on a random link-local group
 * ff02::b3d1:xxxx joined on eth0. Both run at once. For each it reports
 * the precision (the largest disagreement between two clocks, ground truth
 * on the shared CLOCK_MONOTONIC, sampled every ~75 ms through the control
 * sockets) in the steady state, counted as bench.ts counts it (after the
 * fast start and from the round after which the group stays within
 * 100 µs); then --failovers times: the master is killed (SIGKILL) and the
 * figures are the intervals until a survivor is master, and until a
 * survivor follows it (the first SYNC of the new master heard), with the
 * largest clock jump; the killed daemon then comes back as a peer.
 *
 * Needs root (namespaces). Timing-sensitive: run it under the shared lock,
 *     flock /tmp/berkeleyd-bench.lock npm run bench:ipv6
 */
import { Command, Option } from 'commander';
import { cpus, loadavg } from 'node:os';
import { int, positiveDuration } from '../bin/parse.js';
import { clockJumps, LanGroup, liveIn, mastersIn, MS, settledMaster, spreadIn } from '../test/helpers/lan-group.js';
import { createLan, netnsAvailable } from '../test/helpers/netns.js';
import { precisionOf, sampleOf, type Precision } from './truth.js';

interface Failover {
  /** From the kill to the first sample with a survivor as master, and with a survivor following it, in intervals. */
  electedIntervals: number;
  followedIntervals: number;
  /** Largest jump of a survivor's clock against the others' mean around the failover, ns. */
  maxJumpNs: number;
}

interface FamilyResult {
  family: 4 | 6;
  group: string;
  hosts: number;
  convergedMs: number;
  samples: number;
  precision: Precision;
  failovers: Failover[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Small oscillator errors, as the failover test's, so that the frequency tracking has work to do. */
const DRIFT_PPM = [20, 10, -10, -20, 5, 15, -5, -15];

async function runFamily(family: 4 | 6, o: { hosts: number; intervalMs: number; durationMs: number; failovers: number }, log: (s: string) => void): Promise<FamilyResult> {
  const lan = await createLan({ hosts: o.hosts, family, prefix: `bkb${family}` });
  const g = new LanGroup(lan, o.intervalMs);
  const intervalNs = BigInt(o.intervalMs) * MS;
  const names = lan.hosts.map((h) => h.name);
  const say = (s: string): void => log(`IPv${family}: ${s}`);
  try {
    g.timeline.start();
    const t0 = process.hrtime.bigint();
    await g.start(lan.hosts.map((h, i) => ({ name: h.name, host: h, args: ['--sim-drift', String(DRIFT_PPM[i % DRIFT_PPM.length]), '--sim-offset', `${(i - 2) * 7}ms`] })));
    const c = await g.timeline.waitFor('all synced within 1 ms', (s) => {
      const m = settledMaster(s, names);
      return m && liveIn(s, names).every((x) => x.synced) && (spreadIn(s, names) ?? MS) < MS ? m : undefined;
    }, 60 * o.intervalMs, t0);
    const convergedMs = Number(c.sample.atNs - t0) / 1e6;
    say(`${g.group} on eth0: ${c.value} master, all within 1 ms after ${convergedMs.toFixed(0)} ms; sampling ${o.durationMs} ms`);
    const from = process.hrtime.bigint();
    await sleep(o.durationMs);
    const window = g.timeline.between(from).filter((s) => settledMaster(s, names) === c.value);
    const samples = window.map((s) => {
      const master = s.byName.get(c.value)!;
      const ordered = [master, ...names.filter((n) => n !== c.value).map((n) => s.byName.get(n)!)];
      return sampleOf(ordered, master.round, Number(s.atNs - from) / 1e6);
    });
    // As bench.ts counts it: after the fast start, from the round after which the group stays within 100 µs.
    const precision = precisionOf(samples, samples.at(-1)?.label ?? 0);
    say(`precision over ${samples.length} samples (steady from round ${precision.steadyFromRound}): p50 ${precision.precisionUs.p50.toFixed(1)} µs, p99 ${precision.precisionUs.p99.toFixed(1)} µs, max ${precision.precisionUs.max.toFixed(1)} µs`);

    const failovers: Failover[] = [];
    for (let k = 0; k < o.failovers; k++) {
      const before = g.timeline.samples.at(-1)!;
      const master = settledMaster(before, names) ?? mastersIn(before)[0]!;
      const survivors = names.filter((n) => n !== master);
      const killNs = process.hrtime.bigint();
      await g.kill(master, 'SIGKILL');
      const elected = await g.timeline.waitFor('a new master', (s) => (mastersIn(s, survivors).length === 1 ? mastersIn(s, survivors)[0] : undefined), 20 * o.intervalMs, killNs);
      const followed = await g.timeline.waitFor('a survivor following it', (s) => (liveIn(s, survivors).some((x) => x.role === 'peer' && x.masterId === elected.value) ? true : undefined), 20 * o.intervalMs, killNs);
      await sleep(3 * o.intervalMs);
      const jumps = clockJumps(g.timeline.between(killNs - intervalNs), survivors);
      const f: Failover = {
        electedIntervals: Number(elected.sample.atNs - killNs) / Number(intervalNs),
        followedIntervals: Number(followed.sample.atNs - killNs) / Number(intervalNs),
        maxJumpNs: Number(jumps.maxRelativeNs),
      };
      failovers.push(f);
      say(`failover ${k + 1}: killed ${master}; ${elected.value} master after ${f.electedIntervals.toFixed(2)} intervals, followed after ${f.followedIntervals.toFixed(2)}; largest jump ${(f.maxJumpNs / 1000).toFixed(1)} µs`);
      // The killed daemon returns as a peer; the next failover starts from a settled, synced group.
      const back = process.hrtime.bigint();
      await g.restart(master);
      await g.timeline.waitFor('the group whole again', (s) => (settledMaster(s, names) && liveIn(s, names).every((x) => x.synced) && (spreadIn(s, names) ?? MS) < MS ? true : undefined), 40 * o.intervalMs, back);
    }
    return { family, group: g.group, hosts: o.hosts, convergedMs, samples: samples.length, precision, failovers };
  } finally {
    await g.stop();
    await lan.destroy();
  }
}

const TIMELINE_MS = 75;

async function main(): Promise<void> {
  const o = new Command('bench:ipv6')
    .description('an IPv6 group beside an IPv4 group of network-namespace hosts in the same run: precision and failover')
    .option('--hosts <n>', 'daemons (hosts) in each group', int(2, 8, 'hosts'), 5)
    .addOption(new Option('--interval <duration>', 'round interval').argParser(positiveDuration).default(1_000_000_000n, '1s'))
    .addOption(new Option('--duration <duration>', 'how long to sample the converged groups').argParser(positiveDuration).default(30_000_000_000n, '30s'))
    .option('--failovers <n>', 'masters killed in each group, one after another', int(0, 10, 'failovers'), 3)
    .option('--json', 'one JSON object as the last line of standard output')
    .parse(process.argv)
    .opts();
  const avail = netnsAvailable();
  if (!avail.ok) {
    process.stderr.write(`bench:ipv6: ${avail.why}\n`);
    process.exitCode = 2;
    return;
  }
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const loadStart = loadavg().map((x) => Number(x.toFixed(2)));
  const params = { hosts: o.hosts, intervalMs: Number(o.interval / 1_000_000n), durationMs: Number(o.duration / 1_000_000n), failovers: o.failovers };
  log(`bench:ipv6: ${params.hosts} hosts per group, interval ${params.intervalMs} ms, sampling ${params.durationMs} ms every ~${TIMELINE_MS} ms, ${params.failovers} failovers; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${loadStart.join(' ')}`);
  const [v4, v6] = await Promise.all([runFamily(4, params, log), runFamily(6, params, log)]);
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgStart: loadStart, loadavgEnd: loadavg().map((x) => Number(x.toFixed(2))), node: process.version };
  for (const r of [v4!, v6!]) {
    const f = r.failovers;
    const avg = (xs: number[]): string => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) : 'n/a');
    log(`IPv${r.family} ${r.group}: precision p50 ${r.precision.precisionUs.p50.toFixed(1)} µs, p99 ${r.precision.precisionUs.p99.toFixed(1)} µs (${r.samples} samples); failover: new master after ${f.map((x) => x.electedIntervals.toFixed(2)).join(', ')} intervals (mean ${avg(f.map((x) => x.electedIntervals))}), its first SYNC followed after ${f.map((x) => x.followedIntervals.toFixed(2)).join(', ')} (mean ${avg(f.map((x) => x.followedIntervals))})`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ params, machine, results: [v4, v6] })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ipv6: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
