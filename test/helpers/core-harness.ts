/**
 * The pure engine driven by hand: fake monotonic time, nodes with simulated
 * clocks, a master seen from outside, and helpers that read the actions a
 * node returns. Shared by the engine's tests (core-node, scale).
 */
import { createSimulatedClock, type VirtualClock } from '../../lib/clock/index.js';
import { Node } from '../../lib/core/node.js';
import { DEFAULTS, type NodeOptions } from '../../lib/core/options.js';
import type { Action, Address, Notice, TimerName } from '../../lib/core/types.js';
import { Prng } from '../../lib/sim/prng.js';
import { nodeIdOf } from '../../lib/wire/ids.js';
import {
  MessageType,
  type AdjustMessage,
  type Message,
  type SyncMessage,
  type TimeReplyMessage,
  type TimeRequestMessage,
} from '../../lib/wire/messages.js';

export const US = 1_000n;
export const MS = 1_000_000n;
export const S = 1_000_000_000n;

// ---------------------------------------------------------------- harness

/** Virtual monotonic time shared by every node of a test. */
export class FakeTime {
  ns = 1_000n * S;
  readonly monotonic = (): bigint => this.ns;
  advance(ns: bigint): bigint {
    this.ns += ns;
    return this.ns;
  }
}

export interface Harness {
  node: Node;
  clock: VirtualClock;
  name: string;
  id: bigint;
  /** Feed one event; carry out 'correct' and 'frequency' on the clock; return the actions. */
  handle(ev: Parameters<Node['handle']>[0]): Action[];
  fire(timer: TimerName): Action[];
  receive(msg: Message, from: Address): Action[];
}

export function makeNode(time: FakeTime, name: string, over: Partial<NodeOptions> = {}, clockOffsetNs = 0n, seed = 7): Harness {
  const clock = createSimulatedClock({ monotonic: time.monotonic, originNs: 0n, offsetNs: clockOffsetNs });
  const rng = new Prng(seed);
  const opts: NodeOptions = { ...DEFAULTS, name, unicast: { address: '0.0.0.0', port: 9200 }, ...over };
  const node = new Node(opts, clock, { random: () => rng.random(), nonce: () => rng.nonce() });
  const h: Harness = {
    node,
    clock,
    name,
    id: node.id,
    handle(ev) {
      const actions = node.handle(ev);
      for (const a of actions) {
        if (a.type === 'correct') clock.correct(a.correctionNs, a.allowStep);
        if (a.type === 'frequency') clock.setFrequencyPpm(a.ppm);
      }
      return actions;
    },
    fire: (timer) => h.handle({ type: 'timer', timer, monoNs: time.ns }),
    receive: (msg, from) => h.handle({ type: 'datagram', msg, from, rxMonoNs: time.ns }),
  };
  return h;
}

type Send = Extract<Action, { type: 'send' }>;
export const sends = (actions: Action[], type?: MessageType): Send[] =>
  actions.filter((a): a is Send => a.type === 'send' && (type === undefined || a.msg.type === type));
export const armed = (actions: Action[], timer: TimerName): bigint[] =>
  actions.flatMap((a) => (a.type === 'arm' && a.timer === timer ? [a.afterNs] : []));
export const disarmed = (actions: Action[], timer: TimerName): boolean => actions.some((a) => a.type === 'disarm' && a.timer === timer);
export const corrections = (actions: Action[]) => actions.filter((a): a is Extract<Action, { type: 'correct' }> => a.type === 'correct');
export function notices<K extends Notice['kind']>(actions: Action[], kind: K): Extract<Notice, { kind: K }>[] {
  return actions.flatMap((a) => (a.type === 'notice' && a.notice.kind === kind ? [a.notice as Extract<Notice, { kind: K }>] : []));
}
export const only = <T>(xs: T[], what: string): T => {
  if (xs.length !== 1) throw new Error(`expected exactly one ${what}, got ${xs.length}`);
  return xs[0]!;
};

export const MASTER_ADDR: Address = { address: '10.0.0.1', port: 9123 };
export const PEER_ADDR: Address = { address: '10.0.0.2', port: 9200 };

export function syncFrom(
  master: { name: string; clock: VirtualClock },
  epoch: number,
  round: number,
  over: Partial<SyncMessage> = {},
): SyncMessage {
  return {
    type: MessageType.Sync,
    domain: 0,
    sender: nodeIdOf(master.name),
    epoch,
    round,
    masterTimeNs: master.clock.now(),
    priority: 100,
    pinned: false,
    intervalMs: 1000,
    collectMs: 500,
    unicastAddress: '0.0.0.0',
    unicastPort: 9300,
    // The most a master asks for: the peer runs its own --probes.
    probes: 64,
    steps: 0,
    reference: false,
    name: master.name,
    ...over,
  };
}

/** A master seen from outside: just a name and a clock (offset 0). */
export function fakeMaster(time: FakeTime, name = 'master') {
  return { name, id: nodeIdOf(name), clock: createSimulatedClock({ monotonic: time.monotonic, originNs: 0n }) };
}

/** The master's answer to a request, as a real master would time it. */
export function replyTo(req: TimeRequestMessage, masterId: bigint, T2: bigint, T3: bigint, over: Partial<TimeReplyMessage> = {}): TimeReplyMessage {
  return {
    type: MessageType.TimeReply,
    domain: 0,
    sender: masterId,
    epoch: req.epoch,
    round: req.round,
    nonce: req.nonce,
    originNs: req.originNs,
    receiveNs: T2,
    transmitNs: T3,
    ...over,
  };
}

/**
 * A table from the master. A peer checks that its entry answers the offset it reported (average − offset,
 * exactly), so with a peer given, the average is made to agree: its entry's adjustment plus its last offset.
 */
export function adjustFor(masterId: bigint, epoch: number, round: number, entries: AdjustMessage['entries'], averageOrPeer: bigint | Harness = 0n): AdjustMessage {
  let averageNs: bigint;
  if (typeof averageOrPeer === 'bigint') averageNs = averageOrPeer;
  else {
    const own = entries.find((e) => e.node === averageOrPeer.id);
    averageNs = (own?.adjustmentNs ?? 0n) + (averageOrPeer.node.status().lastOffsetNs ?? 0n);
  }
  entries.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { type: MessageType.Adjust, domain: 0, sender: masterId, epoch, round, part: 0, parts: 1, averageNs, commonPpb: 0, rangeFirst: 0n, rangeLast: 0xffff_ffff_ffff_ffffn, full: false, entries };
}

/**
 * One exchange: the peer's outstanding request `req` travels `outNs` to the
 * master, which answers `turnNs` later; the reply travels `backNs` back.
 * Returns the peer's actions on the reply.
 */
export function exchangeOnce(
  time: FakeTime,
  peer: Harness,
  master: ReturnType<typeof fakeMaster>,
  req: TimeRequestMessage,
  outNs: bigint,
  backNs: bigint,
  turnNs = 20n * US,
): Action[] {
  time.advance(outNs);
  const T2 = master.clock.now();
  time.advance(turnNs);
  const T3 = master.clock.now();
  time.advance(backNs);
  return peer.receive(replyTo(req, master.id, T2, T3), MASTER_ADDR);
}

/** Follow a SYNC, fire the slot, run a burst over symmetric `oneWayNs` paths; returns the REPORT's actions. */
export function runBurst(time: FakeTime, peer: Harness, master: ReturnType<typeof fakeMaster>, sync: SyncMessage, oneWayNs = 100n * US): Action[] {
  const onSync = peer.receive(sync, MASTER_ADDR);
  if (armed(onSync, 'slot').length !== 1) throw new Error('SYNC did not arm the slot');
  time.advance(armed(onSync, 'slot')[0]!);
  let actions = peer.fire('slot');
  for (;;) {
    const req = sends(actions, MessageType.TimeRequest)[0];
    if (!req) return actions;
    actions = exchangeOnce(time, peer, master, req.msg as TimeRequestMessage, oneWayNs, oneWayNs);
  }
}


/** A pinned master and a helper that runs one round: each (name, offset, frequency ppb) measures and reports. */
export function masterRounds(time: FakeTime, over: Partial<NodeOptions> = {}) {
  const m = makeNode(time, 'm', { pinnedMaster: true, priority: 255, ...over });
  let actions = m.handle({ type: 'start', monoNs: time.ns });
  const round = (rows: [string, bigint, number | null][], delayNs = 100n * US): { adjust: AdjustMessage; actions: Action[]; next: Action[] } => {
    const sync = only(sends(actions, MessageType.Sync), 'SYNC').msg as SyncMessage;
    const out: Action[] = [];
    rows.forEach(([name, offsetNs, frequencyPpb], i) => {
      const from = { address: `10.0.1.${i + 1}`, port: 9200 };
      out.push(...m.receive({ type: MessageType.TimeRequest, domain: 0, sender: nodeIdOf(name), epoch: sync.epoch, round: sync.round, nonce: 1n, originNs: 0n }, from));
      out.push(...m.receive({ type: MessageType.Report, domain: 0, sender: nodeIdOf(name), epoch: sync.epoch, round: sync.round, offsetNs, delayNs, frequencyPpb, name }, from));
    });
    time.advance(sync.collectMs * Number(MS) > 0 ? BigInt(sync.collectMs) * MS : 1n);
    out.push(...m.fire('collect'));
    const adjust = only(sends(out, MessageType.Adjust), 'ADJUST').msg as AdjustMessage;
    time.advance((BigInt(sync.intervalMs) - BigInt(sync.collectMs)) * MS);
    actions = m.fire('round');
    return { adjust, actions: out, next: actions };
  };
  return { m, round };
}

