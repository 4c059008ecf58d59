/**
 * Before the system clock is taken over: may this process set it, and is
 * someone else disciplining it already? Reads /proc and the kernel's timex
 * state (modes 0, no privilege); changes nothing.
 *
 * Other disciplines are recognised two ways:
 * - processes, by /proc/<pid>/comm: chronyd (unless started with -x, which
 *   leaves the clock alone), ntpd (ntp, ntpsec and OpenNTPD all run as
 *   "ntpd"), systemd-timesyncd ("systemd-timesyn", comm keeps 15 bytes),
 *   phc2sys, timed. Under systemd with ProtectProc=invisible other users'
 *   processes are hidden; the unit's Conflicts= covers the packaged daemons
 *   there.
 * - the kernel: a PLL, FLL or PPS loop on (STA_PLL, STA_FLL, STA_PPSFREQ,
 *   STA_PPSTIME: ntpd's and systemd-timesyncd's kernel discipline), an
 *   offset the PLL is still working off, or STA_UNSYNC clear (a program
 *   says it keeps the clock synchronized; chrony with rtcsync does so),
 *   unless berkeleyd's own state file says berkeleyd left it so. These
 *   marks outlive the daemon that made them (neither chrony nor
 *   systemd-timesyncd clears them on exit), so open.ts refuses on them
 *   alone only when the process scan cannot see every process; otherwise
 *   they are left behind, and taking the clock over clears them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS_BITS, STA_DISCIPLINE, STA_UNSYNC, statusNames, type Timex } from './timex.js';

/** Linux capability number of CAP_SYS_TIME. */
export const CAP_SYS_TIME = 25;

/** Does this process hold CAP_SYS_TIME in its effective set? null: cannot tell (no /proc). */
export function hasCapSysTime(procRoot = '/proc'): boolean | null {
  let text: string;
  try {
    text = readFileSync(join(procRoot, 'self', 'status'), 'utf8');
  } catch {
    return null;
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(text);
  if (!m) return null;
  return ((BigInt(`0x${m[1]}`) >> BigInt(CAP_SYS_TIME)) & 1n) === 1n;
}

export const NO_CAP_SYS_TIME_MESSAGE =
  '--clock system needs CAP_SYS_TIME to set the system clock, and this process does not have it. ' +
  'Run it as root, or grant only that capability: under systemd, AmbientCapabilities=CAP_SYS_TIME and ' +
  'CapabilityBoundingSet=CAP_SYS_TIME (the shipped berkeleyd.service does), or on the command line ' +
  '`sudo setpriv --reuid=USER --regid=GROUP --init-groups --inh-caps=+sys_time --ambient-caps=+sys_time berkeleyd run --clock system`. ' +
  'Not inside a user namespace (PrivateUsers=yes): capabilities there do not reach the host clock. ' +
  'Or use --clock virtual, which needs no privilege.';

export interface TimeDaemon {
  pid: number;
  name: string;
}

const DAEMONS = new Set(['chronyd', 'ntpd', 'systemd-timesyn', 'phc2sys', 'timed', 'openntpd']);

/** Running processes that discipline the system clock (or have another of these names: comm, 15 bytes), found through procRoot. */
export function findTimeDaemons(procRoot = '/proc', selfPid = process.pid, names: ReadonlySet<string> = DAEMONS): TimeDaemon[] {
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return [];
  }
  const found: TimeDaemon[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === selfPid) continue;
    let comm: string;
    try {
      comm = readFileSync(join(procRoot, e, 'comm'), 'utf8').trim();
    } catch {
      continue; // gone, or hidden
    }
    if (!names.has(comm)) continue;
    if (comm === 'chronyd') {
      try {
        const args = readFileSync(join(procRoot, e, 'cmdline'), 'utf8').split('\0');
        if (args.slice(1).some((a) => a === '-x' || (/^-[A-Za-z]+$/.test(a) && a.includes('x') && !a.startsWith('--')))) continue;
      } catch {
        // cannot read its arguments: count it
      }
    }
    found.push({ pid: Number(e), name: comm === 'systemd-timesyn' ? 'systemd-timesyncd' : comm });
  }
  return found;
}

/** What the kernel's timex state says about another discipline at work; [] when nothing. */
export function kernelEvidence(tx: Timex, ownUnsyncClear: boolean): string[] {
  const why: string[] = [];
  const loops = tx.status & STA_DISCIPLINE;
  if (loops) why.push(`the kernel's discipline loop is on (${statusNames(loops).join(', ')}), as ntpd and systemd-timesyncd leave it`);
  if (tx.offset !== 0 && (tx.status & STATUS_BITS.STA_PLL) !== 0) why.push(`the kernel PLL is still working off an offset of ${tx.offset} ${tx.status & STATUS_BITS.STA_NANO ? 'ns' : 'µs'}`);
  if ((tx.status & STA_UNSYNC) === 0 && !ownUnsyncClear) {
    why.push(`the kernel's STA_UNSYNC is clear (maxerror ${tx.maxerror} µs): another program says it keeps this clock synchronized`);
  }
  return why;
}

/**
 * Can this process see every process in procRoot? Not under hidepid= or
 * systemd's ProtectProc=invisible, which hide other users' processes: then
 * pid 1 (always root's) is hidden too.
 */
export function canSeeAllProcesses(procRoot = '/proc'): boolean {
  try {
    readFileSync(join(procRoot, '1', 'comm'), 'utf8');
    return true;
  } catch {
    return false;
  }
}

/** The refusal, naming what was found and how to go on. */
export function otherDisciplineMessage(daemons: TimeDaemon[], evidence: string[], blind = false): string {
  const parts = [
    ...daemons.map((d) => `${d.name} is running (pid ${d.pid})`),
    ...evidence,
  ];
  return (
    `another time service seems to discipline the system clock: ${parts.join('; ')}` +
    (blind ? ", and this process cannot see other users' processes to rule out a running one" : '') +
    '. Two disciplines fight over one clock. Stop and disable it first (for example `systemctl disable --now chrony` or ' +
    '`timedatectl set-ntp false`), or pass --force if you know it leaves the clock alone' +
    (blind ? ' (or that it has stopped: berkeleyd then clears the marks it left in the kernel)' : '') +
    '.'
  );
}
