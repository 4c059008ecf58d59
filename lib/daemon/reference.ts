/**
 * `--reference`: the daemon's side of an external reference. It opens the
 * reference (lib/clock/reference.ts: the system clock read-only, or a
 * simulated one described by a file), gives the engine a tracker that
 * compares the group clock with it each round (lib/core/reference.ts),
 * and says what happens: the log, the status object and the metrics.
 */
import { fileReference, findTimeDaemons, systemReference, type ReferenceClock } from '../clock/index.js';
import type { ClockView } from '../clock/index.js';
import type { Node } from '../core/node.js';
import { ReferenceTracker, type ReferenceStatus } from '../core/reference.js';
import type { Notice } from '../core/types.js';
import { formatDurationNs } from '../units.js';

export interface ReferenceOptions {
  /** 'system': the host's CLOCK_REALTIME as another service disciplines it; 'file': a simulated reference (tests). */
  kind: 'system' | 'file';
  /** kind 'file': the JSON file describing it (lib/clock/reference.ts, ReferenceFile). */
  path?: string;
  /** The reference counts as lost when its maxerror exceeds this, ns (--reference-max-error). */
  maxErrorNs: bigint;
}

/** What status --json shows under "reference" (null without --reference). */
export interface ReferenceJson {
  kind: 'system' | 'file';
  /** following: the group's time is the reference's; returning: slewing back to it; lost: the Berkeley average. */
  state: ReferenceStatus['state'];
  why: string | null;
  /** The group clock minus the reference at the last round, ns; null before the first reading. */
  offsetNs: string | null;
  maxErrorNs: string | null;
  maxErrorBoundNs: string;
  losses: number;
}

export class ReferenceLink {
  readonly tracker: ReferenceTracker;
  private readonly source: ReferenceClock;

  constructor(
    private readonly o: ReferenceOptions,
    clock: ClockView,
    node: Node,
  ) {
    this.source = o.kind === 'file' ? fileReference(o.path!) : systemReference();
    const source = this.source;
    this.tracker = new ReferenceTracker(() => {
      try {
        const r = source.read();
        return { offsetNs: clock.at(r.monoNs) - r.timeNs, unsync: r.unsync, maxErrorNs: r.maxErrorNs };
      } catch (err) {
        return { error: (err as Error).message };
      }
    }, o.maxErrorNs);
    node.ctx.reference = this.tracker;
  }

  /** The start line: which reference, and who seems to discipline it. */
  describe(): string {
    if (this.o.kind === 'file') return `following a simulated reference described by ${this.o.path} (tests)`;
    const services = findTimeDaemons().map((d) => `${d.name} (pid ${d.pid})`);
    const by = services.length ? `disciplined by ${services.join(', ')}` : 'no time service seen in /proc (ptp4l and phc2sys, or a GPS daemon, may run under another name)';
    return `following the system clock as a reference, read only, never set: ${by}; lost when the kernel reports STA_UNSYNC or maxerror exceeds ${formatDurationNs(this.o.maxErrorNs)}`;
  }

  /** The log line for a reference notice. */
  static message(n: Extract<Notice, { kind: 'reference' }>): string {
    if (n.state === 'lost') return `reference lost in round ${n.round}: ${n.why}; the group runs on the Berkeley average until it is back`;
    if (n.state === 'returning') return `reference back in round ${n.round}: the group slews to it, at most 250 ppm of the interval per round`;
    return `the group follows the reference (round ${n.round})`;
  }

  json(): ReferenceJson {
    const s = this.tracker.status();
    const str = (x: bigint | null): string | null => (x === null ? null : x.toString());
    return { kind: this.o.kind, state: s.state, why: s.why, offsetNs: str(s.offsetNs), maxErrorNs: str(s.maxErrorNs), maxErrorBoundNs: this.o.maxErrorNs.toString(), losses: s.losses };
  }
}
