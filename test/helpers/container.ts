/**
 * Debian containers booted with a real systemd (systemd-nspawn -b) on the
 * rootfs that .ci/container-rootfs builds with mmdebstrap, joined by a
 * bridge that the test creates and removes.
 *
 * - `--keep-unit --register=no`: this machine's PID 1 is not systemd, so
 *   there is no machined and no bus to register a scope with.
 * - `--volatile=overlay`: the cached rootfs stays untouched; every write
 *   goes to a tmpfs that vanishes with the container, so two containers boot
 *   from the one directory.
 * - Node 20 is this machine's binary and npm, bound read-only (Debian 12's
 *   nodejs is 18).
 * - Commands run through nsenter into the container's PID 1 namespaces, with
 *   a clean environment.
 * Clocks: containers share this machine's clock, so only virtual clocks run in them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';

export const ROOTFS = process.env.BERKELEYD_TEST_ROOTFS ?? '/var/cache/berkeleyd-test/rootfs';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const has = (cmd: string): boolean => !spawnSync('sh', ['-c', `command -v ${cmd}`]).status;

/** The host's npm package directory (…/node_modules/npm), or null. */
function npmDir(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const cli = realpathSync(r.stdout.trim()); // …/node_modules/npm/bin/npm-cli.js
  const dir = dirname(dirname(cli));
  return existsSync(`${dir}/package.json`) ? dir : null;
}

/** Why the container test cannot run here, or null. */
export function containerSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not root (systemd-nspawn and bridges need root)';
  for (const tool of ['systemd-nspawn', 'nsenter', 'ip', 'git']) if (!has(tool)) return `${tool} not found (apt-get install systemd-container util-linux iproute2 git)`;
  if (!existsSync(`${ROOTFS}/.complete`)) return `no container rootfs at ${ROOTFS} (.ci/container-rootfs builds it with mmdebstrap)`;
  if (!npmDir()) return 'npm not found';
  return null;
}

export interface ShResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (child.stdin) {
      // A command that exits without reading its input must not crash the test with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Last-resort cleanup if the test process dies without its teardown (an uncaught error): synchronous. */
const onExit = new Set<() => void>();
process.on('exit', () => {
  for (const f of onExit) f();
});
/** Run f (synchronous) if the process exits before `cancel` is called. */
export function atExit(f: () => void): () => void {
  onExit.add(f);
  return () => void onExit.delete(f);
}

/** A Linux bridge on this host, for the containers' veths; no address, so nothing leaves it. */
export class Bridge {
  readonly name = `bkdbr${randomBytes(3).toString('hex')}`;

  private readonly dropAtExit = (): void => void spawnSync('ip', ['link', 'del', this.name]);

  async create(): Promise<void> {
    onExit.add(this.dropAtExit);
    for (const args of [['link', 'add', this.name, 'type', 'bridge', 'mcast_snooping', '0'], ['link', 'set', this.name, 'up']]) {
      const r = await run('ip', args);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
  }

  async remove(): Promise<void> {
    await run('ip', ['link', 'del', this.name]);
    onExit.delete(this.dropAtExit);
  }
}

export class Container {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** The container's PID 1 (its systemd), as this host sees it. */
  leader = 0;
  console = '';

  constructor(
    readonly name: string,
    /** hostNode false: no node or npm from this machine (the package test installs a nodejs .deb instead). */
    private readonly opts: { bridge?: string; binds?: Array<[string, string]>; hostNode?: boolean },
  ) {}

  /** Boots and waits until systemd says running (or degraded). */
  async boot(timeoutMs = 60_000): Promise<void> {
    const node = this.opts.hostNode === false ? [] : [`--bind-ro=${process.execPath}:/usr/bin/node`, `--bind-ro=${npmDir()!}:/usr/lib/node_modules/npm`];
    const args = [
      '-D', ROOTFS, '--volatile=overlay', '--keep-unit', '--register=no', '-M', this.name,
      ...node,
      ...(this.opts.bridge ? [`--network-bridge=${this.opts.bridge}`] : ['--private-network']),
      ...(this.opts.binds ?? []).map(([from, to]) => `--bind-ro=${from}:${to}`),
      // Containers share this machine's clock: whatever runs in them must never be able to set it. nspawn's
      // default capability set has no CAP_SYS_TIME; dropping it by name keeps it so whatever the defaults become.
      '--drop-capability=CAP_SYS_TIME',
      '--console=read-only', '-b',
    ];
    // Niced (the container's systemd and services inherit it): other tests run beside this one.
    const p = spawn('nice', ['-n', '10', 'systemd-nspawn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    // nspawn tears the container down (veth, mounts) when killed.
    const kill = (): void => void p.kill('SIGKILL');
    onExit.add(kill);
    p.on('exit', () => onExit.delete(kill));
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (this.console = (this.console + d).slice(-20_000)));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (this.console = (this.console + d).slice(-20_000)));
    this.exited = new Promise((r) => p.on('exit', () => r()));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (p.exitCode !== null) throw new Error(`systemd-nspawn exited ${p.exitCode}: ${this.console.slice(-2000)}`);
      if (!this.leader) this.leader = childOf(p.pid!) ?? 0;
      if (this.leader) {
        const r = await this.sh('systemctl is-system-running', 5000);
        if (/^(running|degraded)/.test(r.stdout)) return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.name} did not boot within ${timeoutMs} ms: ${this.console.slice(-2000)}`);
  }

  /** `sh -c script` inside, as root, clean environment. */
  sh(script: string, timeoutMs = 60_000): Promise<ShResult> {
    return run('nsenter', ['-t', String(this.leader), '-a', '--', 'env', '-i', `PATH=${PATH}`, 'HOME=/root', 'LANG=C.UTF-8', '/bin/sh', '-c', script], { timeoutMs });
  }

  /** sh, and throw with the output unless it exits 0. */
  async ok(script: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.sh(script, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.name}: \`${script}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Powers off (SIGTERM to nspawn asks the container's systemd to halt); SIGKILL after graceMs. Idempotent. */
  async stop(graceMs = 20_000): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!inTime) {
      p.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** The first child of pid (nspawn's container init), from /proc. */
function childOf(pid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : null;
  } catch {
    return null;
  }
}

/** The fenced ```sh block that follows `marker` in a Markdown text. */
export function blockAfter(markdown: string, marker: string): string {
  const at = markdown.indexOf(marker);
  if (at < 0) throw new Error(`no "${marker}" in the README`);
  const m = /```sh\n([\s\S]*?)```/.exec(markdown.slice(at));
  if (!m) throw new Error(`no sh block after "${marker}"`);
  return m[1]!;
}
