/**
 * Warming the send path before a transmit timestamp.
 *
 * A peer of a large group sends one time request a round, after a second
 * of idleness. Measured on loopback (a 2-vCPU VM, bench:scale --real 2
 * --probes 1, trace of every exchange in shared CLOCK_MONOTONIC): from the
 * transmit stamp t1 to the master's kernel receive stamp took 56..103 µs
 * (p10..p90, median 65 µs) for such a cold send, 6..8.5 µs once the same
 * system call had just run, while the reply path took 12..60 µs (median
 * 17 µs). The extra time of the cold send is all on the request side, so
 * every exchange said the peer was behind by half of it: the peers' clocks
 * ran ~20 µs ahead of the master (p50 = p99), 10 µs inside a busy group,
 * where the master's replies are warm. A burst of two probes or more
 * discards its first exchange (the warm-up); a burst of one cannot.
 *
 * So a stamped send after an idle spell first sends an empty datagram to
 * our own socket on the loopback address: the system call, the UDP send
 * path and the socket's memory are warm when the stamp is read. It costs
 * this host one more sendto(2) and one empty receive (the transport drops
 * it before the daemon sees it), and a busy master, which sends more often
 * than WARM_AFTER_NS, never pays it. On a real NIC the driver's part of
 * the path stays cold; the rest is warmed all the same.
 */

/** A stamped send this long after the previous send of the transport warms the path first. */
export const WARM_AFTER_NS = 1_000_000n;

export const EMPTY_DATAGRAM = new Uint8Array(0);

/** Where the warming datagram goes: our own port on the loopback address of the family. */
export const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;

/** Whether a send at monoNs comes after an idle spell; remembers it as the last send. */
export class SendIdle {
  private lastNs: bigint | null = null;

  constructor(private readonly afterNs: bigint = WARM_AFTER_NS) {}

  cold(monoNs: bigint): boolean {
    const last = this.lastNs;
    this.lastNs = monoNs;
    return last === null || monoNs - last > this.afterNs;
  }
}
