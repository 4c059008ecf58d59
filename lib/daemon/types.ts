/**
 * The daemon's options and counters: types that daemon.ts, status.ts and
 * metrics.ts share, kept apart so that imports run one way (daemon.ts
 * builds the status; status.ts does not import daemon.ts).
 */
import type { NodeOptions } from '../core/options.js';
import type { TransportCounters, TransportOptions } from '../net/transport.js';
import type { Keyring } from '../wire/keys.js';
import type { SystemClock, VirtualClock } from '../clock/index.js';
import type { ReferenceOptions } from './reference.js';

export interface DaemonOptions {
  node: Omit<NodeOptions, 'unicast'>;
  net: Omit<TransportOptions, 'unicastPort'> & { unicastPort: number };
  controlPath: string;
  clock: {
    simOffsetNs: bigint | null;
    simDriftPpm: number | null;
    maxSlewPpm: number;
    stepThresholdNs: bigint;
    /** 'system': discipline CLOCK_REALTIME (needs CAP_SYS_TIME). Default 'virtual'. */
    kind?: 'virtual' | 'system';
    /** System clock: the learned frequency's file, or null for none. */
    stateFile?: string | null;
    /** System clock: go on although another time service seems at work. */
    force?: boolean;
  };
  keys: Keyring | null;
  /** --metrics: serve /metrics here; null: no port (status --format prometheus still works). */
  metrics?: { host: string; port: number } | null;
  /** --clockbound: ClockBound's segment at path (auto: unless someone else owns it; see lib/daemon/publish.ts); null: none. */
  clockbound?: { path: string; auto: boolean } | null;
  /** A boundary host's own group (boundary.ts): the clock its upper engine disciplines, never corrected by this one. */
  shared?: { clock: VirtualClock | SystemClock } | null;
  /** --reference: follow an external reference as master (reference.ts); null or absent: the Berkeley average. */
  reference?: ReferenceOptions | null;
}

export interface Counters {
  received: number;
  sent: number;
  sendErrors: number;
  rejected: Record<string, number>;
  /** Changes of the followed master's epoch after the first master (each a failover election). */
  elections: number;
  /** Times this node claimed mastership. */
  claims: number;
  /** Corrections applied (rounds in which this node's clock was adjusted). */
  corrections: number;
  /** SIGHUP reloads applied, and refused (the old configuration kept). */
  reloads: { ok: number; refused: number };
  /** ADJUST parts of a large table skipped unread: other nodes' ids (see DecodeOptions.adjustFor). */
  otherParts: number;
  /** Which receive timestamps (kernel or user space) and which send path are in use, per socket. */
  net: TransportCounters;
}
