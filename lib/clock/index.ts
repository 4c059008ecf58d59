/** The clocks: the interface (clock.ts), the in-process implementations (virtual.ts) and the system clock (system.ts, over timex.ts and adjtimex.ts). */
export type { Clock, ClockDiscipline, ClockView, CorrectionKind, Monotonic } from './clock.js';
export {
  DEFAULT_MAX_SLEW_PPM,
  DEFAULT_STEP_THRESHOLD_NS,
  MAX_FREQUENCY_PPM,
  MAX_RATE_PPM,
  VirtualClock,
  createSimulatedClock,
  createVirtualClock,
} from './virtual.js';
export type { SimulatedClockOptions, VirtualClockOptions, VirtualClockState } from './virtual.js';
export { SystemClock, pairedOffsetNs, planSlew, realTimers } from './system.js';
export type { SystemClockOptions, SystemClockState, Timers } from './system.js';
export { ClockRefused, openSystemClock } from './open.js';
export type { OpenSystemClockOptions, OpenedSystemClock, RefusalReason } from './open.js';
export { defaultStateFile, readStateFile, writeStateFile } from './statefile.js';
export type { ClockStateFile } from './statefile.js';
export { readKernelClock } from './adjtimex.js';
export { findTimeDaemons } from './guard.js';
export { KernelClockError, kernelState } from './timex.js';
export type { KernelClock, KernelState, Timex, TimexRequest } from './timex.js';
export { fileReference, referenceTimeAt, systemReference } from './reference.js';
export type { ReferenceClock, ReferenceFile, ReferenceReading } from './reference.js';
