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
 *
 * No storm of claims in a large group: the jitter is not drawn at random
 * but taken from the node's rank (rankFraction: priority first, then node
 * id, steep at the top), so after a master dies the best nodes time out
 * first and the first CLAIM usually comes from the best. A node that hears
 * a claim worse than itself does not answer at once: it answers after
 * RESPONSE_WINDOW x its rank fraction, and only if no claim at least as
 * good as itself came meanwhile (ClaimBook). A node that stood down for a
 * better claim never claims that epoch again. Claims so stay near one per
 * election, not one per node (test/election-scale.test.ts).
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

/** A node that hears a worse claim answers within this part of CLAIM_WINDOW, by rank (so before the worse one wins). */
export const RESPONSE_WINDOW = 0.75 * CLAIM_WINDOW;

/**
 * Where a node stands among possible masters, from 0 (priority 255, node
 * id 0) to just under 1. Priority takes the first half; within a priority
 * the node id spreads over the second half as (id / 2^64)^(1/4), steep near
 * the best ids: of 10,000 nodes of one priority the best lies near 0.05
 * and the next few are thousandths apart, so the best one's claim reaches
 * the others before they would send theirs.
 */
export function rankFraction(priority: number, node: bigint): number {
  const idFraction = Number(node >> 11n) / 2 ** 53;
  return 0.5 * ((255 - Math.min(255, Math.max(0, priority))) / 256) + 0.5 * idFraction ** 0.25;
}

/** The best claim heard for the newest epoch claimed, to decide whether our own claim is still worth sending. */
export class ClaimBook {
  private best: Credentials | null = null;

  /** A claim was heard (or sent by us). */
  heard(c: Credentials): void {
    if (this.best === null || c.epoch > this.best.epoch || (c.epoch === this.best.epoch && compareCredentials(c, this.best) > 0)) this.best = c;
  }

  /** Would a claim of ours for epoch e beat every claim heard for e? */
  worthClaiming(ours: Credentials): boolean {
    if (this.best === null || this.best.epoch < ours.epoch) return true;
    if (this.best.epoch > ours.epoch) return false;
    return compareCredentials(ours, this.best) > 0;
  }
}
