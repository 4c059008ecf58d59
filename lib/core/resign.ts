/**
 * An elected master that named its own clock faulty steps down (sans-IO
 * state; node.ts acts on it, runaway.ts judges the clock).
 *
 * It sends LEAVE, so that its peers elect at once by the rank-timed election
 * (election.ts), and becomes a peer. It then claims no mastership, and
 * answers no claim, until its clock has recovered: RECOVER_ROUNDS tables in
 * a row of the new master's, each applied, in which it was neither named
 * faulty nor beyond its frequency limit. One exception keeps a group from
 * staying without a master: if no other master has been heard for
 * LAST_RESORT_INTERVALS, it claims all the same, and as master it then
 * serves the group's time in place of its own clock, as a pinned master
 * does, instead of stepping down again.
 */
import { RECOVER_ROUNDS } from './faults.js';
import type { FaultReason } from './types.js';

export const LAST_RESORT_INTERVALS = 6;

export class Resignation {
  /** Why we stood down; null: we did not, or our clock has recovered since. */
  reason: FaultReason | null = null;
  /** We claimed while faulty because nobody else took over: as master, serve instead of stepping down. */
  lastResort = false;
  /** When we stood down, or last heard another master's SYNC since (monotonic ns). */
  private heardMonoNs = 0n;
  private cleanTables = 0;

  resign(reason: FaultReason, monoNs: bigint): void {
    this.reason = reason;
    this.lastResort = false;
    this.heardMonoNs = monoNs;
    this.cleanTables = 0;
  }

  /** A SYNC of the master we follow. */
  heardMaster(monoNs: bigint): void {
    if (monoNs > this.heardMonoNs) this.heardMonoNs = monoNs;
  }

  /** A table of our master's was applied; faulty: it named us faulty, or our clock cannot follow. True when this recovered us. */
  applied(faulty: boolean): boolean {
    if (this.reason === null) return false;
    this.cleanTables = faulty ? 0 : this.cleanTables + 1;
    if (this.cleanTables < RECOVER_ROUNDS) return false;
    this.reason = null;
    this.lastResort = false;
    return true;
  }

  /** May we claim (or answer a claim) at monoNs? Marks a claim made only because nobody else leads (lastResort). */
  mayClaim(monoNs: bigint, intervalNs: bigint): boolean {
    if (this.reason === null || this.lastResort) return true;
    if (monoNs - this.heardMonoNs < BigInt(LAST_RESORT_INTERVALS) * intervalNs) return false;
    this.lastResort = true;
    return true;
  }
}
