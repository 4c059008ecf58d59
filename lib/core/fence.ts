/**
 * Replay fencing of SYNCs, per master (sans-IO state; node.ts consults it).
 *
 * The highest (epoch, round) accepted from each master is kept, whether or
 * not this node still follows that master, so that a recorded SYNC sent
 * again later is refused as stale. A master silent for FENCE_INTERVALS of
 * its interval is forgotten, so that one restarted at round 1 is heard
 * again; at most FENCE_MEMORY masters are remembered, the longest unheard
 * forgotten first.
 */
export const FENCE_MEMORY = 64;
export const FENCE_INTERVALS = 3n;

interface Seen {
  epoch: number;
  round: number;
  monoNs: bigint;
}

/** What the fence needs of a SYNC. */
export interface Fenced {
  sender: bigint;
  epoch: number;
  round: number;
  intervalMs: number;
}

export class ReplayFence {
  private readonly seen = new Map<bigint, Seen>();

  /** Is this SYNC, received at rxMonoNs, a replay: not newer than what its master last sent? Forgets a master silent too long. */
  stale(msg: Fenced, rxMonoNs: bigint): boolean {
    const seen = this.seen.get(msg.sender);
    if (!seen) return false;
    if (rxMonoNs - seen.monoNs > FENCE_INTERVALS * BigInt(msg.intervalMs) * 1_000_000n) {
      this.seen.delete(msg.sender);
      return false;
    }
    return msg.epoch < seen.epoch || (msg.epoch === seen.epoch && msg.round <= seen.round);
  }

  /** An accepted SYNC: its (epoch, round) is the least the next one from its master must beat. */
  remember(msg: Fenced, rxMonoNs: bigint): void {
    this.seen.delete(msg.sender);
    this.seen.set(msg.sender, { epoch: msg.epoch, round: msg.round, monoNs: rxMonoNs });
    if (this.seen.size > FENCE_MEMORY) this.seen.delete(this.seen.keys().next().value!);
  }

  get size(): number {
    return this.seen.size;
  }
}
