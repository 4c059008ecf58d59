/**
 * A berkeleyd group on a LAN of network namespaces (helpers/netns.ts), for
 * the failover and security tests: one daemon per host (Cluster with `wrap`
 * into the host's namespace, control sockets on the shared filesystem), a
 * timeline that samples the status of every daemon every ~75 ms, and the
 * figures read from it: masters per sample, the ground-truth spread (every
 * process shares CLOCK_MONOTONIC, also across namespaces: lib/daemon/truth),
 * runs of two masters, clock jumps.
 *
 * Cleanup: withLanGroup stops every daemon and destroys the LAN whether the
 * test passes, fails or times out (the LAN's own exit handler and watchdog
 * cover a test process that dies).
 */
import type { ExecutionContext } from 'ava';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster } from '../../lib/daemon/cluster.js';
import type { StatusJson } from '../../lib/daemon/status.js';
import { groupTimesAt, readingOf, spreadNs } from '../../lib/daemon/truth.js';
import { randomGroup, sleep } from './group.js';
import { withLan, type Host, type Lan } from './netns.js';

export const MS = 1_000_000n;

export interface DaemonSpec {
  name: string;
  host: Host;
  /** Arguments after the common ones (group, port, interface, interval). */
  args?: string[];
}

/** One status poll of every daemon: atNs is the latest monotonic instant among the answers. */
export interface Sample {
  atNs: bigint;
  byName: Map<string, StatusJson | null>;
}

/** process.env without BERKELEYD_* and DEBUG*, so that the caller's shell cannot change what a test runs. */
function neutralEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('BERKELEYD_') || k.startsWith('DEBUG')) env[k] = undefined;
  return { ...env, ...extra };
}

export class LanGroup {
  readonly cluster: Cluster;
  readonly group: string;
  readonly port = randomInt(20_000, 60_000);
  readonly intervalNs: bigint;
  /** Monotonic instant at which each daemon last answered its control socket after (re)starting. */
  readonly readyNs = new Map<string, bigint>();
  readonly timeline: Timeline;

  constructor(
    readonly lan: Lan,
    readonly intervalMs: number,
    env: NodeJS.ProcessEnv = {},
    /** Default: a random IPv4 group, or with IPv6 hosts a random link-local one (ff02::b3d1:xxxx). */
    group?: string,
  ) {
    this.group = group ?? (lan.hosts[0]?.linkLocal ? `ff02::b3d1:${randomInt(1, 0xffff).toString(16)}` : randomGroup());
    this.intervalNs = BigInt(intervalMs) * MS;
    this.cluster = new Cluster(neutralEnv(env));
    this.timeline = new Timeline(this);
  }

  get names(): string[] {
    return this.cluster.members.map((m) => m.name);
  }

  /** `--group G --port P --interface eth0 --interval Nms`. */
  get commonArgs(): string[] {
    return ['--group', this.group, '--port', String(this.port), '--interface', 'eth0', '--interval', `${this.intervalMs}ms`];
  }

  /** Starts the daemons concurrently; resolves when every one answers its control socket. */
  async start(specs: DaemonSpec[]): Promise<void> {
    await Promise.all(
      specs.map(async (s) => {
        await this.cluster.add({
          name: s.name,
          args: [...this.commonArgs, ...(s.args ?? [])],
          wrap: (cmd, args) => ['ip', ['netns', 'exec', s.host.netns, cmd, ...args]],
        });
        this.readyNs.set(s.name, process.hrtime.bigint());
      }),
    );
  }

  /** Starts a daemon again after kill(), optionally with other arguments after the common ones. */
  async restart(name: string, args?: string[]): Promise<void> {
    const m = this.cluster.member(name);
    if (args) m.spec = { ...m.spec, args: [...this.commonArgs, ...args] };
    await this.cluster.restart(name);
    this.readyNs.set(name, process.hrtime.bigint());
  }

  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    return this.cluster.kill(name, signal);
  }

  status(name: string): Promise<StatusJson> {
    return this.cluster.status(name);
  }

  /** Every daemon's status by name (null: not running or not answering). */
  async statuses(): Promise<Map<string, StatusJson | null>> {
    const all = await this.cluster.statusAll();
    return new Map(this.cluster.members.map((m, i) => [m.name, all[i] ?? null]));
  }

  stderr(name: string): string {
    return this.cluster.member(name).stderr;
  }

  async stop(): Promise<void> {
    await this.timeline.stop();
    for (const m of this.cluster.members) m.proc?.stdin?.end();
    await this.cluster.stop();
  }
}

/**
 * Runs fn with a fresh LAN of `hosts` hosts and a LanGroup on it (the
 * timeline already sampling). Afterwards, pass or fail, stops the daemons
 * and destroys the LAN; on failure logs every daemon's stderr and the
 * timeline's changes of role.
 */
export async function withLanGroup<T>(
  t: ExecutionContext,
  opts: { hosts: number; intervalMs: number; env?: NodeJS.ProcessEnv; family?: 4 | 6; group?: string },
  fn: (g: LanGroup, lan: Lan) => Promise<T>,
): Promise<T> {
  return withLan(t, { hosts: opts.hosts, family: opts.family }, async (lan) => {
    const g = new LanGroup(lan, opts.intervalMs, opts.env, opts.group);
    // Registered after withLan's: ava runs teardowns in reverse, so the daemons stop before the LAN goes.
    t.teardown(() => g.stop());
    g.timeline.start();
    let ok = false;
    try {
      const r = await fn(g, lan);
      ok = true;
      return r;
    } finally {
      await g.timeline.stop();
      if (!ok || !t.passed) {
        t.log(`group ${g.group}:${g.port}, interval ${g.intervalMs} ms; timeline (role changes):\n${g.timeline.describe()}`);
        for (const m of g.cluster.members) t.log(`--- ${m.name} (exit ${m.exitCode}) stderr:\n${m.stderr.trim().slice(-4000)}`);
      }
      await g.stop();
    }
  });
}

// ------------------------------------------------------------ the timeline

export class Timeline {
  readonly samples: Sample[] = [];
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly g: LanGroup,
    readonly everyMs = 75,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      const byName = await this.g.statuses();
      let atNs = 0n;
      for (const s of byName.values()) if (s && BigInt(s.monotonicNs) > atNs) atNs = BigInt(s.monotonicNs);
      if (atNs === 0n) atNs = process.hrtime.bigint();
      this.samples.push({ atNs, byName });
      await sleep(Math.max(5, this.everyMs - (Date.now() - started)));
    }
  }

  /** Samples taken at or after monotonic instant fromNs (and before toNs). */
  between(fromNs: bigint, toNs = 1n << 62n): Sample[] {
    return this.samples.filter((s) => s.atNs >= fromNs && s.atNs < toNs);
  }

  /**
   * The first sample taken at or after monotonic instant sinceNs (default:
   * now) for which probe gives a value; throws after timeoutMs with the last
   * sample described.
   */
  async waitFor<T>(what: string, probe: (s: Sample) => T | undefined, timeoutMs: number, sinceNs = process.hrtime.bigint()): Promise<{ sample: Sample; value: T }> {
    const deadline = Date.now() + timeoutMs;
    let i = 0;
    for (;;) {
      for (; i < this.samples.length; i++) {
        const s = this.samples[i]!;
        if (s.atNs < sinceNs) continue;
        const value = probe(s);
        if (value !== undefined) return { sample: s, value };
      }
      if (Date.now() > deadline) {
        const last = this.samples[this.samples.length - 1];
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last sample: ${last ? describeSample(last) : 'none'}`);
      }
      await sleep(15);
    }
  }

  /** One line per sample whose roles differ from the previous one's, times relative to the first sample. */
  describe(): string {
    const first = this.samples[0]?.atNs ?? 0n;
    const lines: string[] = [];
    let prev = '';
    for (const s of this.samples) {
      const roles = describeSample(s, false);
      if (roles === prev) continue;
      prev = roles;
      const spread = spreadIn(s, [...s.byName.keys()]);
      lines.push(`+${(Number(s.atNs - first) / 1e6).toFixed(0).padStart(6)} ms  ${describeSample(s)}${spread === null ? '' : `  spread ${formatNs(spread)}`}`);
    }
    return lines.join('\n');
  }
}

// ------------------------------------------------------------ figures

/** The statuses of `names` in s that answered. */
export function liveIn(s: Sample, names: readonly string[]): StatusJson[] {
  return names.map((n) => s.byName.get(n)).filter((x): x is StatusJson => x !== null && x !== undefined);
}

/** Names whose role is master in s (among `names`, default all). */
export function mastersIn(s: Sample, names: readonly string[] = [...s.byName.keys()]): string[] {
  return liveIn(s, names)
    .filter((x) => x.role === 'master')
    .map((x) => x.nodeId);
}

/**
 * The one master of `names` in s if it is settled: every one of them
 * answered, exactly one is master, and every other follows it. Else undefined.
 */
export function settledMaster(s: Sample, names: readonly string[]): string | undefined {
  const live = liveIn(s, names);
  if (live.length !== names.length) return undefined;
  const masters = live.filter((x) => x.role === 'master');
  if (masters.length !== 1) return undefined;
  const m = masters[0]!.nodeId;
  return live.every((x) => x.masterId === m) ? m : undefined;
}

/** Ground-truth spread of the clocks of `names` in s; null unless every one answered. */
export function spreadIn(s: Sample, names: readonly string[]): bigint | null {
  const live = liveIn(s, names);
  if (live.length !== names.length || live.length === 0) return null;
  return spreadNs(live.map(readingOf));
}

/** A run of samples with two or more masters; toNs is the first sample after it with fewer (or the last sample, ongoing). */
export interface Overlap {
  fromNs: bigint;
  toNs: bigint;
  masters: string[];
  ongoing: boolean;
}

/** Runs of two or more simultaneous masters among `names` over samples. */
export function masterOverlaps(samples: readonly Sample[], names?: readonly string[]): Overlap[] {
  const out: Overlap[] = [];
  let cur: Overlap | null = null;
  for (const s of samples) {
    const m = mastersIn(s, names);
    if (m.length >= 2) {
      if (!cur) cur = { fromNs: s.atNs, toNs: s.atNs, masters: [], ongoing: true };
      cur.masters = [...new Set([...cur.masters, ...m])];
      cur.toNs = s.atNs;
    } else if (cur) {
      cur.toNs = s.atNs;
      cur.ongoing = false;
      out.push(cur);
      cur = null;
    }
  }
  if (cur) out.push(cur);
  return out;
}

export interface Jumps {
  /** Largest change, between consecutive samples, of a clock's deviation from the mean of `names`. */
  maxRelativeNs: bigint;
  /** Largest change of a clock against the monotonic clock beyond its rate (drift plus frequency). */
  maxSelfNs: bigint;
  /** Largest spread among `names`. */
  maxSpreadNs: bigint;
  samples: number;
  worst: string;
}

/** Clock jumps among `names` over samples in which every one of them answered. */
export function clockJumps(samples: readonly Sample[], names: readonly string[]): Jumps {
  const abs = (x: bigint): bigint => (x < 0n ? -x : x);
  let prev: { dev: bigint[]; st: StatusJson[] } | null = null;
  const r: Jumps = { maxRelativeNs: 0n, maxSelfNs: 0n, maxSpreadNs: 0n, samples: 0, worst: 'none' };
  for (const s of samples) {
    const st = liveIn(s, names);
    if (st.length !== names.length) {
      prev = null;
      continue;
    }
    r.samples += 1;
    const readings = st.map(readingOf);
    const at = readings.reduce((m, x) => (x.monotonicNs > m ? x.monotonicNs : m), 0n);
    const times = groupTimesAt(readings, at);
    const mean = times.reduce((a, b) => a + b, 0n) / BigInt(times.length);
    const dev = times.map((x) => x - mean);
    const spread = spreadNs(readings);
    if (spread > r.maxSpreadNs) r.maxSpreadNs = spread;
    if (prev) {
      for (let i = 0; i < names.length; i++) {
        const rel = abs(dev[i]! - prev.dev[i]!);
        if (rel > r.maxRelativeNs) {
          r.maxRelativeNs = rel;
          r.worst = `${names[i]} moved ${formatNs(dev[i]! - prev.dev[i]!)} against the mean`;
        }
        const a = prev.st[i]!;
        const b = st[i]!;
        const dMono = BigInt(b.monotonicNs) - BigInt(a.monotonicNs);
        const expected = BigInt(Math.round((Number(dMono) * readingOf(a).rateErrorPpm) / 1e6));
        const self = abs(BigInt(b.groupTimeNs) - BigInt(b.monotonicNs) - (BigInt(a.groupTimeNs) - BigInt(a.monotonicNs)) - expected);
        if (self > r.maxSelfNs) r.maxSelfNs = self;
      }
    }
    prev = { dev, st };
  }
  return r;
}

/** "h0:M e2 r14  h1:P→h0  h2:C  h3:-" (M master, P peer, C candidate, - not answering). */
export function describeSample(s: Sample, withRounds = true): string {
  return [...s.byName.entries()]
    .map(([n, x]) => {
      if (!x) return `${n}:-`;
      if (x.role === 'master') return `${n}:M${withRounds ? ` e${x.epoch} r${x.round}` : ''}`;
      if (x.role === 'candidate') return `${n}:C`;
      return `${n}:P→${x.masterId ?? '?'}`;
    })
    .join('  ');
}

export function formatNs(ns: bigint): string {
  const a = ns < 0n ? -ns : ns;
  if (a < 10_000n) return `${ns} ns`;
  if (a < 10_000_000n) return `${(Number(ns) / 1e3).toFixed(1)} µs`;
  return `${(Number(ns) / 1e6).toFixed(3)} ms`;
}

/** Sum of the values of a counter record. */
export function total(r: Record<string, number> | undefined): number {
  return Object.values(r ?? {}).reduce((a, b) => a + b, 0);
}

/** Per-key difference after - before of counter records. */
export function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux architecture node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) of process pid so far, ms, from /proc/<pid>/stat. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm) " comes field 3 (state); utime and stime are fields 14 and 15, i.e. indexes 11 and 12 here.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}
