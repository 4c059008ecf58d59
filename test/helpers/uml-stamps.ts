/**
 * Comparing the UML guests' CLOCK_REALTIME (helpers/uml.ts) with probes:
 * one broadcast frame that every guest's kernel stamps, with the guest's
 * raw clock (this machine's monotonic clock plus a constant) beside it, so
 * that each guest's clock can be carried back to the instant the probe was
 * sent. Shared by the tests that run daemons in guests.
 */
import type { UmlLan } from './uml.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Row {
  /** performance.now() when the probe was sent. */
  sentMs: number;
  /** Each guest's CLOCK_REALTIME when its kernel received the probe, ns. */
  stamps: bigint[];
  /** Each guest's CLOCK_REALTIME at the instant the probe was sent, ns (delivery delay taken out; null: not measurable). */
  atSend: bigint[] | null;
}

/** A stamp whose raw-clock reading is this uncertain (the stamper was preempted between its reads) is not delay-corrected. */
export const MAX_RAW_ERROR_NS = 100_000;

export class Prober {
  private seq = 0;
  /** Probe number → this machine's CLOCK_MONOTONIC just before it was sent, ns, and performance.now(). */
  private readonly sentMono = new Map<number, bigint>();
  private readonly sentMs = new Map<number, number>();

  constructor(private readonly lan: UmlLan) {}

  /** n probes gapMs apart; resolves with their numbers once the last has had time to arrive. */
  async probes(n: number, gapMs: number): Promise<number[]> {
    const sent: number[] = [];
    for (let i = 0; i < n; i++) {
      this.sentMono.set(this.seq, process.hrtime.bigint());
      this.sentMs.set(this.seq, performance.now());
      this.lan.sendProbe(this.seq);
      sent.push(this.seq++);
      await sleep(gapMs);
    }
    await sleep(300);
    return sent;
  }

  /** This machine's CLOCK_MONOTONIC just before each of these probes was sent, ns. */
  sentMonoOf(seqs: readonly number[]): Map<number, bigint> {
    return new Map(seqs.filter((s) => this.sentMono.has(s)).map((s) => [s, this.sentMono.get(s)!]));
  }

  /**
   * Each guest's delay base: the least (raw clock at receipt − this
   * machine's monotonic clock at sending) over every probe so far whose raw
   * reading is known (the stamper marks those it read across a step of the
   * guest's clock). The raw clock is this machine's monotonic clock plus a
   * constant, so this is the constant plus the least delivery time.
   */
  delayBases(): bigint[] {
    return this.lan.guests.map((g) => {
      let least: bigint | null = null;
      for (const st of g.stamps) {
        const sent = this.sentMono.get(st.seq);
        if (sent === undefined || st.rawErrorNs > MAX_RAW_ERROR_NS) continue;
        const d = st.rawNs - sent;
        if (least === null || d < least) least = d;
      }
      return least ?? 0n;
    });
  }

  /**
   * Each probe's stamps in guest order (only probes every guest stamped),
   * and each guest's clock at the instant the probe was sent: its stamp less
   * how much longer than its quickest delivery this one took, measured on
   * its raw clock. The delivery jitter (hundreds of µs to ms here) so drops
   * out; what remains is the difference between the guests' quickest
   * deliveries and the raw reads' uncertainty, a few µs.
   */
  stampsOf(sent: number[]): Row[] {
    const maps = this.lan.guests.map((g) => new Map(g.stamps.map((s) => [s.seq, s])));
    const base = this.delayBases();
    const out: Row[] = [];
    for (const s of sent) {
      const v = maps.map((m) => m.get(s));
      if (!v.every((x) => x !== undefined)) continue;
      const mono = this.sentMono.get(s)!;
      const ok = v.every((x) => x!.rawErrorNs <= MAX_RAW_ERROR_NS);
      const atSend = ok ? v.map((x, g) => x!.realtimeNs - (x!.rawNs - mono - base[g]!)) : null;
      out.push({ sentMs: this.sentMs.get(s)!, stamps: v.map((x) => x!.realtimeNs), atSend });
    }
    return out;
  }
}

export const spreadNs = (v: readonly bigint[]): number => Number(v.reduce((a, b) => (a > b ? a : b)) - v.reduce((a, b) => (a < b ? a : b)));

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const us = (ns: number): string => `${(ns / 1000).toFixed(0)} µs`;

export const stats = (xs: number[]): string => `p50 ${us(pct(xs, 50))}, p99 ${us(pct(xs, 99))}, max ${us(Math.max(...xs))}`;
