/**
 * Who should be master (pure).
 *
 * Masters and claims are ordered by (epoch, priority, node id): a higher
 * epoch wins, then a higher priority, then the lower node id. The order is
 * total, so every node that hears the same two contenders picks the same
 * one; that is what makes the winner deterministic and what leaves one
 * master after a partition heals (the side with the newer epoch wins, and
 * equal epochs fall to priority and id).
 *
 * Timing, in intervals of the master being followed (or our own, before any):
 *   - a node that has heard no valid SYNC, and no reply to its exchanges,
 *     for ELECTION_TIMEOUT (plus up to ELECTION_JITTER, so that nodes do not
 *     all claim at once) probes its master by unicast; if no reply comes
 *     within LIVENESS_WINDOW, it claims mastership of epoch + 1, unless its
 *     priority is 0;
 *   - at start, a node listens for STARTUP_WAIT (plus jitter) first, so that
 *     it joins a running group instead of claiming;
 *   - a candidate that hears no better claim and no SYNC for CLAIM_WINDOW
 *     becomes master.
 * A master that hears a claim answers with a SYNC at once, which makes the
 * claimants stand down: a live master keeps its place. Peers that still hear
 * their master leave claims to it; peers whose master went quiet compete,
 * so that the best node wins rather than the first to time out.
 */

export interface Credentials {
  epoch: number;
  priority: number;
  node: bigint;
}

/** Positive if a is the better master, negative if b is, 0 if they are the same node and epoch. */
export function compareCredentials(a: Credentials, b: Credentials): number {
  if (a.epoch !== b.epoch) return a.epoch - b.epoch;
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.node < b.node ? 1 : a.node > b.node ? -1 : 0;
}

export const ELECTION_TIMEOUT = 1.5;
export const ELECTION_JITTER = 0.3;
export const STARTUP_WAIT = 1.0;
export const CLAIM_WINDOW = 0.2;
/** A master heard within this many intervals is alive: its peers leave claims to it. */
export const FRESH_MASTER = 1.25;
/**
 * A peer whose master's SYNCs stopped for ELECTION_TIMEOUT first asks the
 * master directly (a few unicast exchanges) and waits this long for an
 * answer before it claims: lost multicast alone never deposes a master that
 * still answers. Failover takes this much longer.
 */
export const LIVENESS_WINDOW = 0.5;

/** Interval multiple -> ns, with jitter drawn from random() in [0, 1). */
export function span(intervalNs: bigint, multiple: number, jitter = 0, random = 0): bigint {
  return BigInt(Math.round(Number(intervalNs) * (multiple + jitter * random)));
}
