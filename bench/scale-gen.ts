/**
 * The load generator of bench:scale: `members` emulated peers that do, each
 * round, what lib/core/peer.ts does, against a real master, over a handful
 * of UDP sockets. Runs as its own process (bench/scale-worker.ts), so that
 * its CPU is its own and the figures can show when it, not the master, was
 * the limit.
 *
 * Per round, for every emulated peer: at its slot (peer.ts: a fraction of
 * the collection window from its node id, jittered), a burst: a warm-up
 * exchange (from WARMUP_FROM probes), then the master's SYNC `probes` (at
 * most --probes) TIME_REQUEST/TIME_REPLY exchanges one after
 * another, each waiting for its reply at most the probe timeout; at the end
 * of the burst (or at the report deadline) a REPORT with a synthetic offset
 * (uniform within ±offsetSpreadNs), the best exchange's round trip and a
 * synthetic frequency; then it looks for its entry in the ADJUST parts it
 * reads from the group.
 *
 * Cheap by construction: peers share `sockets` unicast sockets (the master
 * answers to the request's source and echoes the nonce, which carries the
 * peer's index and a per-round salt); per-peer state lives in typed arrays;
 * there are no per-peer timers: one timer walks the round's sorted slot
 * schedule and a FIFO of probe deadlines (scale-schedule.ts); a request is a
 * per-round encoded template in which only the nonce and t1 are written,
 * and goes straight to sendto(2) where lib/net's FFI is available.
 */
import dgram from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { loadSocketCalls, parseIpv4, socketFd, type SocketCalls } from '../lib/net/ffi.js';
import { transmitStampOffset } from '../lib/wire/codec.js';
import { decode, encode, HEADER_BYTES, MessageType, nodeIdOf, type AdjustMessage, type Message, type SyncMessage, type TimeReplyMessage } from '../lib/wire/index.js';
import { exchangesOf, PROBE_TIMEOUT, REPORT_BY, SLOT_JITTER, SLOT_SPAN, SLOT_START, WARMUP_FROM } from '../lib/core/load.js';
import { runqueueWaitS } from './proc.js';
import { Schedule } from './scale-schedule.js';
import { newRound, type GenConfig, type GenRound } from './scale-types.js';


const nowNs = (): bigint => process.hrtime.bigint();
const nowMs = (): number => performance.now();
const NONCE_AT = HEADER_BYTES; // TIME_REQUEST body: nonce (u64) first
const STAMP_AT = transmitStampOffset(MessageType.TimeRequest)!;

export class Generator {
  private readonly n: number;
  private readonly ids: bigint[];
  private readonly names: string[];
  private readonly index = new Map<bigint, number>();
  private readonly idFraction: Float64Array;
  private readonly sched: Schedule;
  // Per peer, this round.
  private readonly left: Uint8Array;
  private readonly warm: Uint8Array;
  /** The burst got its one extra try (see next). */
  private readonly retried: Uint8Array;
  /** This round's burst: SYNC probes, at most cfg.probes. */
  private probes = 1;
  private readonly outstanding: Uint8Array;
  private readonly seq: Uint8Array;
  private readonly t1: BigInt64Array;
  private readonly best: Float64Array;
  private readonly reported: Uint8Array;
  /** The offset each reported: its entry must answer exactly this (peer.ts drops it as wrong-report otherwise). */
  private readonly offsetNs: BigInt64Array;
  private readonly got: Uint8Array;
  private templates: (Buffer | null)[];
  // The round.
  private salt = 0;
  private readonly salts: number[] = [];
  private master: { node: bigint; address: string; ip: number | null; port: number } | null = null;
  private epoch = 0;
  private round = 0;
  private probeTimeoutMs = 0;
  private deadlineMs = 0;
  private rec: GenRound | null = null;
  private delays: number[] = [];
  private cpuMark = process.cpuUsage();
  private waitMark = runqueueWaitS('self');
  private group: dgram.Socket | null = null;
  private readonly socks: dgram.Socket[] = [];
  private readonly fds: (number | null)[] = [];
  private readonly calls: SocketCalls | null = loadSocketCalls();
  /** Datagrams that were neither ours nor expected (other groups' traffic, foreign replies). */
  foreign = 0;
  sendErrors = 0;

  constructor(
    private readonly cfg: GenConfig,
    private readonly onSync: (s: { epoch: number; round: number; collectMs: number; probes: number }) => void,
    private readonly onRound: (r: GenRound) => void,
  ) {
    const n = (this.n = cfg.members);
    this.names = [...Array(n).keys()].map((i) => `${cfg.namePrefix}${String(i).padStart(5, '0')}`);
    this.ids = this.names.map(nodeIdOf);
    this.ids.forEach((id, i) => this.index.set(id, i));
    this.idFraction = Float64Array.from(this.ids, (id) => Number(id & 0xffffffffn) / 2 ** 32);
    this.left = new Uint8Array(n);
    this.warm = new Uint8Array(n);
    this.retried = new Uint8Array(n);
    this.outstanding = new Uint8Array(n);
    this.seq = new Uint8Array(n);
    this.t1 = new BigInt64Array(n);
    this.best = new Float64Array(n);
    this.reported = new Uint8Array(n);
    this.offsetNs = new BigInt64Array(n);
    this.got = new Uint8Array(n);
    this.templates = new Array<Buffer | null>(n).fill(null);
    this.sched = new Schedule(n, n * (cfg.probes + 1) + 1, () => this.tick(), (i, seq) => this.outstanding[i] === 1 && this.seq[i] === seq);
  }

  /** Binds the unicast sockets and joins the group; resolves with the unicast ports. */
  async start(): Promise<number[]> {
    const c = this.cfg;
    const bind = (s: dgram.Socket, port: number, address: string): Promise<void> => new Promise((res, rej) => s.once('error', rej).bind({ port, address, exclusive: false }, () => res()));
    const g = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 1 << 22 }, (d, r) => this.onGroup(d, r));
    await bind(g, c.port, '0.0.0.0');
    g.addMembership(c.group, c.interfaceAddress);
    this.group = g;
    for (let k = 0; k < c.sockets; k++) {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 }, (d) => this.onReply(d));
      await bind(s, 0, c.interfaceAddress);
      this.socks.push(s);
      this.fds.push(this.calls ? socketFd(s) : null);
    }
    return this.socks.map((s) => s.address().port);
  }

  /** Ends the round in progress (emitted with partial set) and closes the sockets. */
  stop(): void {
    this.sched.cancel();
    this.finishRound(true);
    for (const s of [this.group, ...this.socks]) s?.close();
    this.group = null;
    this.socks.length = 0;
  }

  private onGroup(data: Buffer, from: dgram.RemoteInfo): void {
    const r = decode(data, { domain: this.cfg.domain });
    if (!r.ok) return void (this.foreign += 1);
    const msg = r.msg;
    if (msg.type === MessageType.Sync) return this.startRound(msg, from.address);
    if (msg.type === MessageType.Adjust) return this.onAdjust(msg);
  }

  private startRound(msg: SyncMessage, source: string): void {
    // One master at a time: the first heard, until another wins an election (a later epoch).
    if (this.master && msg.sender !== this.master.node && msg.epoch <= this.epoch) return;
    if (this.master && (msg.epoch < this.epoch || (msg.epoch === this.epoch && msg.round <= this.round))) return;
    const rx = nowMs();
    this.finishRound(false);
    const address = msg.unicastAddress === '0.0.0.0' ? source : msg.unicastAddress;
    this.master = { node: msg.sender, address, ip: parseIpv4(address), port: msg.unicastPort };
    this.epoch = msg.epoch;
    this.round = msg.round;
    this.salt = randomBytes(4).readUInt32BE(0);
    this.salts.push(this.salt);
    if (this.salts.length > 8) this.salts.shift();
    const collectMs = msg.collectMs;
    // As peer.ts: the burst the master asks for, at most our --probes; a warm-up on top from WARMUP_FROM.
    this.probes = Math.min(this.cfg.probes, msg.probes);
    this.probeTimeoutMs = Math.min(this.cfg.maxDelayMs, collectMs * PROBE_TIMEOUT);
    this.deadlineMs = rx + collectMs * REPORT_BY;
    this.rec = newRound(msg.epoch, msg.round, collectMs, this.n);
    this.delays = [];
    this.outstanding.fill(0);
    this.left.fill(0);
    this.reported.fill(0);
    this.got.fill(0);
    this.templates.fill(null);
    this.sched.plan((i) => rx + collectMs * (SLOT_START + SLOT_SPAN * ((this.idFraction[i]! + SLOT_JITTER * (Math.random() - 0.5) + 1) % 1)));
    this.onSync({ epoch: msg.epoch, round: msg.round, collectMs, probes: this.probes });
    this.tick();
  }

  /** Emits the round's record: what is outstanding now is lost. */
  private finishRound(partial: boolean): void {
    const r = this.rec;
    if (!r) return;
    this.rec = null;
    r.notStarted = this.sched.notStarted;
    let cancelled = 0;
    for (let i = 0; i < this.n; i++) cancelled += this.outstanding[i]!;
    // Unanswered: timed out or still waiting, less the late replies of this round heard so far.
    r.lost = r.timeouts + cancelled - r.late;
    r.partial = partial;
    this.delays.sort((a, b) => a - b);
    const at = (p: number): number => (this.delays.length ? this.delays[Math.min(this.delays.length - 1, Math.floor(p * this.delays.length))]! / 1000 : 0);
    r.bestDelayUs = { p50: at(0.5), p99: at(0.99), max: at(1) };
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    r.genCpuUs = cpu.user + cpu.system;
    r.genSysUs = cpu.system;
    const wait = runqueueWaitS('self');
    r.genWaitUs = wait === null || this.waitMark === null ? null : (wait - this.waitMark) * 1e6;
    this.waitMark = wait;
    this.onRound(r);
  }

  /** The timer: slots that have come, then probe deadlines that have passed. */
  private tick(): void {
    const now = nowMs();
    for (let i = this.sched.slotDue(now); i >= 0; i = this.sched.slotDue(now)) {
      this.left[i] = exchangesOf(this.probes);
      this.retried[i] = 0;
      this.warm[i] = this.probes >= WARMUP_FROM ? 1 : 0;
      this.best[i] = Infinity;
      this.rec!.bursts += 1;
      this.send(i);
    }
    for (let i = this.sched.timeoutDue(now); i >= 0; i = this.sched.timeoutDue(now)) {
      this.outstanding[i] = 0;
      this.warm[i] = 0;
      this.rec!.timeouts += 1;
      this.next(i, now);
    }
    this.sched.arm(now);
  }

  private send(i: number): void {
    let t = this.templates[i];
    if (!t) {
      const header = { domain: this.cfg.domain, sender: this.ids[i]!, epoch: this.epoch, round: this.round };
      t = this.templates[i] = encode({ type: MessageType.TimeRequest, ...header, nonce: 0n, originNs: 0n });
    }
    this.left[i]! -= 1;
    this.seq[i] = (this.seq[i]! + 1) & 0xff;
    t.writeUInt32BE(this.salt, NONCE_AT);
    t.writeUInt32BE(i * 256 + this.seq[i]!, NONCE_AT + 4);
    const t1 = nowNs();
    t.writeBigInt64BE(t1, STAMP_AT);
    this.t1[i] = t1;
    this.outstanding[i] = 1;
    this.sched.deadline(i, this.seq[i]!, nowMs() + this.probeTimeoutMs);
    this.rec!.requests += 1;
    this.transmit(i, t);
  }

  private transmit(i: number, data: Buffer): void {
    const m = this.master!;
    const k = i % this.socks.length;
    const fd = this.fds[k];
    if (this.calls && fd !== null && fd !== undefined && m.ip !== null && this.calls.sendTo(fd, data, m.ip, m.port) === 0) return;
    // Node's send is asynchronous: the template is written again before it leaves, so send a copy.
    this.socks[k]!.send(Buffer.from(data), m.port, m.address, (err) => {
      if (err) this.sendErrors += 1;
    });
  }

  private onReply(data: Buffer): void {
    const t4 = nowNs();
    const rec = this.rec;
    const r = decode(data, { domain: this.cfg.domain });
    if (!r.ok || r.msg.type !== MessageType.TimeReply || !rec) return void (this.foreign += 1);
    const msg: TimeReplyMessage = r.msg;
    const salt = Number(msg.nonce >> 32n);
    const low = Number(msg.nonce & 0xffffffffn);
    const i = low >>> 8;
    if (salt !== this.salt || i >= this.n || !this.outstanding[i] || this.seq[i] !== (low & 0xff) || msg.originNs !== this.t1[i]) {
      // An echo of one of our requests that is no longer outstanding: it came after its probe timeout.
      if (this.salts.includes(salt) && i < this.n) {
        if (salt === this.salt) rec.late += 1;
        else rec.lateEarlier += 1;
      }
      else this.foreign += 1;
      return;
    }
    this.outstanding[i] = 0;
    rec.onTime += 1;
    if (this.warm[i]) this.warm[i] = 0;
    else {
      const delay = Number(t4 - msg.originNs) - Number(msg.transmitNs - msg.receiveNs);
      if (delay >= 0 && delay < this.best[i]!) this.best[i] = delay;
    }
    const now = nowMs();
    this.next(i, now);
    this.sched.arm(now);
  }

  private next(i: number, now: number): void {
    // As peer.ts: a burst out of exchanges with no usable sample tries once more.
    if (this.left[i] === 0 && this.best[i] === Infinity && !this.retried[i]) {
      this.retried[i] = 1;
      this.left[i] = 1;
    }
    if (this.left[i]! > 0 && now < this.deadlineMs) return this.send(i);
    const rec = this.rec!;
    if (this.left[i]! > 0) rec.cut += 1;
    const best = this.best[i]!;
    if (best === Infinity || best > this.cfg.maxDelayMs * 1e6) return void (rec.failed += 1);
    const offsetNs = BigInt(randomInt(-this.cfg.offsetSpreadNs, this.cfg.offsetSpreadNs + 1));
    const report: Message = {
      type: MessageType.Report,
      domain: this.cfg.domain,
      sender: this.ids[i]!,
      epoch: this.epoch,
      round: this.round,
      offsetNs,
      delayNs: BigInt(Math.round(best)),
      frequencyPpb: randomInt(-1000, 1001),
      name: this.names[i]!,
    };
    this.reported[i] = 1;
    this.offsetNs[i] = offsetNs;
    rec.reports += 1;
    this.delays.push(best);
    this.transmit(i, encode(report));
  }

  private onAdjust(msg: AdjustMessage): void {
    if (!this.master || msg.sender !== this.master.node) return;
    const rec = this.rec;
    if (!rec) return;
    if (msg.epoch !== this.epoch || msg.round !== this.round) return void (rec.lateAdjustParts += 1);
    rec.adjustParts += 1;
    rec.adjustPartsAnnounced = msg.parts;
    rec.tableRows += msg.entries.length;
    for (const e of msg.entries) {
      const i = this.index.get(e.node);
      if (i === undefined) continue;
      if (!this.reported[i]) rec.unreportedEntries += 1;
      else if (e.adjustmentNs !== msg.averageNs - this.offsetNs[i]!) rec.wrongEntries += 1;
      else if (!this.got[i]) {
        this.got[i] = 1;
        rec.gotEntry += 1;
        if (e.outlier) rec.outliers += 1;
      }
    }
  }
}
