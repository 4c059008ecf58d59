/**
 * The engine's options, their defaults and their validation: one place.
 */
import { DEFAULT_MAX_MEMBERS } from './load.js';
import type { Address } from './types.js';

export interface NodeOptions {
  /** Human name of the node (default in the daemon: the host name). 1..64 UTF-8 bytes. */
  name: string;
  /** Groups sharing one address and port are told apart by domain (0..65535). */
  domain: number;
  /** Election priority 0..255; higher wins; 0 never claims mastership. */
  priority: number;
  /** Pinned master (--master): master from the start, never steps down. */
  pinnedMaster: boolean;
  /** Round interval; peers follow the interval their master advertises. */
  intervalNs: bigint;
  /** From SYNC to the end of the collection; must be shorter than the interval. */
  collectTimeoutNs: bigint;
  /** Four-timestamp exchanges per burst (a warm-up exchange comes on top and is discarded). */
  probes: number;
  /** Clocks farther than this from the median do not count in the average. */
  toleranceNs: bigint;
  /** A burst whose best delay is larger is dropped; also how long a request waits for its reply. */
  maxDelayNs: bigint;
  /** Corrections larger than this are stepped when stepping is allowed. */
  stepThresholdNs: bigint;
  /** Allow steps after the first synchronization too (chrony's makestep with no limit). */
  stepAlways: boolean;
  /** After the first synchronization, refuse corrections larger than this (null: no limit). */
  maxAdjustNs: bigint | null;
  /** A member silent for this many rounds leaves the member table. */
  memberTimeoutRounds: number;
  /** Largest member table; reports from more nodes are refused, counted and warned about (see load.ts). */
  maxMembers: number;
  /** Where peers reach this node by unicast, advertised in SYNC ("0.0.0.0" or "::": the SYNC's source address). */
  unicast: Address;
  /** As master: steps from the top of a hierarchy of groups, advertised in SYNC (0: this group follows no upper group). */
  steps: number;
  /** As master: the group's time follows an external reference or an upper group, not the average (SYNC's reference flag). */
  reference: boolean;
}

export const DEFAULTS: Omit<NodeOptions, 'name' | 'unicast'> = {
  domain: 0,
  priority: 100,
  pinnedMaster: false,
  intervalNs: 1_000_000_000n,
  collectTimeoutNs: 500_000_000n,
  probes: 12,
  toleranceNs: 20_000_000n,
  maxDelayNs: 50_000_000n,
  stepThresholdNs: 100_000n,
  stepAlways: false,
  maxAdjustNs: null,
  memberTimeoutRounds: 5,
  maxMembers: DEFAULT_MAX_MEMBERS,
  steps: 0,
  reference: false,
};

/** The largest --max-members: a table of this many fits ADJUST's 16-bit part count many times over. */
export const MAX_MEMBERS_LIMIT = 1_000_000;

/** Throws RangeError naming the option and what is wrong. */
export function validateOptions(o: NodeOptions): NodeOptions {
  const fail = (what: string): never => {
    throw new RangeError(what);
  };
  const nameBytes = Buffer.byteLength(o.name, 'utf8');
  if (nameBytes < 1 || nameBytes > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(o.name)) {
    fail(`node id "${o.name}" must be 1 to 64 bytes of UTF-8 without control characters`);
  }
  if (!Number.isInteger(o.domain) || o.domain < 0 || o.domain > 0xffff) fail('domain must be an integer from 0 to 65535');
  if (!Number.isInteger(o.priority) || o.priority < 0 || o.priority > 255) fail('priority must be an integer from 0 to 255');
  if (o.intervalNs < 10_000_000n || o.intervalNs > 3_600_000_000_000n) fail('interval must be from 10ms to 1h');
  if (o.collectTimeoutNs <= 0n || o.collectTimeoutNs >= o.intervalNs) fail('collect timeout must be above 0 and shorter than the interval');
  if (!Number.isInteger(o.probes) || o.probes < 1 || o.probes > 64) fail('probes must be an integer from 1 to 64');
  if (o.toleranceNs < 0n) fail('tolerance must not be negative');
  if (o.maxDelayNs <= 0n) fail('max delay must be above 0');
  if (o.stepThresholdNs < 0n) fail('step threshold must not be negative');
  if (o.maxAdjustNs !== null && o.maxAdjustNs <= 0n) fail('max adjust must be above 0');
  if (!Number.isInteger(o.memberTimeoutRounds) || o.memberTimeoutRounds < 1) fail('member timeout must be at least 1 round');
  if (!Number.isInteger(o.maxMembers) || o.maxMembers < 1 || o.maxMembers > MAX_MEMBERS_LIMIT) fail(`max members must be an integer from 1 to ${MAX_MEMBERS_LIMIT}`);
  if (!Number.isInteger(o.steps) || o.steps < 0 || o.steps > 255) fail('steps must be an integer from 0 to 255');
  if (o.pinnedMaster && o.priority === 0) fail('a pinned master (--master) cannot have priority 0');
  return o;
}
