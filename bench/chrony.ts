/**
 * The chrony anchor of the benchmark: chrony's loopback group, run in the
 * same run and on the same machine as berkeleyd's, so that berkeleyd's
 * figures can be stated as ratios to chrony's.
 *
 * One chronyd server (`local stratum 1`) and N chronyd clients on
 * 127.0.0.1, each with its own port, pid file, log directory and no
 * command socket, all with -x: no clock is ever touched (chrony's null
 * clock driver keeps a virtual clock, corrected as the real one would be).
 * Every client polls the server every second (minpoll 0, maxpoll 0; the
 * round interval of berkeleyd), with chrony's default timestamping: kernel
 * receive and transmit timestamps on Linux.
 *
 * Truth is 0: every process reads the same system clock. So the offset a
 * client measures against the server (measurements.log) is the error of its
 * virtual clock plus its measurement error: that is chrony's figure.
 *
 * chronyd comes from the Debian package, extracted with `dpkg -x` into a
 * cache directory, never installed: from /tmp/debs, else `apt-get
 * download chrony`. Where that cannot be had, findChrony() says why.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ChronyFound = { ok: true; chronyd: string; version: string } | { ok: false; why: string };

const CACHE = join(tmpdir(), 'berkeleyd-bench-chrony');

/** chronyd from the Debian package, extracted once into a cache directory. */
export function findChrony(): ChronyFound {
  if (process.platform !== 'linux') return { ok: false, why: 'chrony runs here only on Linux' };
  const chronyd = join(CACHE, 'root/usr/sbin/chronyd');
  if (!existsSync(chronyd)) {
    mkdirSync(CACHE, { recursive: true });
    const debs = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => /^chrony_.*\.deb$/.test(f)).map((f) => join(dir, f)) : []);
    let deb = debs('/tmp/debs')[0] ?? debs(CACHE)[0];
    if (!deb) {
      try {
        execFileSync('apt-get', ['download', 'chrony'], { cwd: CACHE, stdio: 'pipe', timeout: 120_000 });
      } catch (err) {
        return { ok: false, why: `no chrony package in /tmp/debs, and \`apt-get download chrony\` failed: ${firstLine(err)}` };
      }
      deb = debs(CACHE)[0];
      if (!deb) return { ok: false, why: '`apt-get download chrony` left no package' };
    }
    try {
      execFileSync('dpkg', ['-x', deb, join(CACHE, 'root')], { stdio: 'pipe' });
    } catch (err) {
      return { ok: false, why: `cannot extract ${deb} with dpkg -x: ${firstLine(err)}` };
    }
  }
  try {
    const v = execFileSync(chronyd, ['-v'], { stdio: 'pipe', encoding: 'utf8' });
    return { ok: true, chronyd, version: /version (\S+)/.exec(v)?.[1] ?? '?' };
  } catch (err) {
    return { ok: false, why: `${chronyd} does not run: ${firstLine(err)}` };
  }
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  return (String(e.stderr ?? '').trim() || e.message || String(err)).split('\n')[0]!;
}

export interface ChronyGroupOptions {
  chronyd: string;
  clients: number;
  /** UDP port of the server on 127.0.0.1. */
  port: number;
  /** log2 of the poll interval in seconds (0: 1 s). */
  poll: number;
}

/** A running chrony loopback group; stop() leaves no process and no file. */
export class ChronyGroup {
  readonly dir = mkdtempSync(join(tmpdir(), 'berkeleyd-chrony-'));
  private readonly procs: ChildProcess[] = [];
  private readonly stderr: string[] = [];
  startedMs = 0;

  constructor(private readonly o: ChronyGroupOptions) {}

  start(): void {
    const d = this.dir;
    // As root chronyd drops to its compiled-in user (_chrony), which may not exist here; -U: not root, do not check.
    const who = process.getuid?.() === 0 ? ['-u', 'root'] : ['-U'];
    // No command socket (cmdport 0, bindcmdaddress /), no drift file, nothing under /run or /var.
    const common = ['cmdport 0', 'bindcmdaddress /'];
    const conf = (name: string, lines: string[]): string => {
      const f = join(d, `${name}.conf`);
      writeFileSync(f, [...lines, ...common, `pidfile ${join(d, `${name}.pid`)}`].join('\n') + '\n');
      return f;
    };
    const run = (name: string, file: string): void => {
      const p = spawn(this.o.chronyd, ['-x', '-d', ...who, '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      const i = this.stderr.push('') - 1;
      p.stderr!.on('data', (b: Buffer) => void (this.stderr[i] = (this.stderr[i]! + b.toString()).slice(-4096)));
      p.on('error', () => undefined);
      this.procs.push(p);
      void name;
    };
    run('server', conf('server', [`port ${this.o.port}`, 'bindaddress 127.0.0.1', 'allow 127.0.0.1', 'local stratum 1']));
    for (let i = 1; i <= this.o.clients; i++) {
      const logdir = join(d, `c${i}`);
      mkdirSync(logdir);
      const p = this.o.poll;
      run(`c${i}`, conf(`c${i}`, [`server 127.0.0.1 port ${this.o.port} minpoll ${p} maxpoll ${p} iburst`, 'port 0', `logdir ${logdir}`, 'log measurements tracking']));
    }
    this.startedMs = Date.now();
  }

  /** Processes that have exited, with the end of their standard error. */
  failures(): string[] {
    return this.procs.flatMap((p, i) => (p.exitCode !== null || p.signalCode !== null ? [`chronyd #${i} exited (${p.exitCode ?? p.signalCode}): ${this.stderr[i]!.trim().split('\n').slice(-2).join(' / ')}`] : []));
  }

  /**
   * Every client's measurements: offset (ns, as chrony logs it) and round
   * trip, from those logged at or after skipS seconds after the start (the
   * log's times are whole seconds).
   */
  measurements(skipS: number): { offsetNs: number; delayNs: number }[] {
    const from = Math.floor(this.startedMs / 1000) + skipS;
    const out: { offsetNs: number; delayNs: number }[] = [];
    for (let i = 1; i <= this.o.clients; i++) {
      const f = join(this.dir, `c${i}`, 'measurements.log');
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        const m = parseMeasurement(line);
        if (m && m.atS >= from) out.push({ offsetNs: m.offsetNs, delayNs: m.delayNs });
      }
    }
    return out;
  }

  /**
   * Every client's filtered estimate of its own offset at each clock update
   * (tracking.log's Offset, ns), from skipS seconds after the start.
   */
  trackingOffsetsNs(skipS: number): number[] {
    const from = Math.floor(this.startedMs / 1000) + skipS;
    const out: number[] = [];
    for (let i = 1; i <= this.o.clients; i++) {
      const f = join(this.dir, `c${i}`, 'tracking.log');
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        const m = parseTracking(line);
        if (m && m.atS >= from) out.push(m.offsetNs);
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    const alive = this.procs.filter((p) => p.exitCode === null && p.signalCode === null);
    await Promise.all(
      alive.map(
        (p) =>
          new Promise<void>((resolve) => {
            const kill = setTimeout(() => p.kill('SIGKILL'), 2000);
            p.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One line of chrony's measurements.log:
 *   2026-12-02 03:08:07 127.0.0.1 N 1 111 111 1111 0 0 1.00 3.490e-07 3.286e-06 ...
 * (date, time, address, leap, stratum, tests, tests, tests, poll, poll, score, offset s, delay s, ...).
 * Null for the header lines and anything else.
 */
export function parseMeasurement(line: string): { atS: number; offsetNs: number; delayNs: number } | null {
  const f = line.trim().split(/\s+/);
  if (f.length < 13 || !/^\d{4}-\d\d-\d\d$/.test(f[0]!)) return null;
  const atMs = Date.parse(`${f[0]}T${f[1]}Z`);
  const offset = Number(f[11]);
  const delay = Number(f[12]);
  if (!Number.isFinite(atMs) || !Number.isFinite(offset) || !Number.isFinite(delay)) return null;
  return { atS: atMs / 1000, offsetNs: offset * 1e9, delayNs: delay * 1e9 };
}

/**
 * One line of chrony's tracking.log:
 *   2026-12-02 03:08:07 127.0.0.1 2 -0.039 0.094 -1.462e-07 N 1 2.863e-07 ...
 * (date, time, reference, stratum, frequency ppm, skew ppm, offset s, ...). Null for anything else.
 */
export function parseTracking(line: string): { atS: number; offsetNs: number } | null {
  const f = line.trim().split(/\s+/);
  if (f.length < 7 || !/^\d{4}-\d\d-\d\d$/.test(f[0]!)) return null;
  const atMs = Date.parse(`${f[0]}T${f[1]}Z`);
  const offset = Number(f[6]);
  if (!Number.isFinite(atMs) || !Number.isFinite(offset)) return null;
  return { atS: atMs / 1000, offsetNs: offset * 1e9 };
}
