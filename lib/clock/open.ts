/**
 * Taking over the system clock safely: the capability, the state file,
 * other time services (guard.ts), then the SystemClock itself. Everything
 * that refuses throws ClockRefused, whose message says what to do.
 */
import { realKernelClock } from './adjtimex.js';
import { NO_CAP_SYS_TIME_MESSAGE, canSeeAllProcesses, findTimeDaemons, hasCapSysTime, kernelEvidence, otherDisciplineMessage } from './guard.js';
import { readStateFile, type ClockStateFile } from './statefile.js';
import { SystemClock, type Timers } from './system.js';
import { KernelClockError, type KernelClock } from './timex.js';

export type RefusalReason = 'capability' | 'other-discipline' | 'state-file' | 'unsupported';

export class ClockRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export interface OpenSystemClockOptions {
  maxSlewPpm: number;
  stepThresholdNs: bigint;
  /** The state file (learned frequency), or null for none. */
  stateFile: string | null;
  /** Go on although another discipline seems at work. */
  force: boolean;
  /** Fakes for tests. */
  kernel?: KernelClock;
  procRoot?: string;
  /** The environment (INVOCATION_ID: started by systemd as a service). Default process.env. */
  env?: NodeJS.ProcessEnv;
  timers?: Timers;
  onError?: (err: Error) => void;
  /** Someone else stepped the clock (SystemClockOptions.onForeignStep). */
  onForeignStep?: (movedNs: bigint) => void;
}

export interface OpenedSystemClock {
  clock: SystemClock;
  /** The state file as found at start (null: none). */
  saved: ClockStateFile | null;
  /** Where the start frequency came from. */
  startFrom: 'state-file' | 'kernel';
  /** What --force overrode ([] without it). */
  overridden: string[];
  /**
   * Marks of another discipline in the kernel, taken to be left behind by
   * one that has stopped (no such process seen in a complete /proc, or
   * under the unit, whose Conflicts= stops the packaged ones): cleared.
   */
  leftovers: string[];
}

export function openSystemClock(o: OpenSystemClockOptions): OpenedSystemClock {
  let kernel: KernelClock;
  try {
    kernel = o.kernel ?? realKernelClock();
  } catch (err) {
    throw new ClockRefused('unsupported', `--clock system: ${(err as Error).message}`);
  }
  if (hasCapSysTime(o.procRoot) === false) throw new ClockRefused('capability', NO_CAP_SYS_TIME_MESSAGE);
  let saved: ClockStateFile | null = null;
  if (o.stateFile !== null) {
    try {
      saved = readStateFile(o.stateFile);
    } catch (err) {
      throw new ClockRefused('state-file', `--state-file: ${(err as Error).message} (remove it to start from the kernel's frequency)`);
    }
  }
  let read;
  try {
    read = kernel.adjtime({ modes: 0 });
  } catch (err) {
    throw new ClockRefused('unsupported', `--clock system: cannot read the kernel clock: ${(err as Error).message}`);
  }
  const daemons = findTimeDaemons(o.procRoot);
  const evidence = kernelEvidence(read.timex, saved?.synchronized === true);
  const overridden: string[] = [];
  const leftovers: string[] = [];
  // The kernel's marks outlive the daemon that made them (chrony leaves STA_UNSYNC clear, systemd-timesyncd
  // leaves its PLL on), so alone they are refused only where no process scan can rule out a live one.
  const seesAll = canSeeAllProcesses(o.procRoot);
  const underUnit = (o.env ?? process.env).INVOCATION_ID !== undefined;
  const blind = evidence.length > 0 && !seesAll && !underUnit;
  if (daemons.length > 0 || blind) {
    if (!o.force) throw new ClockRefused('other-discipline', otherDisciplineMessage(daemons, blind ? evidence : [], blind));
    overridden.push(...daemons.map((d) => `${d.name} (pid ${d.pid})`), ...(blind ? evidence : []));
  }
  if (!blind) leftovers.push(...evidence);
  try {
    const clock = new SystemClock({
      kernel,
      maxSlewPpm: o.maxSlewPpm,
      stepThresholdNs: o.stepThresholdNs,
      startFrequencyPpm: saved?.frequencyPpm,
      timers: o.timers,
      onError: o.onError,
      onForeignStep: o.onForeignStep,
    });
    return { clock, saved, startFrom: saved ? 'state-file' : 'kernel', overridden, leftovers };
  } catch (err) {
    if (err instanceof KernelClockError && err.code === 'EPERM') throw new ClockRefused('capability', `${NO_CAP_SYS_TIME_MESSAGE} (${err.message})`);
    throw err;
  }
}
