/**
 * Is the bound in ClockBound's segment honest in the UML guests? Pure
 * bookkeeping over what the guests wrote: each guest's C reader samples
 * (helpers/clockbound-reader.c "sample" lines: its CLOCK_MONOTONIC_RAW,
 * CLOCK_REALTIME and the bound read from the segment at that instant), and
 * the master's remaining slew sampled through its control socket.
 *
 * The ground truth is sysclock-uml.test.ts's: a guest's raw clock is this
 * machine's CLOCK_MONOTONIC plus a constant, and the probes' delay bases
 * give each guest's constant (to the difference of their quickest
 * deliveries, a few µs), so every reading lands on one time line. There
 * the group's time (docs/protocol.md, "Error bound") is the master's
 * clock, interpolated between its own reader's samples 2 ms apart, plus
 * what it has yet to slew; a guest's error is its CLOCK_REALTIME minus that.
 */

/** The master's sampler (python3 in the guest): its remaining slew ("reading" on the control socket), with the guest's raw clock around each query. */
export const PENDING_SAMPLER = `import json, socket, sys, time
path, dur = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + dur
while time.monotonic() < end:
    raw1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b'reading\\n')
    buf = b''
    while not buf.endswith(b'\\n'):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    raw2 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
    s.close()
    r = json.loads(buf)
    print('P %d %s %d' % ((raw1 + raw2) // 2, r['clock']['pendingNs'], raw2 - raw1), flush=True)
    time.sleep(0.004)
`;

interface Reading {
  raw: bigint;
  real: bigint;
  status: number;
  boundNs: number;
  widthNs: number;
}

export interface BoundSample {
  guest: number;
  status: number;
  boundNs: number;
  errorNs: number;
  /**
   * How far the harness's own reading of the error may be off: the widths
   * of the reader's and of the master's readings (the time between their
   * two clock reads). A pair counts as over its bound only when it is so
   * beyond this.
   */
  uncertaintyNs: number;
}

export interface BoundSamples {
  samples: BoundSample[];
  skipped: Record<string, number>;
}

/** A reading whose raw clock is this uncertain (preempted between its reads) is left out, ns. */
const MAX_WIDTH_NS = 100_000;
/** The master's readings around an instant must be this close, ns. */
const MAX_GAP_NS = 20_000_000n;

function readings(text: string): Reading[] {
  const out: Reading[] = [];
  for (const l of text.split('\n')) {
    const f = l.split(' ');
    if (f[0] !== 'S' || f.length < 10) continue;
    out.push({ raw: BigInt(f[1]!), real: BigInt(f[2]!), status: Number(f[5]), boundNs: Number(f[6]), widthNs: Number(f[8]) });
  }
  return out.sort((a, b) => (a.raw < b.raw ? -1 : a.raw > b.raw ? 1 : 0));
}

/** The last index i with xs[i].raw ≤ raw, or -1. */
function before<T extends { raw: bigint }>(xs: readonly T[], raw: bigint): number {
  let lo = 0;
  let hi = xs.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]!.raw <= raw) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return at;
}

/** Linear interpolation of y at x between (x0, y0) and (x1, y1), all ns. */
function lerp(x0: bigint, y0: bigint, x1: bigint, y1: bigint, x: bigint): bigint {
  return x1 === x0 ? y0 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
}

/**
 * Every guest reading with the guest's error against the group's time.
 * readerTexts: each guest's reader output, guest 0 the master's; pendingText:
 * the master's sampler output; bases: each guest's raw clock minus this
 * machine's monotonic clock (sysclock-uml.test.ts's delay bases).
 */
export function boundSamplesFrom(readerTexts: readonly string[], pendingText: string, bases: readonly bigint[]): BoundSamples {
  // Only the master's readings whose raw clock is sure carry its clock: a preempted one would misplace it by up to its width.
  const master = readings(readerTexts[0] ?? '').filter((r) => r.widthNs <= MAX_WIDTH_NS);
  const pending: Array<{ raw: bigint; ns: bigint }> = [];
  for (const l of pendingText.split('\n')) {
    const f = l.split(' ');
    if (f[0] === 'P' && f.length >= 4 && Number(f[3]) <= MAX_WIDTH_NS * 50) pending.push({ raw: BigInt(f[1]!), ns: BigInt(f[2]!) });
  }
  const skipped: Record<string, number> = {};
  const skip = (why: string): void => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  const samples: BoundSample[] = [];
  for (const [g, text] of readerTexts.entries()) {
    for (const r of readings(text)) {
      if (r.widthNs > MAX_WIDTH_NS) {
        skip('reader preempted between its clock reads');
        continue;
      }
      // The same instant on the master's raw clock.
      const rawM = r.raw - bases[g]! + bases[0]!;
      const i = before(master, rawM);
      const a = master[i];
      const b = master[i + 1] ?? (a && a.raw === rawM ? a : undefined);
      if (!a || !b || b.raw - a.raw > MAX_GAP_NS) {
        skip("no master reading within 20 ms");
        continue;
      }
      const realM = lerp(a.raw, a.real, b.raw, b.real, rawM);
      const j = before(pending, rawM);
      const p = pending[j];
      const q = pending[j + 1];
      if (!p || !q) {
        skip("outside the master's slew samples");
        continue;
      }
      // A slew only shrinks toward 0; a sample that grew or changed sign means a new correction came in between: when is unknown.
      const grew = q.ns !== 0n && (q.ns > 0n !== p.ns > 0n || (q.ns > 0n ? q.ns : -q.ns) > (p.ns > 0n ? p.ns : -p.ns) + 1000n);
      if (grew) {
        skip('a correction of the master between its slew samples');
        continue;
      }
      const group = realM + lerp(p.raw, p.ns, q.raw, q.ns, rawM);
      samples.push({ guest: g, status: r.status, boundNs: r.boundNs, errorNs: Number(r.real - group), uncertaintyNs: r.widthNs + Math.max(a.widthNs, b.widthNs) });
    }
  }
  return { samples, skipped };
}

export interface BoundTally {
  pairs: number;
  violations: number;
  /** Pairs over their bound by less than the harness's own uncertainty (not counted as violations). */
  withinUncertainty: number;
  perGuest: number[];
  statuses: Record<string, number>;
  skipped: number;
  skipReasons: string;
  medianBoundNs: number;
  medianErrorNs: number;
  p99ErrorNs: number;
  maxErrorNs: number;
  worstFraction: number;
  examples: BoundSample[];
}

/** Pairs with a bound (status 1 synchronized or 2 free running) and where |error| exceeds it. */
export function tallyBound(s: BoundSamples): BoundTally {
  const statuses: Record<string, number> = {};
  for (const x of s.samples) statuses[x.status] = (statuses[x.status] ?? 0) + 1;
  const kept = s.samples.filter((x) => x.status === 1 || x.status === 2);
  const bad = kept.filter((x) => Math.abs(x.errorNs) - x.uncertaintyNs > x.boundNs);
  const unsure = kept.filter((x) => Math.abs(x.errorNs) > x.boundNs).length - bad.length;
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const errs = sorted(kept.map((x) => Math.abs(x.errorNs)));
  const bounds = sorted(kept.map((x) => x.boundNs));
  const at = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  const perGuest: number[] = [];
  for (const x of kept) perGuest[x.guest] = (perGuest[x.guest] ?? 0) + 1;
  const skippedN = Object.values(s.skipped).reduce((a, b) => a + b, 0);
  return {
    pairs: kept.length,
    violations: bad.length,
    withinUncertainty: unsure,
    perGuest: [...perGuest].map((n) => n ?? 0),
    statuses,
    skipped: skippedN,
    skipReasons: Object.entries(s.skipped).map(([k, v]) => `${v}: ${k}`).join('; ') || 'none',
    medianBoundNs: at(bounds, 0.5),
    medianErrorNs: at(errs, 0.5),
    p99ErrorNs: at(errs, 0.99),
    maxErrorNs: errs.at(-1) ?? NaN,
    worstFraction: kept.reduce((m, x) => Math.max(m, Math.abs(x.errorNs) / x.boundNs), 0),
    examples: bad.slice(0, 10),
  };
}
