/**
 * Is the error bound honest? The simulator knows every true clock; at each
 * ground-truth sample it asks every live node its bound and compares it with
 * the node's distance from the group's time.
 *
 * The group's time (docs/protocol.md, "Error bound") is the master's clock
 * with its own adjustment applied: the master's clock plus what it has yet to
 * slew. At an instant with no live master (after a crash, until the next
 * one is elected) there is none, and the pairs are only counted. A
 * pair (node, instant) counts when the node gives a bound ('synchronized'
 * or 'free-running'); a violation is |clock − group time| > bound. Nodes
 * with a fault are tallied apart: a clock stepped from outside cannot know
 * it until its next measurement.
 */
import type { ErrorBound } from '../core/types.js';

export interface BoundHonesty {
  /** Pairs of good nodes with a bound, and those where |error| > bound. */
  samples: number;
  violations: number;
  /** Pairs in state 'none' (not counted), and pairs in 'free-running' (counted). */
  none: number;
  freeRunning: number;
  /** Pairs at instants with no live master: no group's time to compare with (not counted). */
  noGroup: number;
  medianBoundNs: number | null;
  medianErrorNs: number | null;
  /** medianBoundNs / medianErrorNs. */
  ratio: number | null;
  /** The largest |error| / bound seen (≤ 1 when honest). */
  worstFraction: number | null;
  /** The same for the nodes with a fault. */
  faulty: { samples: number; violations: number; none: number };
}

export class HonestyTally {
  private readonly bounds: number[] = [];
  private readonly errors: number[] = [];
  private violations = 0;
  private none = 0;
  private freeRunning = 0;
  private noGroup = 0;
  private worst = 0;
  private readonly faulty = { samples: 0, violations: 0, none: 0 };

  /** One instant: the group's time (null: no master), and each live node's clock, bound and whether it has a fault. */
  sample(groupNs: bigint | null, nodes: readonly { clockNs: bigint; bound: ErrorBound; faulty: boolean }[]): void {
    if (groupNs === null) {
      this.noGroup += nodes.length;
      return;
    }
    for (const x of nodes) {
      const b = x.bound.boundNs;
      if (b === null) {
        if (x.faulty) this.faulty.none += 1;
        else this.none += 1;
        continue;
      }
      const err = Math.abs(Number(x.clockNs - groupNs));
      const over = err > Number(b);
      if (x.faulty) {
        this.faulty.samples += 1;
        if (over) this.faulty.violations += 1;
        continue;
      }
      if (x.bound.state === 'free-running') this.freeRunning += 1;
      if (over) this.violations += 1;
      this.bounds.push(Number(b));
      this.errors.push(err);
      if (b > 0n) this.worst = Math.max(this.worst, err / Number(b));
    }
  }

  result(): BoundHonesty {
    const med = (xs: number[]): number | null => {
      if (xs.length === 0) return null;
      const s = Float64Array.from(xs).sort();
      return s[s.length >> 1]!;
    };
    const mb = med(this.bounds);
    const me = med(this.errors);
    return {
      samples: this.bounds.length,
      violations: this.violations,
      none: this.none,
      freeRunning: this.freeRunning,
      noGroup: this.noGroup,
      medianBoundNs: mb,
      medianErrorNs: me === null ? null : Math.round(me),
      ratio: mb !== null && me ? mb / me : null,
      worstFraction: this.bounds.length ? this.worst : null,
      faulty: { ...this.faulty },
    };
  }
}
