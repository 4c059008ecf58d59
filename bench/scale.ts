/**
 * npm run bench:scale: what one master costs per member, and where it
 * stops keeping up.
 *
 * For each size in --members: a fresh loopback group (random address, free
 * port), the load generator in its own process (bench/scale-worker.ts: the
 * emulated peers, see scale-gen.ts) joined first, then one real
 * `berkeleyd run --master` (virtual clock). At every SYNC the generator
 * hears, the driver reads the master's CPU (/proc/PID/stat, all threads),
 * the machine's CPU (/proc/stat) and the kernel's drops on the master's UDP
 * sockets (/proc/net/udp). The fast-start rounds (fastStartDivisor > 1) are
 * reported on their own; the steady state is the --rounds rounds after them.
 * At the end: the master's RSS and its status counters (one status query,
 * after the last CPU sample, so that it costs the window nothing). Ends by
 * itself; leaves no process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { int, positiveDuration, duration } from '../bin/parse.js';
import { fastStartDivisor } from '../lib/core/master.js';
import { Cluster } from '../lib/daemon/cluster.js';
import { query } from '../lib/daemon/control.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { freeUdpPort } from '../lib/net/transport.js';
import { machineTicks, procStat, runqueueWaitS, udpDrops, udpSockets } from './proc.js';
import { failoverLine, measureFailover, type HeardSync } from './scale-failover.js';
import { RealPeers } from './scale-real.js';
import { formatResults, windowOf, type SizeResult, type SyncSample } from './scale-report.js';
import type { FromGen, GenConfig, GenRound, ToGen } from './scale-types.js';

const WORKER_JS = fileURLToPath(new URL('./scale-worker.js', import.meta.url));
const MAX_MEMBERS_FLAG = 20_000;
/** --failover: rounds of the new master watched after the takeover. */
const WATCH_ROUNDS = 5;

function memberList(text: string): number[] {
  const sizes = text.split(',').map((t) => int(0, MAX_MEMBERS_FLAG, '--members')(t));
  if (sizes.length === 0) throw new Error('--members: no size');
  return sizes;
}

interface Opts {
  members: number[];
  rounds: number;
  interval: bigint;
  collectTimeout?: bigint;
  probes: number;
  sockets: number;
  offsetSpread: bigint;
  pause: bigint;
  real: number;
  rate: number;
  failover?: boolean;
  json?: boolean;
}

const log = (s: string): void => void process.stderr.write(s + '\n');

/** SIGINT or SIGTERM: the size running ends at once (its processes stopped), and no other starts. */
const interrupted = new AbortController();

/** Rounds of the fast start at this collection window (see fastStartDivisor). */
function fastStartRounds(collectNs: bigint): number {
  let r = 1;
  while (fastStartDivisor(r, collectNs) > 1n) r += 1;
  return r - 1;
}

async function runSize(members: number, o: Opts): Promise<SizeResult> {
  const intervalMs = Number(o.interval / 1_000_000n);
  const collectNs = o.collectTimeout ?? o.interval / 2n;
  const fast = fastStartRounds(collectNs);
  const lastSync = fast + o.rounds + 1;
  const port = await freeUdpPort();
  const group = `239.255.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  // Bounded: the fast start, the steady rounds, and slack for a master that falls behind.
  const budgetMs = fast * intervalMs + (o.rounds + 1) * intervalMs * 2 + 30_000;
  const failoverMs = o.failover ? (10 + WATCH_ROUNDS * 2) * intervalMs + 15_000 : 0;
  const config: GenConfig = {
    group, port, interfaceAddress: '127.0.0.1', domain: 0, members, namePrefix: 'gen-', probes: o.probes, sockets: o.sockets,
    maxDelayMs: 50, offsetSpreadNs: Number(o.offsetSpread), maxRunMs: budgetMs + failoverMs + 10_000,
  };
  const result: SizeResult = {
    members, intervalMs, steady: null, fastStart: null,
    master: { rssMb: null, hwmMb: null, kernelDrops: null, members: null, dropped: {}, rejected: {} },
    generator: { sockets: o.sockets, directSend: false, cpuS: 0, rssMb: 0, kernelDrops: null, foreign: 0, sendErrors: 0 },
    machine: { cpus: cpus().length, loadavgStart: loadavg(), loadavgEnd: [] },
    rounds: [],
  };
  const records: GenRound[] = [];
  const samples = new Map<number, SyncSample>();
  const syncs: HeardSync[] = [];
  const cluster = new Cluster();
  const child: ChildProcess = fork(WORKER_JS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let masterPid: number | null = null;
  let lastRound = 0;
  let real: RealPeers | null = null;
  let doneMsg: Extract<FromGen, { ev: 'done' }> | null = null;
  let reached: () => void = () => undefined;
  const reachedP = new Promise<void>((r) => (reached = r));
  let failed: (e: Error) => void = () => undefined;
  const failedP = new Promise<never>((_, rej) => (failed = rej));
  interrupted.signal.addEventListener('abort', () => failed(new Error('interrupted')), { once: true });
  failedP.catch(() => undefined);
  const ready = new Promise<Extract<FromGen, { ev: 'ready' }>>((resolve) => {
    child.on('message', (m: FromGen) => {
      // Every SYNC heard, of every epoch (--failover looks for the new master's).
      if (m.ev === 'sync') syncs.push({ epoch: m.epoch, round: m.round, atMs: performance.now() });
      if (m.ev === 'ready') resolve(m);
      else if (m.ev === 'error') failed(new Error(m.message));
      else if (m.ev === 'round') records.push(m.round);
      else if (m.ev === 'done') doneMsg = m;
      else if (m.ev === 'sync' && !samples.has(m.round)) {
        lastRound = m.round;
        // The master may send its first SYNC before its control socket answers (cluster.add resolves).
        masterPid ??= cluster.members[0]?.proc?.pid ?? null;
        const st = masterPid ? procStat(masterPid) : null;
        samples.set(m.round, {
          round: m.round,
          atMs: performance.now(),
          masterCpuS: st?.cpuS ?? null,
          masterSysS: st?.sysS ?? null,
          masterWaitS: masterPid ? runqueueWaitS(masterPid) : null,
          machine: machineTicks(),
          masterDrops: masterPid ? udpDrops(masterPid) : null,
        });
        if (m.round >= lastSync) reached();
      }
    });
  });
  child.on('exit', (code) => failed(new Error(`the generator exited (${code})`)));
  const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    Promise.race([p, failedP, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: nothing after ${ms} ms`)), ms).unref())]);
  try {
    child.send({ cmd: 'start', config } satisfies ToGen);
    const r = await within(ready, 10_000, 'generator start');
    result.generator.directSend = r.directSend;
    const common = ['--group', group, '--port', String(port), '--interface', '127.0.0.1', '--interval', `${o.interval}ns`, '--probes', String(o.probes)];
    if (o.collectTimeout) common.push('--collect-timeout', `${o.collectTimeout}ns`);
    const m = await cluster.add({ name: 'master', args: [...common, '--master'] });
    if (o.real > 0) {
      // After the master, so that the generator's first SYNC samples find its pid (bench starts the peers first;
      // they follow a pinned master from its first SYNC either way).
      real = new RealPeers(cluster, o.real, common, o.failover ? null : 0);
      await real.start();
      real.sample(m.control, () => lastRound, o.rate, budgetMs);
    }
    masterPid = m.proc?.pid ?? null;
    log(`bench:scale: ${members} emulated members on ${group}:${port}, ${o.sockets} sockets, master pid ${masterPid}; ${fast} fast-start rounds, then ${o.rounds} steady rounds`);
    await within(reachedP, budgetMs, `waiting for round ${lastSync}`);
    const st = masterPid ? procStat(masterPid) : null;
    result.master.rssMb = st?.rssMb ?? null;
    result.master.hwmMb = st?.hwmMb ?? null;
    const socks = masterPid ? udpSockets(masterPid) : null;
    result.master.kernelDrops = socks ? Object.fromEntries(socks.map((s) => [String(s.port), s.drops])) : null;
    if (real) result.real = await real.stop(lastRound, fast);
    const status = (await query(m.control, 'status', 15_000)) as StatusJson;
    result.master.members = status.members.length;
    result.master.dropped = status.counters.dropped;
    result.master.rejected = status.counters.rejected;
    if (o.failover && real) {
      log(`bench:scale: ${members}: killing the master (SIGKILL) after round ${lastRound}`);
      result.failover = await measureFailover({
        cluster, masterName: 'master', realNames: real.names, intervalMs, watchRounds: WATCH_ROUNDS, syncs, records, killedAfterRound: lastRound, signal: interrupted.signal,
      });
      log(failoverLine(result.failover, members));
    }
  } catch (err) {
    result.error = (err as Error).message;
    log(`bench:scale: ${members}: ${result.error}`);
  } finally {
    if (child.connected) {
      child.send({ cmd: 'stop' } satisfies ToGen);
      await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    await cluster.stop();
  }
  const done = doneMsg as Extract<FromGen, { ev: 'done' }> | null;
  if (done) Object.assign(result.generator, { cpuS: done.cpuUs / 1e6, rssMb: done.rssMb, kernelDrops: done.drops, foreign: done.foreign, sendErrors: done.sendErrors });
  result.machine.loadavgEnd = loadavg();
  result.fastStart = windowOf(records, samples, 1, fast, members, result.machine.cpus);
  result.steady = windowOf(records, samples, fast + 1, o.rounds, members, result.machine.cpus);
  result.rounds = records.map((rec) => {
    const a = samples.get(rec.round)?.masterCpuS;
    const b = samples.get(rec.round + 1)?.masterCpuS;
    return { ...rec, masterCpuMs: a != null && b != null ? (b - a) * 1000 : null };
  });
  return result;
}

async function main(): Promise<void> {
  const o = new Command('bench:scale')
    .description('emulate thousands of peers over a few UDP sockets against one real master; report its cost per member and what it kept up with')
    .addOption(new Option('--members <list>', 'group sizes, comma-separated (emulated members; the master comes on top)').argParser(memberList).default([100, 1000], '100,1000'))
    .option('--rounds <n>', 'steady rounds per size, after the fast start', int(1, 1000, '--rounds'), 5)
    .addOption(new Option('--interval <duration>', "the master's round interval").argParser(positiveDuration).default(1_000_000_000n, '1s'))
    .option('--collect-timeout <duration>', "the master's collection window (default: half the interval)", positiveDuration)
    .option('--probes <n>', 'exchanges per burst after the warm-up (the master gets the same --probes)', int(1, 64, '--probes'), 12)
    .option('--sockets <n>', 'unicast sockets the emulated peers share', int(1, 64, '--sockets'), 4)
    .addOption(new Option('--offset-spread <duration>', 'synthetic offsets are uniform within ± this').argParser(duration).default(2_000n, '2us'))
    .addOption(new Option('--pause <duration>', 'between sizes, for the machine to settle').argParser(duration).default(2_000_000_000n, '2s'))
    .option('--real <n>', 'also run n real daemons as peers inside the group, and measure their precision as bench does; a size 0 (them alone) is added to --members', int(0, 64, '--real'), 0)
    .option('--rate <n>', 'with --real: ground-truth samples per second', int(1, 50, '--rate'), 5)
    .option('--failover', 'with --real (2 or more): after the steady rounds kill the master (SIGKILL); the real daemons, which may then claim, elect a new one; report the intervals to the takeover, the CLAIMs sent, and the new master\'s first rounds')
    .option('--json', 'one JSON object as the last line of standard output (per-round records included)')
    .parse(process.argv)
    .opts<Opts>();
  log(`bench:scale: ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
  if (o.failover && o.real < 2) {
    log('bench:scale: --failover needs --real 2 or more: the real daemons are the candidates');
    process.exitCode = 2;
    return;
  }
  if (o.real > 0 && !o.members.includes(0)) o.members.unshift(0);
  const results: SizeResult[] = [];
  const stop = (): void => interrupted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const [k, members] of o.members.entries()) {
    if (interrupted.signal.aborted) break;
    if (k > 0) await new Promise((r) => setTimeout(r, Number(o.pause / 1_000_000n)));
    results.push(await runSize(members, o));
  }
  for (const line of formatResults(results)) log(line);
  for (const r of results) if (r.failover) log(failoverLine(r.failover, r.members));
  if (o.json) process.stdout.write(JSON.stringify({ intervalMs: Number(o.interval / 1_000_000n), probes: o.probes, sockets: o.sockets, node: process.version, results }) + '\n');
  if (results.some((r) => r.error)) process.exitCode = interrupted.signal.aborted ? 130 : 1;
}

main().catch((err) => {
  process.stderr.write(`bench:scale: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
