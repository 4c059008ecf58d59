/** The clocks: the interface (clock.ts) and the in-process implementations (virtual.ts). */
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
