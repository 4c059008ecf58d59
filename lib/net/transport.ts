/**
 * UDP transport: the group socket (multicast, shared port) and the unicast
 * socket (exchanges and reports). The only module that opens UDP sockets.
 *
 * Receive timestamps are taken first thing in the socket callback, before
 * anything else runs, and handed up with the raw bytes; this module never
 * decodes. Errors are sorted as multicast-dns does: failing to bind or join
 * is fatal (start() rejects with a NetError naming what failed); a send
 * error is reported and the datagram dropped.
 */
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import type { RemoteInfo } from 'node:dgram';
import { networkInterfaces } from 'node:os';

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

export interface TransportOptions {
  /** IPv4 multicast group, e.g. 239.255.77.1. */
  group: string;
  port: number;
  /** IPv4 address of the interface to join the group on and send from. */
  interfaceAddress: string;
  /** Unicast port; 0: any free port. */
  unicastPort: number;
  /** Multicast TTL; 1 keeps datagrams on the LAN. */
  ttl: number;
}

/** rxMonoNs: process.hrtime.bigint() read first thing on arrival. */
export type Receiver = (data: Buffer, from: { address: string; port: number }, rxMonoNs: bigint, via: 'group' | 'unicast') => void;

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

  constructor(
    private readonly opts: TransportOptions,
    private readonly receive: Receiver,
    private readonly onSendError: (err: Error) => void,
  ) {}

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
    const onGroup = (msg: Buffer, r: RemoteInfo): void => {
      const rx = process.hrtime.bigint();
      this.receive(msg, { address: r.address, port: r.port }, rx, 'group');
    };
    const onUnicast = (msg: Buffer, r: RemoteInfo): void => {
      const rx = process.hrtime.bigint();
      this.receive(msg, { address: r.address, port: r.port }, rx, 'unicast');
    };
    // Several daemons on one host (the demo, tests) share the group port.
    const g = DgramAsPromised.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: RECV_BUFFER_BYTES }, onGroup);
    this.groupSocket = g;
    try {
      await g.bind({ port: o.port, address: '0.0.0.0', exclusive: false });
    } catch (err) {
      throw new NetError(`cannot bind the group port ${o.port}: ${describe(err)}`, '--port');
    }
    try {
      g.addMembership(o.group, o.interfaceAddress);
      g.setMulticastInterface(o.interfaceAddress);
      g.setMulticastTTL(o.ttl);
      g.setMulticastLoopback(true);
    } catch (err) {
      throw new NetError(`cannot join ${o.group} on ${o.interfaceAddress}: ${describe(err)}`, '--interface');
    }
    const u = DgramAsPromised.createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER_BYTES }, onUnicast);
    this.unicastSocket = u;
    try {
      const addr = await u.bind({ port: o.unicastPort, address: '0.0.0.0' });
      this.unicastPort = addr.port;
    } catch (err) {
      throw new NetError(`cannot bind the unicast port ${o.unicastPort}: ${describe(err)}`, '--unicast-port');
    }
    for (const s of [g, u]) s.socket.on('error', (err) => this.onSendError(err));
    this.recvBufferBytes = Math.min(g.socket.getRecvBufferSize(), u.socket.getRecvBufferSize());
  }

  /** The receive buffer the kernel granted (the smaller of the two sockets'), bytes as the kernel counts them. */
  recvBufferBytes = 0;

  /** Multicast to the group (from the group socket, so that the source port is the group port). */
  sendGroup(data: Buffer): void {
    this.sendOn(this.groupSocket, data, this.opts.port, this.opts.group);
  }

  /** Unicast from the unicast socket. */
  sendTo(data: Buffer, address: string, port: number): void {
    this.sendOn(this.unicastSocket, data, port, address);
  }

  private sendOn(s: SocketAsPromised | null, data: Buffer, port: number, address: string): void {
    if (!s) return;
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

  async stop(): Promise<void> {
    const sockets = [this.groupSocket, this.unicastSocket];
    this.groupSocket = this.unicastSocket = null;
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
 * The IPv4 address of an interface given by name or address. With nothing
 * given: the first IPv4 address of a non-loopback interface, else 127.0.0.1.
 * Throws NetError naming --interface if there is no such interface.
 */
export function resolveInterface(spec: string | undefined): string {
  const all = networkInterfaces();
  const v4 = Object.entries(all).flatMap(([name, addrs]) =>
    (addrs ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ name, address: a.address, internal: a.internal })),
  );
  if (spec === undefined || spec === '') return v4.find((a) => !a.internal)?.address ?? '127.0.0.1';
  const hit = v4.find((a) => a.name === spec || a.address === spec);
  if (hit) return hit.address;
  const have = [...new Set(v4.map((a) => `${a.name} (${a.address})`))].join(', ');
  throw new NetError(`no IPv4 interface "${spec}" on this host (have: ${have || 'none'})`, '--interface');
}

/** A UDP port that was free a moment ago on 127.0.0.1 (for the demo and tests). */
export async function freeUdpPort(): Promise<number> {
  const s = DgramAsPromised.createSocket('udp4');
  const { port } = await s.bind(0, '127.0.0.1');
  await s.close();
  return port;
}
