/**
 * How User-Mode Linux guests run on this machine, found out before any
 * test guest boots.
 *
 * linux.uml moves each guest task's floating-point state through ptrace in
 * an area of a size fixed when it was built (Debian bookworm's 6.1 build:
 * 2696 bytes; older builds 832). The host kernel refuses a write of any
 * size smaller than its own XSAVE area (EFAULT), which AVX-512 makes 2432
 * bytes or more and AMX 11008, and the guest's init dies: "ptrace set fp
 * regs failed, errno = 14". The route taken here (docs/clock.md says why):
 * an LD_PRELOAD library, uml-xstate.c, built from source with the
 * machine's C compiler, that carries the rest of the area per guest task
 * and passes a transfer of the right size through untouched. The guests'
 * kernels, clocks and network are UML's own either way.
 *
 * probeGuest() boots one guest with a trivial init (no network) and says
 * which kernel ran, what the library did and how long the boot took.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCES = fileURLToPath(new URL('../../../test/helpers', import.meta.url));
const CACHE = join(tmpdir(), 'berkeleyd-uml-xstate');

export type Built = { ok: true; path: string } | { ok: false; why: string };

/** Compiles test/helpers/<name>.c (once per content) into a cache directory; shared: a .so. */
export function buildC(name: 'uml-xstate' | 'uml-xstate-check' | 'clockbound-reader', shared: boolean): Built {
  const src = join(SOURCES, `${name}.c`);
  if (!existsSync(src)) return { ok: false, why: `${src} is missing` };
  const text = readFileSync(src);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const out = join(CACHE, `${name}-${hash}${shared ? '.so' : ''}`);
  if (existsSync(out)) return { ok: true, path: out };
  const cc = ['cc', 'gcc'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
  if (!cc) return { ok: false, why: 'no C compiler (apt-get install gcc)' };
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const args = shared ? ['-O2', '-Wall', '-shared', '-fPIC', '-o', tmp, src, '-ldl', '-lpthread'] : ['-O2', '-Wall', '-o', tmp, src];
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, why: `${cc} ${name}.c failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}` };
  renameSync(tmp, out);
  return { ok: true, path: out };
}

export interface XstateLine {
  /** Bytes linux.uml moves per transfer, and bytes this host's kernel takes. */
  uml: number;
  host: number;
  mode: 'passthrough' | 'adapting' | 'refusing';
}

export interface Probe {
  ok: boolean;
  /** The guest's `uname -r`, when it got that far. */
  kernel: string | null;
  bootMs: number;
  xstate: XstateLine | null;
  /** The guest's console (its last 6000 characters), for a failure's message. */
  console: string;
}

export function parseXstateLog(text: string): XstateLine | null {
  const m = /^xstate uml=(\d+) host=(\d+) (passthrough|adapting|refusing)$/m.exec(text);
  return m ? { uml: Number(m[1]), host: Number(m[2]), mode: m[3] as XstateLine['mode'] } : null;
}

/** Boots one guest (no network, trivial init); preload: the library's path or null; env: the library's knobs. */
export async function probeGuest(preload: string | null, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Probe> {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-uml-probe-'));
  chmodSync(dir, 0o755);
  const init = join(dir, 'init.sh');
  writeFileSync(init, '#!/bin/sh\necho "@@PROBE $(uname -r)"\nexec /bin/busybox poweroff -f\n', { mode: 0o755 });
  const log = join(dir, 'xstate.log');
  const started = performance.now();
  const args = [`umid=bkdprobe${process.pid}`, `uml_dir=${dir}`, 'mem=64M', 'rootfstype=hostfs', 'rootflags=/', 'ro', 'quiet', `init=${init}`, 'con=null', 'con0=fd:0,fd:1', 'ssl=null'];
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: dir, BERKELEYD_UML_XSTATE_LOG: log, ...env };
  if (preload) childEnv.LD_PRELOAD = preload;
  const proc = spawn('linux.uml', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv });
  let text = '';
  let bootMs = NaN;
  const done = new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
      if (Number.isNaN(bootMs) && /@@PROBE /.test(text)) bootMs = performance.now() - started;
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', () => resolve());
    proc.on('error', (e) => {
      text += String(e);
      resolve();
    });
  });
  const timer = setTimeout(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }, timeoutMs);
  await done;
  clearTimeout(timer);
  try {
    process.kill(-proc.pid!, 'SIGKILL'); // UML's helpers share its process group
  } catch {
    // gone
  }
  const xstate = existsSync(log) ? parseXstateLog(readFileSync(log, 'utf8')) : null;
  rmSync(dir, { recursive: true, force: true });
  const kernel = /@@PROBE (\S+)/.exec(text)?.[1] ?? null;
  return { ok: kernel !== null, kernel, bootMs, xstate, console: text.replace(/\r/g, '').slice(-6000) };
}

/** The CPU's vector extensions that size its XSAVE area, from /proc/cpuinfo. */
export function cpuVectorFeatures(): string {
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
  const has = (f: string): boolean => flags.includes(f);
  return [has('avx') && 'AVX', has('avx512f') && 'AVX-512', has('amx_tile') && 'AMX'].filter(Boolean).join(', ') || 'no AVX';
}

function umlPackage(): string {
  try {
    return `user-mode-linux ${execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'user-mode-linux'], { encoding: 'utf8' }).trim()}`;
  } catch {
    return 'linux.uml';
  }
}

/** The suite's one line about how its guests run. */
export function routeLine(p: Probe, preload: string | null): string {
  const x = p.xstate;
  const area = x ? `this CPU (${cpuVectorFeatures()}) has a ${x.host}-byte XSAVE area, linux.uml moves ${x.uml}` : `this CPU: ${cpuVectorFeatures()}`;
  let route: string;
  if (!preload) route = 'no xstate library (it could not be built), so linux.uml runs as it is';
  else if (x?.mode === 'adapting') route = 'route: the xstate library (test/helpers/uml-xstate.c, LD_PRELOAD) carries the rest of the area per guest task';
  else route = 'route: linux.uml as it is (the xstate library is loaded and passes every transfer through)';
  return `UML guests: kernel ${p.kernel ?? '?'} (${umlPackage()}); ${area}; ${route}; the probe guest booted in ${(p.bootMs / 1000).toFixed(2)} s`;
}
