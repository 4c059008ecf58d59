/**
 * The error bound as `berkeleyd now`, `status` and the metrics show it
 * (pure): [earliest, latest] of the group's time around a reading of this
 * clock, the bound, its state and why (lib/core/bound.ts computes it;
 * docs/protocol.md, "Error bound", says what it promises).
 */
import { interval } from '../core/bound.js';
import type { ErrorBound } from '../core/types.js';
import { magnitude } from '../table.js';

export type BoundState = ErrorBound['state'];
export const BOUND_STATES: readonly BoundState[] = ['synchronized', 'free-running', 'none'];

/** The fields `now --json` and `status --json` carry: ns as decimal strings, null without a bound. */
export interface BoundJson {
  earliestNs: string | null;
  latestNs: string | null;
  errorBoundNs: string | null;
  boundState: BoundState;
  /** Why there is no bound, or why the group counts as lost ('free-running'); null when synchronized. */
  boundWhy: string | null;
  /** How fast the bound grows after this reading, ppb (the drift assumed). */
  boundDriftPpb: number;
}

export function boundJson(groupTimeNs: bigint, b: ErrorBound): BoundJson {
  const iv = interval(groupTimeNs, b);
  return {
    earliestNs: iv ? iv.earliestNs.toString() : null,
    latestNs: iv ? iv.latestNs.toString() : null,
    errorBoundNs: b.boundNs === null ? null : b.boundNs.toString(),
    boundState: b.state,
    boundWhy: b.why,
    boundDriftPpb: b.driftPpb,
  };
}

/** "± 12.3 µs (synchronized)", or "none (not yet synchronized)". */
export function formatBound(j: Pick<BoundJson, 'errorBoundNs' | 'boundState' | 'boundWhy' | 'boundDriftPpb'>): string {
  if (j.errorBoundNs === null) return `none (${j.boundWhy ?? 'no bound'})`;
  const why = j.boundWhy ? `: ${j.boundWhy}` : '';
  return `± ${magnitude(BigInt(j.errorBoundNs))} (${j.boundState}${why}; grows at ${j.boundDriftPpb / 1000} ppm)`;
}
