/**
 * The daemon: wires the engine (lib/core) to real sockets (lib/net), real
 * timers and a clock (lib/clock), and answers the control socket. It adds
 * I/O, never protocol logic: every decision is the engine's.
 */
import { randomBytes } from 'node:crypto';
import { createSimulatedClock, createVirtualClock, openSystemClock, type OpenedSystemClock, type SystemClock, type VirtualClock } from '../clock/index.js';
import { Node } from '../core/node.js';
import { validateOptions, type NodeOptions } from '../core/options.js';
import type { Action, Event, Notice, TimerName } from '../core/types.js';
import { loadError as netLoadError } from '../net/ffi.js';
import { Transport, type RxTime } from '../net/transport.js';
import { formatDurationNs } from '../units.js';
import { decode, encode, splitAdjust, transmitStampOffset } from '../wire/codec.js';
import type { Keyring } from '../wire/keys.js';
import { MessageType, type Message } from '../wire/messages.js';
import { ControlServer } from './control.js';
import { log, warner } from './log.js';
import { Metrics, MetricsServer } from './metrics.js';
import { SystemClockKeeper } from './keeper.js';
import { BoundPublisher } from './publish.js';
import { movesBound, tell } from './notices.js';
import { ReferenceLink } from './reference.js';
import { buildStatus, type StatusJson } from './status.js';
import { boundJson } from './bound.js';
import type { Counters, DaemonOptions } from './types.js';

export type { Counters, DaemonOptions } from './types.js';

/** What a reload may change while the daemon runs (see README, "Reload"). */
export interface Reloadable {
  keys: Keyring | null;
  maxAdjustNs: bigint | null;
  toleranceNs: bigint;
  priority: number;
}

export class Daemon {
  readonly clock: VirtualClock | SystemClock;
  /** The system clock's sync state and state file; null for the virtual and simulated clocks. */
  private readonly keeper: SystemClockKeeper | null = null;
  private readonly system: OpenedSystemClock | null = null;
  readonly node: Node;
  /** --reference: the external reference the group follows as master, or null. */
  readonly reference: ReferenceLink | null;
  readonly counters: Counters;
  /** The keys in force: replaced whole by reload(). */
  keys: Keyring | null;
  lastCorrectionMonoNs: bigint | null = null;
  metricsAddress: string | null = null;
  readonly metrics: Metrics;
  private metricsServer: MetricsServer | null = null;
  /** --clockbound: the error bound in ClockBound's segment; null without it (or with a clock it cannot describe). */
  readonly clockbound: BoundPublisher | null = null;
  private lastEpoch = 0;
  private readonly transport: Transport;
  private readonly control: ControlServer;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly say: ReturnType<typeof warner>;
  private running = false;
  private warnedDuplicate = false;
  private stopping: Promise<void> | null = null;
  readonly startedMonoNs = process.hrtime.bigint();

  constructor(private readonly opts: DaemonOptions) {
    const c = opts.clock;
    const common = { maxSlewPpm: c.maxSlewPpm, stepThresholdNs: c.stepThresholdNs };
    this.say = warner(opts.node.name);
    if (opts.shared) {
      // A boundary host's own group (boundary.ts): the clock belongs to its upper engine.
      this.clock = opts.shared.clock;
    } else if (c.kind === 'system') {
      // Refuses (ClockRefused) without CAP_SYS_TIME or beside another time service, before anything is opened.
      this.system = openSystemClock({
        ...common,
        stateFile: c.stateFile ?? null,
        force: c.force ?? false,
        onError: (err) => this.say.warn(`system clock: ${err.message}`),
        onForeignStep: (movedNs) =>
          this.say.warn(`the system clock was stepped by someone else, by ${formatDurationNs(movedNs)}: another program sets the time (is a time service still running?); following the clock as it now is`),
      });
      this.clock = this.system.clock;
      const keeper = new SystemClockKeeper(this.system.clock, { stateFile: c.stateFile ?? null, intervalNs: opts.node.intervalNs, warn: this.say.warn, log: log.clock });
      this.keeper = keeper;
      // A crash (an uncaught exception) still goes through 'exit': let the clock go there too (all synchronous).
      process.once('exit', () => keeper.close());
    } else {
      this.clock =
        c.simOffsetNs !== null || c.simDriftPpm !== null
          ? createSimulatedClock({ ...common, offsetNs: c.simOffsetNs ?? 0n, driftPpm: c.simDriftPpm ?? 0 })
          : createVirtualClock(common);
    }
    this.transport = new Transport({ ...opts.net }, (data, from, rx) => this.onDatagram(data, from, rx), (err) => {
      this.counters.sendErrors += 1;
      log.net('send error: %s', err.message);
    });
    this.counters = { received: 0, sent: 0, sendErrors: 0, rejected: {}, elections: 0, claims: 0, corrections: 0, reloads: { ok: 0, refused: 0 }, otherParts: 0, net: this.transport.counters };
    // The unicast address is advertised as 0.0.0.0 (or ::): peers use the SYNC's source address (and, link-local, its interface).
    this.node = new Node({ ...opts.node, unicast: { address: this.anyAddress, port: 0 } }, this.clock, {
      random: Math.random,
      nonce: () => randomBytes(8).readBigUInt64BE(),
    });
    this.reference = opts.reference ? new ReferenceLink(opts.reference, this.clock, this.node) : null;
    this.keys = opts.keys;
    this.control = new ControlServer(opts.controlPath, (cmd) => this.command(cmd));
    this.metrics = new Metrics(() => this.status(), !!opts.metrics);
    if (opts.metrics) this.metricsServer = new MetricsServer(this.metrics, opts.metrics);
    // The segment describes CLOCK_REALTIME: only the system clock has a bound there (bin/run.ts refuses an explicit path otherwise).
    if (opts.clockbound && c.kind === 'system') {
      this.clockbound = new BoundPublisher({ ...opts.clockbound, bound: (mono) => this.node.errorBound(mono), info: this.say.info, warn: this.say.warn });
    } else if (opts.clockbound) {
      this.say.info(`--clockbound auto: not publishing the error bound: ClockBound's segment describes CLOCK_REALTIME, and this daemon keeps a ${c.kind === 'system' ? 'system' : 'virtual'} clock of its own (--clock system publishes it)`);
    }
  }

  /** Binds, joins, listens; rejects with NetError or ControlError when it cannot. */
  async start(): Promise<void> {
    try {
      await this.control.start();
    } catch (err) {
      this.keeper?.close();
      throw err;
    }
    try {
      await this.transport.start();
      this.clockbound?.start();
      if (this.metricsServer) {
        await this.metricsServer.start();
        this.metricsAddress = `${this.opts.metrics!.host}:${this.metricsServer.port}`;
        log.net('metrics on http://%s/metrics', this.metricsAddress);
      }
    } catch (err) {
      this.clockbound?.stop();
      await this.transport.stop();
      await this.control.stop();
      this.metrics.stop();
      this.keeper?.close();
      throw err;
    }
    // The engine advertises where it can be reached once the port is known.
    (this.node.ctx.opts as NodeOptions).unicast = { address: this.anyAddress, port: this.transport.unicastPort };
    this.running = true;
    const n = this.opts.net;
    log.net('joined %s:%d on %s, unicast port %d, ttl %d, receive buffers %d bytes', n.group, n.port, n.interfaceAddress, this.transport.unicastPort, n.ttl, this.transport.recvBufferBytes);
    log.net('receive timestamps: %s', this.transport.kernelStamps ? 'from the kernel' : `user space only (${netLoadError ?? 'no socket descriptor'})`);
    log.control('control socket %s', this.opts.controlPath);
    log.clock('%s clock, max slew %d ppm, step threshold %s', this.clock.kind, this.opts.clock.maxSlewPpm, formatDurationNs(this.opts.clock.stepThresholdNs));
    this.say.info(this.clockLine());
    if (this.reference) this.say.info(this.reference.describe());
    for (const o of this.system?.overridden ?? []) this.say.warn(`--force: going on although ${o}`);
    for (const o of this.system?.leftovers ?? []) this.say.warn(`${o}; no time service is running, so these are taken as left behind by one that stopped: cleared`);
    this.feed({ type: 'start', monoNs: process.hrtime.bigint() });
  }

  /** LEAVE, close the sockets, remove the control socket. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.running) this.feed({ type: 'stop', monoNs: process.hrtime.bigint() });
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    // Let the LEAVE leave before the socket closes.
    await new Promise((r) => setImmediate(r));
    try {
      await this.transport.stop();
      await this.metricsServer?.stop();
      this.metrics.stop();
      await this.control.stop();
    } finally {
      this.clockbound?.stop();
      // Whatever failed above, the kernel must not keep saying it is synchronized.
      if (this.keeper) {
        const { ppm, saved } = this.keeper.close();
        const file = this.opts.clock.stateFile;
        const where = saved === null ? '' : saved.ok ? `, frequency saved in ${file}` : `; the frequency could not be saved in ${file} (${saved.error})`;
        this.say.info(`system clock left running at ${ppm.toFixed(3)} ppm, STA_UNSYNC set${where}`);
      }
    }
  }

  /** What the master advertises in SYNC: the unspecified address of the group's family (the source of the SYNC). */
  private get anyAddress(): string {
    return this.transport.family === 6 ? '::' : '0.0.0.0';
  }

  /** Which clock this daemon disciplines, for the start line. */
  private clockLine(): string {
    if (this.system) {
      const s = this.system;
      const from = s.startFrom === 'state-file' ? `the saved frequency in ${this.opts.clock.stateFile}` : "the kernel's current frequency";
      return `disciplining the system clock (CLOCK_REALTIME) with adjtimex: starting from ${from}, ${s.clock.startFrequencyPpm.toFixed(3)} ppm; max slew ${s.clock.maxSlewPpm} ppm`;
    }
    return `keeping a ${this.clock.kind} clock inside this process; the system clock is not touched (--clock system disciplines it)`;
  }

  /**
   * Puts a new configuration in force, whole: the caller has read and
   * checked everything (a bad key file never gets here), so the old keys
   * stay until this returns and the new ones serve the very next datagram.
   */
  reload(r: Reloadable): void {
    const live = this.node.ctx.opts as NodeOptions;
    validateOptions({ ...live, ...r });
    this.keys = r.keys;
    live.maxAdjustNs = r.maxAdjustNs;
    live.toleranceNs = r.toleranceNs;
    live.priority = r.priority;
    this.counters.reloads.ok += 1;
  }

  /** Counts a refused reload (the caller says why). */
  reloadRefused(): void {
    this.counters.reloads.refused += 1;
  }

  /** rxMonoNs: the arrival time, asked for only once the datagram is accepted (see RxTime). */
  private onDatagram(data: Buffer, from: { address: string; port: number }, rxMonoNs: RxTime): void {
    if (!this.running) return;
    this.counters.received += 1;
    if (from.port === 0) {
      // Legal on the wire, but nothing can be sent back to it.
      this.reject('source-port-0');
      return;
    }
    // adjustFor: of a large table's parts only ours is authenticated and read.
    const r = decode(data, { domain: this.opts.node.domain, keys: this.keys ?? undefined, adjustFor: this.node.id });
    if (!r.ok && r.reason === 'other-part') {
      this.counters.otherParts += 1;
      return;
    }
    if (!r.ok) {
      this.reject(r.reason);
      log.wire('dropped %d bytes from %s:%d: %s', data.length, from.address, from.port, r.reason);
      return;
    }
    if (r.msg.sender === this.node.id && !this.transport.isOwnAddress(from.address)) {
      // Our own id from another host: two nodes share a name (a cloned image?).
      this.reject('duplicate-node-id');
      if (!this.warnedDuplicate) {
        this.say.error(`datagrams with this node's id ("${this.opts.node.name}") arrive from ${from.address}: another host uses the same --node-id, or someone replays this node's datagrams`);
      }
      this.warnedDuplicate = true;
      return;
    }
    this.feed({ type: 'datagram', msg: r.msg, from, rxMonoNs: rxMonoNs() });
  }

  private reject(reason: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
  }

  private feed(ev: Event): void {
    let actions: Action[];
    try {
      actions = this.node.handle(ev);
    } catch (err) {
      // A bug, not input: say so loudly, keep running.
      this.say.error(`engine failed on ${ev.type}: ${(err as Error).stack ?? err}`);
      return;
    }
    // Datagrams first, then timers and the rest: a request or a reply
    // carries a transmit timestamp read inside handle(), and every
    // microsecond until the system call is an error of the offset (half of
    // the peer's and the master's difference). The order of the other
    // actions is kept, and none of them changes what a datagram says.
    const sends = actions.filter((a) => a.type === 'send');
    if (sends.length > 0 && sends.length < actions.length) actions = [...sends, ...actions.filter((a) => a.type !== 'send')];
    for (const a of actions) {
      try {
        this.carryOut(a);
      } catch (err) {
        // One action failing (a value our own encoder refuses, a socket
        // refusing an address) must not take the daemon down.
        this.counters.sendErrors += 1;
        this.say.warn(`could not carry out ${a.type}: ${(err as Error).message}`);
      }
    }
  }

  private carryOut(a: Action): void {
    switch (a.type) {
      case 'send':
        return this.send(a.to, a.msg);
      case 'arm': {
        const old = this.timers.get(a.timer);
        if (old) clearTimeout(old);
        const t = setTimeout(() => {
          this.timers.delete(a.timer);
          if (this.running) this.feed({ type: 'timer', timer: a.timer, monoNs: process.hrtime.bigint() });
        }, Number(a.afterNs) / 1e6);
        this.timers.set(a.timer, t);
        return;
      }
      case 'disarm': {
        const t = this.timers.get(a.timer);
        if (t) clearTimeout(t);
        this.timers.delete(a.timer);
        return;
      }
      case 'correct': {
        if (this.opts.shared) return log.clock('not correcting by %s: the upper group disciplines this clock', formatDurationNs(a.correctionNs));
        const kind = this.clock.correct(a.correctionNs, a.allowStep);
        log.clock('%s %s', kind === 'step' ? 'stepped' : 'slewing', formatDurationNs(a.correctionNs));
        return;
      }
      case 'frequency':
        if (this.opts.shared) return;
        this.clock.setFrequencyPpm(a.ppm);
        log.clock('frequency %s ppm', a.ppm.toFixed(3));
        return;
      case 'notice':
        return this.notice(a.notice);
    }
  }

  private send(to: 'group' | { address: string; port: number }, msg: Message): void {
    const keys = this.keys;
    const auth = keys ? { keyId: keys.sendKeyId, key: keys.get(keys.sendKeyId)! } : undefined;
    const parts = msg.type === MessageType.Adjust ? splitAdjust(msg, auth !== undefined) : [msg];
    for (const part of parts) {
      // The transmit timestamp (t1, T3) as late as user space can read it,
      // written into the message object too, where the engine reads t1 back
      // (see Action): without a tag, into the encoded bytes by the transport
      // just before the system call; with one, just before encoding.
      const offset = transmitStampOffset(part.type);
      if (offset !== null && auth) {
        this.transport.warmForStamp();
        setTransmitNs(part, this.transmitNow(part));
      }
      const data = encode(part, auth);
      const stamp = offset === null || auth ? undefined : (): void => {
        const now = this.transmitNow(part);
        data.writeBigInt64BE(now, offset);
        setTransmitNs(part, now);
      };
      this.counters.sent += 1;
      if (to === 'group') this.transport.sendGroup(data);
      else this.transport.sendTo(data, to.address, to.port, stamp);
    }
  }

  private notice(n: Notice): void {
    if (this.clockbound && movesBound(n)) this.clockbound.soon();
    // The daemon's own bookkeeping; what is logged or said of each notice is notices.ts's.
    switch (n.kind) {
      case 'corrected':
        this.counters.corrections += 1;
        this.lastCorrectionMonoNs = process.hrtime.bigint();
        if (this.keeper) {
          const st = this.node.status();
          // The master's own adjustment (the average) is as good as the round trips it was measured with.
          const delay = st.role === 'master' ? st.lastTable.reduce<bigint | null>((m, r) => (m === null || r.delayNs > m ? r.delayNs : m), null) : st.lastDelayNs;
          const alone = st.role === 'master' && st.lastTable.length < 2;
          this.keeper.corrected(n.adjustmentNs, st.synced && !alone, delay);
        }
        break;
      case 'refused':
        this.reject('refused-adjust');
        break;
      case 'role':
        if (n.role === 'candidate') this.counters.claims += 1;
        if (n.masterName !== null && n.epoch !== this.lastEpoch) {
          if (this.lastEpoch !== 0) this.counters.elections += 1;
          this.lastEpoch = n.epoch;
        }
        if (n.role === 'candidate') this.keeper?.lost(`no master heard: ${n.why}`);
        break;
      case 'table':
        if (!n.inTable) this.keeper?.lost(n.why === 'table-full' ? "left out of the master's table: it is full" : "left out of the master's table");
        break;
    }
    tell(n, this.say, this.opts.node.pinnedMaster);
  }

  private command(cmd: string): unknown {
    log.control('command %j', cmd);
    if (cmd === 'status') return this.status();
    // The exposition text, for `status --format prometheus`: a promise, which the control socket awaits.
    if (cmd === 'metrics') return this.metrics.text().then((text) => ({ text }));
    if (cmd === 'now') {
      const mono = process.hrtime.bigint();
      const groupTimeNs = this.clock.at(mono);
      return { groupTimeNs: groupTimeNs.toString(), monotonicNs: mono.toString(), ...boundJson(groupTimeNs, this.node.errorBound(mono)) };
    }
    if (cmd === 'reading') {
      // What a benchmark needs to carry this clock to another instant, without a status (megabytes on a master of thousands).
      const mono = process.hrtime.bigint();
      const c = this.clock.state();
      const groupTimeNs = this.clock.at(mono);
      return {
        ...boundJson(groupTimeNs, this.node.errorBound(mono)),
        groupTimeNs: groupTimeNs.toString(),
        monotonicNs: mono.toString(),
        frequencyPpm: this.clock.frequencyPpm(),
        clock: { simDriftPpm: c.kind === 'system' ? null : c.driftPpm, pendingNs: c.pendingNs.toString(), maxSlewPpm: c.maxSlewPpm },
      };
    }
    return { error: `unknown command "${cmd}" (commands: status, now, reading)` };
  }

  /** A transmit timestamp: the clock now, or for a master's reply while its own clock is named faulty, the group's time it serves (runaway.ts). */
  private transmitNow(msg: Message): bigint {
    const served = msg.type === MessageType.TimeReply ? this.node.servedClock() : null;
    return served ? served(this.clock.monotonic()) : this.clock.now();
  }

  status(): StatusJson {
    return buildStatus(this, this.opts, this.transport.unicastPort);
  }
}

/** The transmit timestamp of a TimeRequest (t1) or TimeReply (T3). */
function setTransmitNs(msg: Message, ns: bigint): void {
  if (msg.type === MessageType.TimeRequest) msg.originNs = ns;
  else if (msg.type === MessageType.TimeReply) msg.transmitNs = ns;
}
