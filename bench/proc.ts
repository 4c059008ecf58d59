/**
 * What the benchmarks read from /proc about a process (Linux): its CPU time
 * (all threads: utime + stime of /proc/PID/stat), its memory (VmRSS and
 * VmHWM of /proc/PID/status), its UDP sockets' kernel drops (the `drops`
 * column of /proc/net/udp for the socket inodes in /proc/PID/fd), and the
 * whole machine's busy share (/proc/stat), so that a figure can say what
 * else ran beside it. Every reader returns null where /proc cannot tell.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on Linux). */
export const USER_HZ = 100;

export interface ProcStat {
  /** utime + stime of every thread, seconds (resolution 1 / USER_HZ), and the system (kernel) part of it. */
  cpuS: number;
  sysS: number;
  /** Resident set now and at its peak, MB. */
  rssMb: number;
  hwmMb: number;
}

export function procStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const sysS = Number(fields[12]) / USER_HZ; // stime
    const cpuS = Number(fields[11]) / USER_HZ + sysS; // utime + stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
    return { cpuS, sysS, rssMb: kb('VmRSS'), hwmMb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * Seconds every thread of process pid spent waiting for a CPU while
 * runnable (the second field of /proc/PID/task/TID/schedstat, summed): a
 * process that wanted to run but the machine's other work held the cores.
 */
export function runqueueWaitS(pid: number | 'self'): number | null {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // the thread ended meanwhile
      }
    }
    return ns / 1e9;
  } catch {
    return null;
  }
}

/** One UDP socket of a process: its local port, the datagrams waiting in its receive queue, and what the kernel dropped. */
export interface UdpSocket {
  port: number;
  rxQueueBytes: number;
  drops: number;
}

/** The UDP (IPv4) sockets process pid holds ('self' for this one), from /proc/net/udp. */
export function udpSockets(pid: number | 'self'): UdpSocket[] | null {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
    const out: UdpSocket[] = [];
    // sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode ref pointer drops
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !inodes.has(f[9]!)) continue;
      out.push({ port: parseInt(f[1]!.split(':')[1]!, 16), rxQueueBytes: parseInt(f[4]!.split(':')[1]!, 16), drops: Number(f[12]) });
    }
    return out;
  } catch {
    return null;
  }
}

/** The kernel's drops summed over a process's UDP sockets on the given ports (all of them without ports). */
export function udpDrops(pid: number | 'self', ports?: readonly number[]): number | null {
  const s = udpSockets(pid);
  return s === null ? null : s.filter((x) => !ports || ports.includes(x.port)).reduce((n, x) => n + x.drops, 0);
}

/** The machine's CPU counters (all cores), ticks: busy and total, from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
    const idle = f[3]! + f[4]!;
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}
