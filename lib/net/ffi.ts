/**
 * The foreign calls of lib/net, through koffi (the FFI the system clock
 * uses too): the kernel's receive timestamp of the datagram a socket just
 * delivered (SIOCGSTAMPNS: the same for AF_INET and AF_INET6 sockets),
 * CLOCK_REALTIME, and sendto(2) on a socket's descriptor to a sockaddr_in or
 * a sockaddr_in6.
 *
 * Linux only (x86_64 and arm64 layouts: struct timespec is two 64-bit
 * fields). loadSocketCalls() returns null where libc or koffi cannot be
 * loaded; the transport then keeps user-space stamps and Node's send.
 * Tests fake SocketCalls instead of calling this.
 */
import { createRequire } from 'node:module';

export interface SocketCalls {
  /**
   * SIOCGSTAMPNS: CLOCK_REALTIME (ns) at which the kernel received the last
   * datagram this socket delivered to user space; null when it has none
   * (ENOENT: nothing delivered since timestamping was switched on). The
   * first call switches the socket's receive timestamps on.
   */
  lastRxRealNs(fd: number): bigint | null;
  /** clock_gettime(CLOCK_REALTIME) in ns. */
  realNs(): bigint;
  /**
   * sendto(2) of data to an IPv4 address (host byte order) and port: 0 when
   * the kernel took the datagram, else the errno (EAGAIN: the socket buffer
   * is full; the caller may queue it by other means).
   */
  sendTo(fd: number, data: Uint8Array, ipv4: number, port: number): number;
  /**
   * The same to an IPv6 address (16 bytes, network order) with its scope
   * (interface index; 0 for a global address), from an AF_INET6 socket.
   * Optional: without it IPv6 datagrams go through Node's send.
   */
  sendTo6?(fd: number, data: Uint8Array, ipv6: Uint8Array, scopeId: number, port: number): number;
  /** if_nametoindex(3): the index of a network interface, 0 if there is none of that name. */
  ifIndex?(name: string): number;
}

const SIOCGSTAMPNS = 0x8907;
const CLOCK_REALTIME = 0;
const AF_INET = 2;
const AF_INET6 = 10;

let cached: SocketCalls | null | undefined;

/** The real calls, loaded once; null where they cannot be had (and why, in loadError). */
export function loadSocketCalls(): SocketCalls | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.platform !== 'linux') {
    loadError = `receive timestamps from the kernel need Linux (this is ${process.platform})`;
    return null;
  }
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    koffi.struct('berkeleyd_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
    const ioctl = libc.func('int ioctl(int fd, unsigned long request, _Out_ berkeleyd_timespec *ts)');
    const clockGettime = libc.func('int clock_gettime(int clk, _Out_ berkeleyd_timespec *ts)');
    const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
    const ifNametoindex = libc.func('unsigned int if_nametoindex(const char *name)');
    const ts = { tv_sec: 0, tv_nsec: 0 };
    const toNs = (t: { tv_sec: number | bigint; tv_nsec: number | bigint }): bigint => BigInt(t.tv_sec) * 1_000_000_000n + BigInt(t.tv_nsec);
    // One sockaddr_in per destination: the hot path allocates nothing.
    const addrs = new Map<string, Buffer>();
    const sockaddr = (ipv4: number, port: number): Buffer => {
      const key = `${ipv4}:${port}`;
      let b = addrs.get(key);
      if (!b) {
        b = Buffer.alloc(16);
        b.writeUInt16LE(AF_INET, 0); // sa_family_t, host order (little-endian on the supported machines)
        b.writeUInt16BE(port, 2);
        b.writeUInt32BE(ipv4 >>> 0, 4);
        if (addrs.size > 4096) addrs.clear();
        addrs.set(key, b);
      }
      return b;
    };
    // One sockaddr_in6 per destination too: family, port, flowinfo 0, address, scope id.
    const addrs6 = new Map<string, Buffer>();
    const sockaddr6 = (ipv6: Uint8Array, scopeId: number, port: number): Buffer => {
      const key = `${Buffer.from(ipv6).toString('hex')}%${scopeId}:${port}`;
      let b = addrs6.get(key);
      if (!b) {
        b = Buffer.alloc(28);
        b.writeUInt16LE(AF_INET6, 0);
        b.writeUInt16BE(port, 2);
        b.set(ipv6.subarray(0, 16), 8);
        b.writeUInt32LE(scopeId >>> 0, 24); // sin6_scope_id, host order
        if (addrs6.size > 4096) addrs6.clear();
        addrs6.set(key, b);
      }
      return b;
    };
    const result = (n: number, length: number): number => (n === length ? 0 : n < 0 ? koffi.errno() || -1 : -1);
    cached = {
      lastRxRealNs(fd) {
        return ioctl(fd, SIOCGSTAMPNS, ts) === 0 ? toNs(ts) : null;
      },
      realNs() {
        clockGettime(CLOCK_REALTIME, ts);
        return toNs(ts);
      },
      sendTo(fd, data, ipv4, port) {
        return result(Number(sendto(fd, data, data.length, 0, sockaddr(ipv4, port), 16)), data.length);
      },
      sendTo6(fd, data, ipv6, scopeId, port) {
        return result(Number(sendto(fd, data, data.length, 0, sockaddr6(ipv6, scopeId, port), 28)), data.length);
      },
      ifIndex(name) {
        return Number(ifNametoindex(name));
      },
    };
    loadError = null;
  } catch (err) {
    loadError = `cannot load libc through koffi: ${(err as Error).message}`;
  }
  return cached;
}

/** Why loadSocketCalls() returned null; null when it did not. */
export let loadError: string | null = null;

/** The file descriptor of a bound node:dgram socket (Linux), or null. */
export function socketFd(socket: object): number | null {
  // dgram keeps its handle under a symbol; `_handle` is the deprecated
  // alias of the same (reading it prints a deprecation warning).
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description !== 'state symbol') continue;
    const fd = (socket as Record<symbol, { handle?: { fd?: number } } | undefined>)[sym]?.handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : null;
  }
  return null;
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number; null if it is not one. */
export function parseIpv4(address: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m) return null;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return null;
    n = n * 256 + b;
  }
  return n;
}
