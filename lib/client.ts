/**
 * berkeleyd/client: the error bound for Node programs, read from ClockBound's
 * shared-memory segment (protocol v2) that `berkeleyd run --clock system
 * --clockbound PATH` writes (or ClockBound's own daemon: the format is one).
 *
 *   import { now } from 'berkeleyd/client';
 *   const { earliest, latest, status } = now();   // bigint ns since the epoch
 *
 * now(path?) opens the segment once per path (default: BERKELEYD_CLOCKBOUND,
 * else ClockBound's /var/run/clockbound/shm0) and keeps it mapped; each call
 * then costs a clock reading, no round trip to the daemon. It throws a
 * ClockBoundError when the segment is missing or not one. Trust the interval
 * only while status is 'synchronized' or 'free-running'.
 */
import { ClockBoundReader, defaultSegmentPath, type TimeBound } from './clock/clockbound-reader.js';

export { ClockBoundError, ClockBoundReader, defaultSegmentPath } from './clock/clockbound-reader.js';
export type { BoundStatus, TimeBound } from './clock/clockbound-reader.js';

const readers = new Map<string, ClockBoundReader>();

/** [earliest, latest] of true time now, and the status, from the segment at path. */
export function now(path: string = defaultSegmentPath()): TimeBound {
  let r = readers.get(path);
  if (!r) {
    r = new ClockBoundReader(path);
    readers.set(path, r);
  }
  return r.now();
}
