/**
 * A group of local `berkeleyd run` processes: what the demo, the benchmark
 * and the tests start. Every process is a real daemon on real sockets;
 * they exit with their parent (stdin closes), and stop() leaves no process
 * and no socket file behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { query } from './control.js';
import type { StatusJson } from './status.js';

/** The CLI entry point, next to this module in the built tree. */
export const BERKELEYD_JS = fileURLToPath(new URL('../../bin/berkeleyd.js', import.meta.url));

export interface MemberSpec {
  name: string;
  /** Arguments after `berkeleyd run`; --node-id and --control are added. */
  args: string[];
  /** Wrap the command, e.g. to run it in a network namespace: (cmd, args) => [cmd', args']. */
  wrap?: (cmd: string, args: string[]) => [string, string[]];
}

export interface ClusterMember {
  name: string;
  control: string;
  spec: MemberSpec;
  proc: ChildProcess | null;
  /** Standard error of the process, last 64 KiB, for failure reports. */
  stderr: string;
  exitCode: number | null;
}

export class Cluster {
  readonly dir: string;
  readonly members: ClusterMember[] = [];
  private stopped = false;

  constructor(private readonly env: NodeJS.ProcessEnv = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'berkeleyd-'));
  }

  /** Start one member; resolves when its control socket answers. */
  async add(spec: MemberSpec, timeoutMs = 10_000): Promise<ClusterMember> {
    const control = join(this.dir, `${spec.name}.sock`);
    const m: ClusterMember = { name: spec.name, control, spec, proc: null, stderr: '', exitCode: null };
    this.members.push(m);
    this.launch(m);
    await this.waitReady(m, timeoutMs);
    return m;
  }

  private launch(m: ClusterMember): void {
    const args = [BERKELEYD_JS, 'run', '--node-id', m.name, '--control', m.control, ...m.spec.args];
    const [cmd, argv] = m.spec.wrap ? m.spec.wrap(process.execPath, args) : [process.execPath, args];
    const proc = spawn(cmd, argv, {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, ...this.env, BERKELEYD_EXIT_WITH_STDIN: '1' },
    });
    m.proc = proc;
    m.exitCode = null;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      m.stderr = (m.stderr + d).slice(-65536);
    });
    proc.on('exit', (code, signal) => {
      m.exitCode = code ?? (signal ? 128 : -1);
    });
    proc.stdin!.on('error', () => undefined);
  }

  /** Start a member again after kill() (same name, arguments and socket). */
  async restart(name: string, timeoutMs = 10_000): Promise<void> {
    const m = this.member(name);
    this.launch(m);
    await this.waitReady(m, timeoutMs);
  }

  private async waitReady(m: ClusterMember, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (m.exitCode !== null) throw new Error(`${m.name} exited with ${m.exitCode}: ${m.stderr.trim()}`);
      if (existsSync(m.control)) {
        try {
          await query(m.control, 'now', 1000);
          return;
        } catch {
          // not yet
        }
      }
      if (Date.now() > deadline) throw new Error(`${m.name} did not answer on ${m.control} within ${timeoutMs} ms: ${m.stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  member(name: string): ClusterMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  async status(name: string): Promise<StatusJson> {
    return (await query(this.member(name).control, 'status')) as StatusJson;
  }

  /** Status of every running member (null for those that do not answer), queried at once. */
  async statusAll(): Promise<(StatusJson | null)[]> {
    return Promise.all(this.members.map((m) => (m.exitCode === null && m.proc ? this.status(m.name).catch(() => null) : Promise.resolve(null))));
  }

  /** Send a signal and wait for the process to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<number | null> {
    const m = this.member(name);
    const p = m.proc;
    if (!p || m.exitCode !== null) return m.exitCode;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    return m.exitCode;
  }

  /** SIGTERM every member, SIGKILL what remains after a while, remove the directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.members.map((m) => this.kill(m.name, 'SIGTERM', 3000).catch(() => undefined)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
