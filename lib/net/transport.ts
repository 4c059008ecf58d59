/**
 * UDP transport: the group socket (multicast, shared port) and the unicast
 * socket (exchanges and reports). The only module that opens UDP sockets.
 *
 * Receive timestamps: first thing in the socket callback a user-space stamp
 * is read. When the receiver asks for the arrival time (once it has
 * decoded the datagram, still inside the callback), the kernel's stamp of
 * the same datagram (SIOCGSTAMPNS: libuv runs the callback right after the
 * recvmsg that delivered it, and delivers the next only when it returns),
 * converted to the monotonic base and checked by RxStamper, replaces it.
 * This module never decodes.
 *
 * Sends go straight to sendto(2) on the socket's descriptor, so that a
 * transmit timestamp taken just before is as close to the wire as user
 * space gets (Node's send on an unconnected socket first defers through an
 * address lookup, to after the current callback). Where that is not
 * possible (no FFI, a name instead of an address, a full socket buffer),
 * Node's send carries the datagram and reports its errors.
 *
 * Either family: an IPv6 group (ff00::/8) gets udp6 sockets (IPV6_V6ONLY),
 * joined and sending on the named interface (IPV6_JOIN_GROUP,
 * IPV6_MULTICAST_IF, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP through
 * Node's dgram); kernel stamps and direct sends work the same on them.
 *
 * Errors are sorted as multicast-dns does: failing to bind or join is fatal
 * (start() rejects with a NetError naming what failed); a send error is
 * reported and the datagram dropped.
 */
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import type { RemoteInfo } from 'node:dgram';
import { loadSocketCalls, parseIpv4, socketFd, type SocketCalls } from './ffi.js';
import { familyOf, ownAddresses, resolveInterfaceOf, Scopes, type Family } from './groups.js';
import { newStampCounters, RxStamper, type StampCounters, type StampSource } from './stamps.js';
import { EMPTY_DATAGRAM, LOOPBACK, SendIdle } from './warm.js';

export type { StampSource };

/**
 * Receive buffer of each socket, bytes (SO_RCVBUF; the kernel doubles it
 * for its bookkeeping and caps it at net.core.rmem_max). Measured on
 * loopback with small datagrams: the Linux default (rmem_default, 212,992)
 * queues 256 datagrams, about 10 ms of a 25,000/s flood of junk; 1 MiB
 * queues 2,520, 100 ms of it, so the group's own datagrams still find room
 * while the daemon drains the junk. Where rmem_max is lower, the kernel
 * gives rmem_max; Transport.recvBufferBytes says what was granted.
 */
export const RECV_BUFFER_BYTES = 1 << 20;

const LOOPBACK_IPV4 = parseIpv4(LOOPBACK[4])!;
const LOOPBACK_IPV6 = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

export interface TransportOptions {
  /** Multicast group, IPv4 (e.g. 239.255.77.1) or IPv6 (e.g. ff02::b3d1); its family is the transport's. */
  group: string;
  port: number;
  /**
   * The interface to join the group on and send from (resolveInterface):
   * for an IPv4 group its IPv4 address; for an IPv6 group its name ("": the
   * kernel's choice by route, for scopes wider than the link).
   */
  interfaceAddress: string;
  /** Unicast port; 0: any free port. */
  unicastPort: number;
  /** Multicast TTL; 1 keeps datagrams on the LAN. */
  ttl: number;
}

/**
 * When the datagram arrived, monotonic ns: the kernel's stamp, or
 * process.hrtime.bigint() read first thing on arrival. Call it only while
 * the Receiver runs (the kernel keeps the stamp of the last datagram
 * delivered, and libuv delivers the next one when the Receiver returns);
 * it reads and counts the stamp once. A datagram that is dropped without
 * asking costs no stamp: a flood of junk costs no more than before.
 */
export interface RxTime {
  (): bigint;
  /** After the first call: where the answer came from. */
  source?: StampSource;
}

export type Receiver = (data: Buffer, from: { address: string; port: number }, rxMonoNs: RxTime, via: 'group' | 'unicast') => void;

/** Which timestamps and send path are in use, per socket (shown by status). */
export interface TransportCounters {
  rxStamps: { group: StampCounters; unicast: StampCounters };
  /** Datagrams handed to sendto(2) at once, and those sent through Node's send (no FFI, or the direct call failed). */
  tx: { direct: number; node: number };
}

/** The foreign calls, replaceable in tests; null: user-space stamps and Node's send only. */
export type TransportCalls = SocketCalls | null;

export class NetError extends Error {
  constructor(
    message: string,
    readonly option: string,
  ) {
    super(message);
  }
}

export class Transport {
  private groupSocket: SocketAsPromised | null = null;
  private unicastSocket: SocketAsPromised | null = null;
  private groupFd: number | null = null;
  private unicastFd: number | null = null;
  private readonly stamper: RxStamper | null;
  /** The family of the group, and so of every socket and address. */
  readonly family: Family;
  /** IPv6: "::%ifname", what Node's dgram takes for an interface; undefined: the kernel's choice. */
  private readonly ifSpec: string | undefined;
  private own: Set<string> = new Set();
  private readonly scopes: Scopes;
  readonly counters: TransportCounters = { rxStamps: { group: newStampCounters(), unicast: newStampCounters() }, tx: { direct: 0, node: 0 } };

  constructor(
    private readonly opts: TransportOptions,
    private readonly receive: Receiver,
    private readonly onSendError: (err: Error) => void,
    private readonly calls: TransportCalls = loadSocketCalls(),
  ) {
    const c = calls;
    this.family = familyOf(opts.group);
    this.scopes = new Scopes(opts.interfaceAddress, (name) => c?.ifIndex?.(name) ?? 0);
    this.ifSpec = this.family === 4 ? opts.interfaceAddress : opts.interfaceAddress ? `::%${opts.interfaceAddress}` : undefined;
    this.stamper = c ? new RxStamper({ monoNs: () => process.hrtime.bigint(), realNs: () => c.realNs(), lastRxRealNs: (fd) => c.lastRxRealNs(fd) }) : null;
  }

  /** The unicast port actually bound. */
  unicastPort = 0;

  /** Binds and joins; on failure closes whatever it had opened and rejects with a NetError. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async open(): Promise<void> {
    const o = this.opts;
    const on = (via: 'group' | 'unicast') => (msg: Buffer, r: RemoteInfo): void => {
      const user = process.hrtime.bigint();
      // Our own warming datagram (warm.ts), looped back: nobody's business.
      if (msg.length === 0 && via === 'unicast' && r.port === this.unicastPort && r.address === LOOPBACK[this.family]) return;
      let live = true;
      let monoNs: bigint | null = null;
      const rx: RxTime = () => {
        if (monoNs === null) {
          // Asked too late, the kernel's stamp may be another datagram's: the user-space one then.
          const got = live ? this.stamp(via === 'group' ? this.groupFd : this.unicastFd, user, this.counters.rxStamps[via]) : { monoNs: user, source: 'user' as const };
          monoNs = got.monoNs;
          rx.source = got.source;
        }
        return monoNs;
      };
      try {
        this.receive(msg, { address: r.address, port: r.port }, rx, via);
      } finally {
        live = false;
      }
    };
    const onGroup = on('group');
    const onUnicast = on('unicast');
    // Several daemons on one host (the demo, tests) share the group port.
    const v6 = this.family === 6;
    const type = v6 ? 'udp6' : 'udp4';
    const any = v6 ? '::' : '0.0.0.0';
    const g = DgramAsPromised.createSocket({ type, ipv6Only: v6, reuseAddr: true, recvBufferSize: RECV_BUFFER_BYTES }, onGroup);
    this.groupSocket = g;
    try {
      await g.bind({ port: o.port, address: any, exclusive: false });
    } catch (err) {
      throw new NetError(`cannot bind the group port ${o.port}: ${describe(err)}`, '--port');
    }
    try {
      g.addMembership(o.group, this.ifSpec);
      if (this.ifSpec !== undefined) g.setMulticastInterface(this.ifSpec);
      g.setMulticastTTL(o.ttl);
      g.setMulticastLoopback(true);
    } catch (err) {
      throw new NetError(`cannot join ${o.group} on ${o.interfaceAddress || 'the interface its route names'}: ${describe(err)}`, '--interface');
    }
    const u = DgramAsPromised.createSocket({ type, ipv6Only: v6, recvBufferSize: RECV_BUFFER_BYTES }, onUnicast);
    this.unicastSocket = u;
    try {
      const addr = await u.bind({ port: o.unicastPort, address: any });
      this.unicastPort = addr.port;
    } catch (err) {
      throw new NetError(`cannot bind the unicast port ${o.unicastPort}: ${describe(err)}`, '--unicast-port');
    }
    for (const s of [g, u]) s.socket.on('error', (err) => this.onSendError(err));
    this.own = ownAddresses(o.interfaceAddress, this.family);
    this.ownReadMs = Date.now();
    this.recvBufferBytes = Math.min(g.socket.getRecvBufferSize(), u.socket.getRecvBufferSize());
    if (this.calls) {
      this.groupFd = socketFd(g.socket);
      this.unicastFd = socketFd(u.socket);
      // The first SIOCGSTAMPNS switches the socket's receive timestamps on
      // (it answers ENOENT: nothing received yet).
      for (const fd of [this.groupFd, this.unicastFd]) if (fd !== null) this.calls.lastRxRealNs(fd);
    }
  }

  /**
   * Whether a datagram's source address is one of this host's on the
   * group's interface (our own multicast, looped back). Addresses come and
   * go (IPv6 temporary addresses, DHCP): an unknown one re-reads the
   * interface's, at most once a second.
   */
  isOwnAddress(address: string): boolean {
    if (this.own.has(address)) return true;
    const now = Date.now();
    if (now - this.ownReadMs < 1000) return false;
    this.ownReadMs = now;
    this.own = ownAddresses(this.opts.interfaceAddress, this.family);
    return this.own.has(address);
  }

  private ownReadMs = 0;

  /** Whether receive timestamps can come from the kernel (FFI loaded, descriptors known). */
  get kernelStamps(): boolean {
    return this.stamper !== null && this.groupFd !== null && this.unicastFd !== null;
  }

  private stamp(fd: number | null, userMonoNs: bigint, counters: StampCounters): { monoNs: bigint; source: StampSource } {
    if (this.stamper && fd !== null) return this.stamper.stamp(fd, userMonoNs, counters);
    counters.user += 1;
    counters.missing += 1;
    return { monoNs: userMonoNs, source: 'user' };
  }

  /** The receive buffer the kernel granted (the smaller of the two sockets'), bytes as the kernel counts them. */
  recvBufferBytes = 0;

  /** Multicast to the group (from the group socket, so that the source port is the group port). */
  sendGroup(data: Buffer): void {
    this.sendOn(this.groupSocket, this.groupFd, data, this.opts.port, this.opts.group);
  }

  /**
   * Unicast from the unicast socket. stamp, if given, runs immediately
   * before the system call (it writes the transmit timestamp into data).
   */
  sendTo(data: Buffer, address: string, port: number, stamp?: () => void): void {
    this.sendOn(this.unicastSocket, this.unicastFd, data, port, address, stamp);
  }

  private sendOn(s: SocketAsPromised | null, fd: number | null, data: Buffer, port: number, address: string, stamp?: () => void): void {
    if (!s) return;
    // Straight to the system call. A failure sent nothing (UDP is all or
    // nothing), so Node's send then tries again and reports errors as usual.
    const direct = this.calls && fd !== null && port > 0 && port < 65536;
    const ip = direct && this.family === 4 ? parseIpv4(address) : null;
    const ip6 = direct && this.family === 6 && this.calls!.sendTo6 ? this.scopes.destination(address) : null;
    if (stamp && (ip !== null || ip6 !== null) && this.idle.cold(process.hrtime.bigint())) this.warm(fd!);
    else if (!stamp) this.idle.cold(process.hrtime.bigint());
    stamp?.();
    if ((ip !== null && this.calls!.sendTo(fd!, data, ip, port) === 0) || (ip6 !== null && this.calls!.sendTo6!(fd!, data, ip6.bytes, ip6.scopeId, port) === 0)) {
      this.counters.tx.direct += 1;
      return;
    }
    this.counters.tx.node += 1;
    // The raw socket's callback form: no promise to allocate on the hot path.
    // dgram throws at once on some arguments (port 0, a bad address).
    try {
      s.socket.send(data, port, address, (err) => {
        if (err) this.onSendError(err);
      });
    } catch (err) {
      this.onSendError(err as Error);
    }
  }

  private readonly idle = new SendIdle();
  /** Warming datagrams sent (warm.ts). */
  warmSends = 0;

  /**
   * Before a transmit stamp read outside the transport (an authenticated
   * message is stamped, then signed, then sent): warm a cold send path.
   */
  warmForStamp(): void {
    if (this.calls && this.unicastFd !== null && this.idle.cold(process.hrtime.bigint())) this.warm(this.unicastFd);
  }

  /** An empty datagram to our own unicast port on loopback, right before a cold stamped send (warm.ts). */
  private warm(fd: number): void {
    const c = this.calls!;
    if (this.family === 4) c.sendTo(fd, EMPTY_DATAGRAM, LOOPBACK_IPV4, this.unicastPort);
    else c.sendTo6?.(fd, EMPTY_DATAGRAM, LOOPBACK_IPV6, 0, this.unicastPort);
    this.warmSends += 1;
  }

  async stop(): Promise<void> {
    const sockets = [this.groupSocket, this.unicastSocket];
    this.groupSocket = this.unicastSocket = null;
    this.groupFd = this.unicastFd = null;
    await Promise.all(sockets.map(async (s) => s?.close().catch(() => undefined)));
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') return 'address in use (another program holds this port without sharing it)';
  if (e.code === 'EADDRNOTAVAIL') return 'no such address on this host';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'ENODEV') return 'no such interface';
  return e.message ?? String(err);
}

/**
 * The interface to join a group of `family` on (see resolveInterfaceOf in
 * groups.ts): for IPv4 its address, for IPv6 its name. Throws NetError
 * naming --interface if there is no such interface.
 */
export function resolveInterface(spec: string | undefined, family: Family = 4): string {
  try {
    return resolveInterfaceOf(spec, family);
  } catch (err) {
    throw new NetError((err as Error).message, '--interface');
  }
}

/** A UDP port that was free a moment ago on 127.0.0.1 (for the demo and tests). */
export async function freeUdpPort(): Promise<number> {
  const s = DgramAsPromised.createSocket('udp4');
  const { port } = await s.bind(0, '127.0.0.1');
  await s.close();
  return port;
}
