/**
 * Shared pieces of the tests on real processes (daemon, cli, systemd-exec):
 * a free port and a random loopback multicast group per test, the common
 * `run` arguments, the CLI spawned asynchronously, and polling with a
 * deadline instead of sleeps.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BERKELEYD_JS, Cluster } from '../../lib/daemon/cluster.js';
import { query } from '../../lib/daemon/control.js';
import { freeUdpPort } from '../../lib/net/transport.js';

export { BERKELEYD_JS };

/** The repository (dist/test/helpers/ -> ../../..). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** A random group in 239.255.0.0/16 (never 239.255.77.1, the default). */
export function randomGroup(): string {
  for (;;) {
    const g = `239.255.${randomInt(1, 255)}.${randomInt(1, 255)}`;
    if (g !== '239.255.77.1') return g;
  }
}

export interface TestGroup {
  group: string;
  port: number;
  intervalMs: number;
  /** `--group G --port P --interface 127.0.0.1 --interval Nms`. */
  args: string[];
}

/** A fresh group on loopback: random address, free port, short interval. */
export async function testGroup(intervalMs = 200): Promise<TestGroup> {
  const group = randomGroup();
  const port = await freeUdpPort();
  return { group, port, intervalMs, args: ['--group', group, '--port', String(port), '--interface', '127.0.0.1', '--interval', `${intervalMs}ms`] };
}

/** process.env without BERKELEYD_* and DEBUG*, so that the caller's shell cannot change what a test runs. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BERKELEYD_') && !k.startsWith('DEBUG')) env[k] = v;
  return { ...env, ...extra };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The whole result, for assertion messages. */
  text: string;
}

/** Few CLI processes at once: the machine has 2 cores and other test files run daemons with timing bounds. */
const MAX_CLI = 2;
let running = 0;
const queue: Array<() => void> = [];

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CLI) await new Promise<void>((r) => queue.push(r));
  running += 1;
  try {
    return await fn();
  } finally {
    running -= 1;
    queue.shift()?.();
  }
}

/**
 * `node dist/bin/berkeleyd.js ...args`, to completion. A process still
 * running after timeoutMs is killed (SIGKILL) and reported with signal set:
 * a test must never leave one behind.
 */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return slot(
    () =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BERKELEYD_JS, ...args], { env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
        child.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const text = `berkeleyd ${args.join(' ')}\nexit ${code ?? signal}\n--- stdout\n${stdout}--- stderr\n${stderr}`;
          resolve({ code, signal, stdout, stderr, text });
        });
      }),
  );
}

/** A line of a stack trace ("    at f (file:1:2)"). */
export const STACK_LINE = /^\s+at\s/m;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns something other than undefined, every
 * `everyMs`, for at most `timeoutMs`; then throws with `what` and the last
 * thing `describe` said about the state.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, opts: { everyMs?: number; describe?: () => string } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${opts.describe ? `: ${opts.describe()}` : ''}`);
    await sleep(opts.everyMs ?? 25);
  }
}

/** A process started by a test: its output, its exit, and a kill that always ends it. */
export class Proc {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Exit code, or null with `signal` set; undefined while it runs. */
  code: number | null | undefined = undefined;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(file: string, args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.stderr += `spawn error: ${err.message}\n`;
        this.code = null;
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.code = code;
        this.signal = signal;
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.code === undefined;
  }

  /** Send `signal`; wait up to timeoutMs for the exit. Returns whether it exited in time. */
  async signalAndWait(signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    return inTime;
  }

  /** SIGTERM, then SIGKILL after graceMs: for teardown. Idempotent. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    if (!(await this.signalAndWait('SIGTERM', graceMs))) await this.signalAndWait('SIGKILL', 5000);
  }
}

/**
 * `berkeleyd run --control <control> ...args` as systemd starts it (no
 * BERKELEYD_EXIT_WITH_STDIN, stdin /dev/null), stopped when the test ends;
 * resolves once its control socket answers, rejects if it exits first.
 */
export async function startRun(t: ExecutionContext, control: string, args: string[]): Promise<Proc> {
  const p = new Proc(process.execPath, [BERKELEYD_JS, 'run', '--control', control, ...args], cleanEnv());
  t.teardown(() => p.stop());
  await waitFor(`${control} to answer`, async () => (!p.running ? true : existsSync(control) ? query(control, 'now', 1000).then(() => true, () => undefined) : undefined), 10_000);
  if (!p.running) throw new Error(`run exited at start (${p.code ?? p.signal}): ${p.stderr}`);
  return p;
}

/** A cluster that is stopped when the test ends, pass or fail; its members' stderr is logged on failure. */
export function testCluster(t: ExecutionContext): Cluster {
  const c = new Cluster();
  t.teardown(async () => {
    if (!t.passed) for (const m of c.members) t.log(`--- ${m.name} (exit ${m.exitCode}) stderr:\n${m.stderr.trim()}`);
    // Closing stdin is the members' other way out (BERKELEYD_EXIT_WITH_STDIN): teardown stays quick even when a signal is not enough.
    for (const m of c.members) m.proc?.stdin?.end();
    await c.stop();
  });
  return c;
}
