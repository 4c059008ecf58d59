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
import { Node } from '../core/node.js';
import { DEFAULTS, type NodeOptions } from '../core/options.js';
import type { Action, Address, Event, Notice, TimerName } from '../core/types.js';
import { decode, encode, splitAdjust } from '../wire/codec.js';
import { MessageType, type Message } from '../wire/messages.js';
import type { Fault, RoundRecord, SimInternals, SimOptions, SimResult, TruthSample } from './options.js';
import { HonestyTally } from './honesty.js';
import { Prng } from './prng.js';
import { adjustTable, type Multicast } from './multicast.js';
import { deliveryOrder, Heap, type QueueEntry } from './queue.js';

export { SIM_DEFAULTS, type Fault, type RoundRecord, type SimInternals, type SimOptions, type SimResult, type TruthSample } from './options.js';

interface SimNode {
  name: string;
  index: number;
  address: Address;
  node: Node;
  clock: VirtualClock;
  alive: boolean;
  timers: Map<TimerName, Timer>;
  /** The receive model: busy with earlier datagrams until then, and datagrams dropped. */
  busyUntil: bigint;
  receiveDrops: number;
}

type Scheduled =
  | { kind: 'event'; node: SimNode; event: Event; serviced?: boolean }
  | { kind: 'timer'; node: SimNode; timer: TimerName; state: Timer }
  | { kind: 'sample' }
  | { kind: 'multicast'; batch: Multicast };

/**
 * A node's timer: armed or not, and when it fires (at, and the sequence
 * number of its arming). A timer has at most one entry in the queue that
 * counts (`queued`), never later than its firing: re-arming it for later
 * (a peer's probe after every reply, the election timer at every SYNC)
 * leaves the entry where it is, and when that entry comes up it is put back
 * for the real firing. The queue then holds a few timers per node, not one
 * per arming, and the order is the same: a timer fires at (at, seq).
 */
interface Timer {
  armed: boolean;
  at: bigint;
  seq: number;
  queued: Entry | null;
}

/** A queue entry of the simulation (queue.ts). */
type Entry = QueueEntry<Scheduled>;

export function runSimulation(opts: SimOptions, internals: SimInternals = {}): SimResult {
  return new Simulation(opts, internals).run();
}

class Simulation {
  private now = 0n;
  private seq = 0;
  private readonly queue = new Heap<Scheduled>();
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
  private readonly honesty = new HonestyTally();
  /** The node that is master now (the group's time is its clock with its own adjustment applied), or null. */
  private master: SimNode | null = null;

  /** Node ids by index (for the ADJUST parts each reads). */
  private readonly ids: bigint[] = [];
  private readonly keepEvents: boolean;
  private tables = 0;

  constructor(
    private readonly o: SimOptions,
    private readonly internals: SimInternals = {},
  ) {
    this.keepEvents = internals.keepEvents ?? true;
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
      const sn: SimNode = { name, index: i, address, node, clock, alive: true, timers: new Map(), busyUntil: 0n, receiveDrops: 0 };
      this.ids.push(node.id);
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
    // A multicast's next delivery stays out of the queue while it comes before everything in it.
    let carried: Entry | null = null;
    for (;;) {
      let entry: Entry;
      if (carried !== null && (this.queue.size === 0 || Heap.less(carried, this.queue.peek()!))) {
        entry = carried;
      } else {
        if (carried !== null) this.queue.push(carried);
        if (this.queue.size === 0) break;
        entry = this.queue.pop()!;
      }
      carried = null;
      const { at, item } = entry;
      if (at > endNs || (stopAtNs !== null && at > stopAtNs)) break;
      this.now = at;
      if (item.kind === 'multicast') carried = this.deliverNext(entry, item.batch);
      else this.dispatch(entry, item);
      if (stopAtNs === null && this.rounds.length >= o.rounds) stopAtNs = this.now + o.intervalNs - 1n;
    }
    return {
      options: o,
      rounds: this.rounds,
      samples: this.samples,
      events: this.events,
      flags: this.flags,
      statuses: this.nodes.map((n) => n.node.status()),
      receiveDrops: Object.fromEntries(this.nodes.filter((n) => n.receiveDrops > 0).map((n) => [n.name, n.receiveDrops])),
      startOffsetsNs: this.startOffsetsNs,
      driftsPpm: this.driftsPpm,
      bound: this.honesty.result(),
      wallMs: Date.now() - started,
    };
  }

  private schedule(at: bigint, item: Scheduled): void {
    this.queue.push({ at, t: Number(at), seq: this.seq++, item });
  }

  /** The earliest delivery of a multicast not yet made; returns the entry set to the next one, if any. */
  private deliverNext(entry: Entry, b: Multicast): Entry | null {
    const k = b.order[b.next++]!;
    const i = b.receivers[k]!;
    const t = b.table;
    if (t === null || this.internals.deliverAll) {
      this.deliverDatagram(i, b);
    } else {
      // Only the part whose range holds the node's id: the daemon drops the others unread ('other-part'),
      // and the engine would return at once from them.
      if (t.partOf[i] === b.part) this.deliverDatagram(i, b);
    }
    if (b.next >= b.order.length) return null;
    const j = b.order[b.next]!;
    entry.at = b.sentAtNs + BigInt(b.delays[j]!);
    entry.t = Number(entry.at);
    entry.seq = b.seq0 + j;
    return entry;
  }

  private deliverDatagram(i: number, b: Multicast): void {
    const r = this.nodes[i]!;
    if (r.alive) this.deliver(r, { type: 'datagram', msg: b.msg, from: b.from, rxMonoNs: this.now });
  }

  private dispatch(entry: Entry, item: Exclude<Scheduled, { kind: 'multicast' }>): void {
    switch (item.kind) {
      case 'sample':
        return this.sample();
      case 'timer': {
        const s = item.state;
        if (s.queued !== entry) return; // armed again for earlier: another entry counts
        s.queued = null;
        if (!s.armed) return;
        if (s.seq !== entry.seq) {
          // Armed again for later since this entry was queued.
          entry.at = s.at;
          entry.t = Number(s.at);
          entry.seq = s.seq;
          s.queued = entry;
          return this.queue.push(entry);
        }
        s.armed = false;
        if (!item.node.alive) return;
        return this.deliver(item.node, { type: 'timer', timer: item.timer, monoNs: this.now });
      }
      case 'event': {
        const n = item.node;
        if (!n.alive) return;
        const cost = this.o.receiveCostNs ?? 0n;
        if (cost > 0n && item.event.type === 'datagram' && !item.serviced) {
          // Its turn comes when the node is done with the datagrams before it; past the queue's length, the kernel drops it.
          const start = n.busyUntil > this.now ? n.busyUntil : this.now;
          if (start - item.event.rxMonoNs > (this.o.receiveQueueNs ?? 35_000_000n)) {
            n.receiveDrops += 1;
            return;
          }
          n.busyUntil = start + cost;
          if (start > this.now) return this.schedule(start, { ...item, serviced: true });
        }
        return this.deliver(n, item.event);
      }
    }
  }

  private deliver(n: SimNode, event: Event): void {
    const actions = n.node.handle(event);
    this.carryOut(n, actions);
  }

  private carryOut(n: SimNode, actions: Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          this.send(n, a.to, a.msg);
          break;
        case 'arm': {
          let s = n.timers.get(a.timer);
          if (s === undefined) {
            s = { armed: false, at: 0n, seq: 0, queued: null };
            n.timers.set(a.timer, s);
          }
          s.armed = true;
          s.at = this.now + a.afterNs;
          s.seq = this.seq++;
          // An entry already queued for no later stays, and is put back when it comes up; else a new one counts.
          if (s.queued === null || s.queued.at > s.at) {
            s.queued = { at: s.at, t: Number(s.at), seq: s.seq, item: { kind: 'timer', node: n, timer: a.timer, state: s } };
            this.queue.push(s.queued);
          }
          break;
        }
        case 'disarm':
          const s = n.timers.get(a.timer);
          if (s !== undefined) s.armed = false;
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
    if (this.keepEvents) this.events.push({ atNs: this.now, node: n.name, notice });
    if (notice.kind === 'role') this.master = notice.role === 'master' ? n : this.master === n ? null : this.master;
    // The table that names a member comes with this round's 'round' notice, right after.
    if (notice.kind === 'member-faulty') this.flags.push({ node: notice.name, reason: notice.reason, round: this.rounds.length + 1, atNs: this.now });
    // A master names its own clock (runaway.ts): listed like a member it names.
    if (notice.kind === 'own-clock') this.flags.push({ node: n.name, reason: notice.fault, round: this.rounds.length + 1, atNs: this.now });
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
      // What the master serves: its clock, or the group's time in place of its faulty clock.
      groupTimeNs: (n.node.servedClock()?.(this.now) ?? n.clock.now()) + notice.averageNs,
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
      const n = this.nodes.find((m) => m.name === f.node);
      if (n) {
        n.clock.disturb(f.ns);
      }
    }
    if (o.crashMasterAtRound !== null && !this.crashed && done + 1 >= o.crashMasterAtRound) {
      const master = this.nodes.find((n) => n.alive && n.node.status().role === 'master');
      if (master) {
        master.alive = false;
        this.crashed = true;
        if (this.keepEvents) this.events.push({ atNs: this.now, node: master.name, notice: { kind: 'role', role: 'peer', epoch: 0, masterName: null, why: 'crashed (simulated)' } });
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
    const table = msg.type === MessageType.Adjust && to === 'group' ? adjustTable(this.tables++, parts, this.ids) : null;
    const toMaster = msg.type === MessageType.TimeRequest || msg.type === MessageType.Report;
    const base = Number(this.o.delayNs) + (toMaster ? 1 : -1) * Number(this.o.asymmetryNs) / 2;
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p]!;
      const decoded = decode(encode(part));
      if (!decoded.ok) throw new Error(`simulator: own datagram failed to decode: ${decoded.reason}`);
      if (to !== 'group') {
        const r = this.byAddress.get(to.address);
        if (r === undefined) continue;
        const delay = this.delay(from, r, base);
        if (delay === null) continue;
        const at = this.now + BigInt(delay);
        this.schedule(at, { kind: 'event', node: r, event: { type: 'datagram', msg: decoded.msg, from: from.address, rxMonoNs: at } });
        continue;
      }
      // Every receiver draws its loss and jitter in node order, as one event each would.
      const receivers: number[] = [];
      const delays: number[] = [];
      for (const r of this.nodes) {
        if (r === from) continue;
        const delay = this.delay(from, r, base);
        if (delay === null) continue;
        receivers.push(r.index);
        delays.push(delay);
      }
      if (receivers.length === 0) continue;
      const seq0 = this.seq;
      this.seq += receivers.length;
      const order = deliveryOrder(delays);
      const first = order[0]!;
      const batch: Multicast = { msg: decoded.msg, table, part: p, from: from.address, sentAtNs: this.now, receivers, delays, seq0, order, next: 0 };
      const at = this.now + BigInt(delays[first]!);
      this.queue.push({ at, t: Number(at), seq: seq0 + first, item: { kind: 'multicast', batch } });
    }
  }

  /** The one-way delay (ns, an integer) of a datagram from one node to another, or null if it is lost. */
  private delay(from: SimNode, r: SimNode, base: number): number | null {
    if (!r.alive || this.partitioned(from, r)) return null;
    if (this.o.loss > 0 && this.net.random() < this.o.loss) return null;
    const jitter = this.o.jitterNs > 0n ? this.net.exponential(Number(this.o.jitterNs)) : 0;
    return Math.max(0, Math.round(base + jitter));
  }

  /** Ground truth: the largest disagreement between any two live group clocks, now; the same for the good ones; their mean. */
  private sample(): void {
    const spread = (clocks: bigint[]): bigint => (clocks.length ? clocks.reduce((a, b) => (b > a ? b : a)) - clocks.reduce((a, b) => (b < a ? b : a)) : 0n);
    // One reading per clock (a second now() at the same instant reads the same).
    const all: bigint[] = [];
    const good: bigint[] = [];
    for (const n of this.nodes) {
      if (!n.alive) continue;
      const g = n.clock.now();
      all.push(g);
      if (!this.faultsOf.has(n.name)) good.push(g);
    }
    const spreadNs = spread(all);
    const goodMeanOffsetNs = good.length ? good.reduce((a, g) => a + Number(g - this.now), 0) / good.length : 0;
    this.samples.push({ label: this.rounds.length, atNs: this.now, spreadNs, goodSpreadNs: spread(good), goodMeanOffsetNs });
    const last = this.rounds[this.rounds.length - 1];
    if (last) last.spreadAfterNs = spreadNs;
    // Is every node's error bound honest (honesty.ts)?
    // A master whose own clock is named faulty serves the group's time from a line fitted to the good clocks (runaway.ts): that line is it.
    const m = this.master?.alive ? this.master : null;
    const served = m?.node.servedClock() ?? null;
    const groupNs = m === null ? null : served ? served(this.now) : m.clock.now() + m.clock.pendingNs();
    const live = this.nodes.filter((n) => n.alive).map((n) => ({ name: n.name, clockNs: n.clock.now(), bound: n.node.errorBound(this.now), faulty: this.faultsOf.has(n.name) }));
    this.honesty.sample(groupNs, live);
    this.internals.onSample?.(this.now, groupNs, live);
  }
}
