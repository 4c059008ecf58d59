/**
 * A deterministic simulator: N nodes running the real engine (lib/core) with
 * simulated clocks (lib/clock) over a simulated network, in virtual time.
 *
 * Virtual time is the simulation's true time and every node's monotonic
 * clock; each node's oscillator adds its own starting offset and drift. The
 * ground truth is exact: all group clocks are read at one virtual instant.
 *
 * Network model, per datagram and per receiver:
 *   one-way delay = delay ± asymmetry/2 + exponential jitter (mean `jitter`)
 * where +asymmetry/2 applies to datagrams towards the master (TIME_REQUEST,
 * REPORT) and -asymmetry/2 to the rest; a datagram is lost with probability
 * `loss`; partitions drop everything between their sides while they last.
 * Every datagram goes through the real codec (encode, ADJUST split into
 * parts of at most 1,400 bytes, decode), so a lost part loses its entries.
 */
import { createSimulatedClock, type VirtualClock } from '../clock/index.js';
import { Node, type NodeStatus } from '../core/node.js';
import { DEFAULTS, type NodeOptions } from '../core/options.js';
import type { Action, Address, Event, Notice, RoundRow, TimerName } from '../core/types.js';
import { decode, encode, splitAdjust } from '../wire/codec.js';
import { MessageType, type Message } from '../wire/messages.js';
import { Prng } from './prng.js';

export interface SimOptions {
  nodes: number;
  rounds: number;
  intervalNs: bigint;
  collectTimeoutNs: bigint;
  /** Starting offsets of n0, n1, ... (nodes beyond the list draw one within ±offsetSpreadNs). */
  offsetsNs: bigint[];
  offsetSpreadNs: bigint;
  /** Pinned master, or null: the nodes elect one. */
  master: string | null;
  /** Each node's drift is drawn uniformly within ±driftPpm. */
  driftPpm: number;
  delayNs: bigint;
  jitterNs: bigint;
  asymmetryNs: bigint;
  /** Probability that a datagram is lost, per receiver, 0..1. */
  loss: number;
  toleranceNs: bigint;
  probes: number;
  maxSlewPpm: number;
  stepThresholdNs: bigint;
  seed: number;
  /** Crash (silently stop) the master at the start of this round, or null. */
  crashMasterAtRound: number | null;
  /** Cut nodes [0, partitionSize) off from the rest during [from, to) rounds, or null. */
  partition: { size: number; fromRound: number; toRound: number } | null;
  /** Samples of the ground truth per interval. */
  samplesPerInterval: number;
  /** Per-node faults (berkeleyd simulate --fault). */
  faults: Fault[];
}

/**
 * A fault of one node, as `--fault` spells it:
 *   n3:drift=2000   its oscillator runs 2000 ppm off (no frequency limit can follow it)
 *   n3:jump=5ms@20  its clock is stepped by 5 ms from outside when the group's 20th round starts
 *   n3:lie=3ms      every REPORT it sends says its offset is 3 ms more than measured
 *   n3:mute@10      from the group's 10th round on it sends nothing
 */
export type Fault =
  | { node: string; kind: 'drift'; ppm: number }
  | { node: string; kind: 'jump'; ns: bigint; round: number }
  | { node: string; kind: 'lie'; ns: bigint }
  | { node: string; kind: 'mute'; round: number };

export const SIM_DEFAULTS: SimOptions = {
  nodes: 4,
  rounds: 10,
  intervalNs: DEFAULTS.intervalNs,
  collectTimeoutNs: DEFAULTS.collectTimeoutNs,
  offsetsNs: [],
  offsetSpreadNs: 1_000_000_000n,
  master: 'n0',
  driftPpm: 0,
  delayNs: 100_000n,
  jitterNs: 10_000n,
  asymmetryNs: 0n,
  loss: 0,
  toleranceNs: DEFAULTS.toleranceNs,
  probes: DEFAULTS.probes,
  maxSlewPpm: 500,
  stepThresholdNs: DEFAULTS.stepThresholdNs,
  seed: 1,
  crashMasterAtRound: null,
  partition: null,
  samplesPerInterval: 20,
  faults: [],
};

interface SimNode {
  name: string;
  index: number;
  address: Address;
  node: Node;
  clock: VirtualClock;
  alive: boolean;
  /** Timer generations: arming or disarming invalidates the pending firing. */
  timers: Map<TimerName, number>;
}

type Scheduled =
  | { kind: 'event'; node: SimNode; event: Event }
  | { kind: 'timer'; node: SimNode; timer: TimerName; generation: number }
  | { kind: 'sample' };

/** What the simulator saw; the report is built from it. */
export interface RoundRecord {
  /** 1-based count of rounds completed in the group (any master). */
  index: number;
  master: string;
  epoch: number;
  round: number;
  averageNs: bigint;
  quorum: boolean;
  table: (RoundRow & { name: string })[];
  /** The synchronized time (the master's group clock plus the average) and the true (virtual) time when the round was collected. */
  groupTimeNs: bigint;
  trueTimeNs: bigint;
  /** Largest disagreement between two group clocks at the last sample before the next round completed. */
  spreadAfterNs: bigint | null;
}

/** One ground-truth sample: all live clocks, and the good ones (no fault) alone. */
export interface TruthSample {
  label: number;
  /** True (virtual) time of the sample. */
  atNs: bigint;
  spreadNs: bigint;
  /** Spread of the live clocks without a fault. */
  goodSpreadNs: bigint;
  /** Mean of (group clock − true time) over the live clocks without a fault, ns. */
  goodMeanOffsetNs: number;
}

export interface SimResult {
  options: SimOptions;
  rounds: RoundRecord[];
  /** Every ground-truth sample. */
  samples: TruthSample[];
  events: { atNs: bigint; node: string; notice: Notice }[];
  /** Members the master named faulty (reason) or recovered (null), with the group's round (1-based) of the table that did it. */
  flags: { node: string; reason: string | null; round: number; atNs: bigint }[];
  statuses: NodeStatus[];
  startOffsetsNs: bigint[];
  driftsPpm: number[];
  wallMs: number;
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

class Simulation {
  private now = 0n;
  private seq = 0;
  private readonly queue = new Heap<{ at: bigint; seq: number; item: Scheduled }>((a, b) => (a.at < b.at ? true : a.at > b.at ? false : a.seq < b.seq));
  private readonly nodes: SimNode[] = [];
  private readonly byAddress = new Map<string, SimNode>();
  private readonly net: Prng;
  private readonly rounds: RoundRecord[] = [];
  private readonly samples: TruthSample[] = [];
  private readonly faultsOf = new Map<string, Fault[]>();
  private readonly jumped = new Set<Fault>();
  private readonly events: SimResult['events'] = [];
  private readonly flags: SimResult['flags'] = [];
  private readonly startOffsetsNs: bigint[] = [];
  private readonly driftsPpm: number[] = [];
  private crashed = false;

  constructor(private readonly o: SimOptions) {
    const root = new Prng(o.seed);
    const setup = root.fork();
    this.net = root.fork();
    for (const f of o.faults) this.faultsOf.set(f.node, [...(this.faultsOf.get(f.node) ?? []), f]);
    for (let i = 0; i < o.nodes; i++) {
      const name = `n${i}`;
      const offsetNs = o.offsetsNs[i] ?? BigInt(Math.round(setup.uniform(-1, 1) * Number(o.offsetSpreadNs)));
      const drawn = o.driftPpm === 0 ? 0 : setup.uniform(-o.driftPpm, o.driftPpm);
      const driftFault = this.faultsOf.get(name)?.find((f): f is Extract<Fault, { kind: 'drift' }> => f.kind === 'drift');
      const driftPpm = driftFault ? driftFault.ppm : drawn;
      const rng = root.fork();
      const clock = createSimulatedClock({
        monotonic: () => this.now,
        originNs: 0n,
        offsetNs,
        driftPpm,
        maxSlewPpm: o.maxSlewPpm,
        stepThresholdNs: o.stepThresholdNs,
      });
      const address: Address = { address: `10.0.${i >> 8}.${i & 255}`, port: 9123 };
      const options: NodeOptions = {
        ...DEFAULTS,
        name,
        pinnedMaster: o.master === name,
        priority: o.master === null ? 100 : o.master === name ? 255 : 0,
        intervalNs: o.intervalNs,
        collectTimeoutNs: o.collectTimeoutNs,
        probes: o.probes,
        toleranceNs: o.toleranceNs,
        stepThresholdNs: o.stepThresholdNs,
        unicast: { address: '0.0.0.0', port: address.port },
      };
      const node = new Node(options, clock, { random: () => rng.random(), nonce: () => rng.nonce() });
      const sn: SimNode = { name, index: i, address, node, clock, alive: true, timers: new Map() };
      this.nodes.push(sn);
      this.byAddress.set(address.address, sn);
      this.startOffsetsNs.push(offsetNs);
      this.driftsPpm.push(driftPpm);
    }
  }

  run(): SimResult {
    const started = Date.now();
    const o = this.o;
    for (const n of this.nodes) this.schedule(0n, { kind: 'event', node: n, event: { type: 'start', monoNs: 0n } });
    const step = o.intervalNs / BigInt(o.samplesPerInterval);
    for (let t = step; t <= o.intervalNs * BigInt(o.rounds + 4); t += step) this.schedule(t, { kind: 'sample' });
    // Stop one interval after the last round, or when time runs out (elections may delay the rounds).
    const endNs = o.intervalNs * BigInt(o.rounds * 3 + 10);
    let stopAtNs: bigint | null = null;
    while (this.queue.size > 0) {
      const { at, item } = this.queue.pop()!;
      if (at > endNs || (stopAtNs !== null && at > stopAtNs)) break;
      this.now = at;
      this.dispatch(item);
      if (stopAtNs === null && this.rounds.length >= o.rounds) stopAtNs = this.now + o.intervalNs - 1n;
    }
    return {
      options: o,
      rounds: this.rounds,
      samples: this.samples,
      events: this.events,
      flags: this.flags,
      statuses: this.nodes.map((n) => n.node.status()),
      startOffsetsNs: this.startOffsetsNs,
      driftsPpm: this.driftsPpm,
      wallMs: Date.now() - started,
    };
  }

  private schedule(at: bigint, item: Scheduled): void {
    this.queue.push({ at, seq: this.seq++, item });
  }

  private dispatch(item: Scheduled): void {
    switch (item.kind) {
      case 'sample':
        return this.sample();
      case 'timer':
        if (!item.node.alive || item.node.timers.get(item.timer) !== item.generation) return;
        return this.deliver(item.node, { type: 'timer', timer: item.timer, monoNs: this.now });
      case 'event':
        if (!item.node.alive) return;
        return this.deliver(item.node, item.event);
    }
  }

  private deliver(n: SimNode, event: Event): void {
    this.carryOut(n, n.node.handle(event));
  }

  private carryOut(n: SimNode, actions: Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          this.send(n, a.to, a.msg);
          break;
        case 'arm': {
          const generation = (n.timers.get(a.timer) ?? 0) + 1;
          n.timers.set(a.timer, generation);
          this.schedule(this.now + a.afterNs, { kind: 'timer', node: n, timer: a.timer, generation });
          break;
        }
        case 'disarm':
          n.timers.set(a.timer, (n.timers.get(a.timer) ?? 0) + 1);
          break;
        case 'correct':
          n.clock.correct(a.correctionNs, a.allowStep);
          break;
        case 'frequency':
          n.clock.setFrequencyPpm(a.ppm);
          break;
        case 'notice':
          this.record(n, a.notice);
          break;
      }
    }
  }

  private record(n: SimNode, notice: Notice): void {
    this.events.push({ atNs: this.now, node: n.name, notice });
    // The table that names a member comes with this round's 'round' notice, right after.
    if (notice.kind === 'member-faulty') this.flags.push({ node: notice.name, reason: notice.reason, round: this.rounds.length + 1, atNs: this.now });
    if (notice.kind !== 'round' || this.rounds.length >= this.o.rounds) return;
    const byNode = new Map(this.nodes.map((m) => [m.node.id, m.name]));
    this.rounds.push({
      index: this.rounds.length + 1,
      master: n.name,
      epoch: notice.epoch,
      round: notice.round,
      averageNs: notice.averageNs,
      quorum: notice.quorum,
      table: notice.table.map((r) => ({ ...r, name: byNode.get(r.node) ?? r.name })),
      groupTimeNs: n.clock.now() + notice.averageNs,
      trueTimeNs: this.now,
      spreadAfterNs: null,
    });
    this.maybeFail();
  }

  /** Crashes, partitions and clock jumps are keyed to the group's completed rounds. */
  private maybeFail(): void {
    const o = this.o;
    const done = this.rounds.length;
    for (const f of o.faults) {
      if (f.kind !== 'jump' || this.jumped.has(f) || done + 1 < f.round) continue;
      this.jumped.add(f);
      this.nodes.find((n) => n.name === f.node)?.clock.disturb(f.ns);
    }
    if (o.crashMasterAtRound !== null && !this.crashed && done + 1 >= o.crashMasterAtRound) {
      const master = this.nodes.find((n) => n.alive && n.node.status().role === 'master');
      if (master) {
        master.alive = false;
        this.crashed = true;
        this.events.push({ atNs: this.now, node: master.name, notice: { kind: 'role', role: 'peer', epoch: 0, masterName: null, why: 'crashed (simulated)' } });
      }
    }
  }

  private partitioned(a: SimNode, b: SimNode): boolean {
    const p = this.o.partition;
    if (!p) return false;
    const done = this.rounds.length;
    if (done + 1 < p.fromRound || done + 1 >= p.toRound) return false;
    return a.index < p.size !== b.index < p.size;
  }

  private send(from: SimNode, to: Address | 'group', msg: Message): void {
    for (const f of this.faultsOf.get(from.name) ?? []) {
      if (f.kind === 'mute' && this.rounds.length + 1 >= f.round) return;
      if (f.kind === 'lie' && msg.type === MessageType.Report) msg = { ...msg, offsetNs: msg.offsetNs + f.ns };
    }
    const parts = msg.type === MessageType.Adjust ? splitAdjust(msg, false) : [msg];
    for (const part of parts) {
      const decoded = decode(encode(part));
      if (!decoded.ok) throw new Error(`simulator: own datagram failed to decode: ${decoded.reason}`);
      const receivers = to === 'group' ? this.nodes.filter((n) => n !== from) : [this.byAddress.get(to.address)].filter((n): n is SimNode => n !== undefined);
      for (const r of receivers) {
        if (!r.alive || this.partitioned(from, r)) continue;
        if (this.o.loss > 0 && this.net.random() < this.o.loss) continue;
        const toMaster = part.type === MessageType.TimeRequest || part.type === MessageType.Report;
        const base = Number(this.o.delayNs) + (toMaster ? 1 : -1) * Number(this.o.asymmetryNs) / 2;
        const jitter = this.o.jitterNs > 0n ? this.net.exponential(Number(this.o.jitterNs)) : 0;
        const at = this.now + BigInt(Math.max(0, Math.round(base + jitter)));
        this.schedule(at, { kind: 'event', node: r, event: { type: 'datagram', msg: decoded.msg, from: from.address, rxMonoNs: at } });
      }
    }
  }

  /** Ground truth: the largest disagreement between any two live group clocks, now; the same for the good ones; their mean. */
  private sample(): void {
    const spread = (clocks: bigint[]): bigint => (clocks.length ? clocks.reduce((a, b) => (b > a ? b : a)) - clocks.reduce((a, b) => (b < a ? b : a)) : 0n);
    const live = this.nodes.filter((n) => n.alive);
    const all = live.map((n) => n.clock.now());
    const good = live.filter((n) => !this.faultsOf.has(n.name)).map((n) => n.clock.now());
    const spreadNs = spread(all);
    const goodMeanOffsetNs = good.length ? good.reduce((a, g) => a + Number(g - this.now), 0) / good.length : 0;
    this.samples.push({ label: this.rounds.length, atNs: this.now, spreadNs, goodSpreadNs: spread(good), goodMeanOffsetNs });
    const last = this.rounds[this.rounds.length - 1];
    if (last) last.spreadAfterNs = spreadNs;
  }
}

/** A binary min-heap. */
class Heap<T> {
  private items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
