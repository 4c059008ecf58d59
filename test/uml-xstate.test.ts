/**
 * The xstate library that lets User-Mode Linux guests run on CPUs with a
 * large XSAVE area (helpers/uml-xstate.c; docs/clock.md), checked without a
 * guest: a stopped child under ptrace gets an 832-byte NT_X86_XSTATE write,
 * the size a UML built for x87, SSE and AVX moves. Plain, this host refuses
 * it where its XSAVE area is larger; with the library the write goes
 * through, what it changed takes effect, and the rest of the area
 * (AVX-512 here) is kept.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { buildC } from './helpers/uml-probe.js';

const linux = process.platform === 'linux' && process.arch === 'x64';
const lib = linux ? buildC('uml-xstate', true) : ({ ok: false, why: 'x86-64 Linux only' } as const);
const check = linux ? buildC('uml-xstate-check', false) : lib;
const skip = !lib.ok ? lib.why : !check.ok ? check.why : null;
const maybe = skip ? test.skip : test;

function run(env: Record<string, string>): string {
  const r = spawnSync((check as { path: string }).path, [], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`uml-xstate-check exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

maybe(`an 832-byte XSAVE write: refused by a host with a larger area, carried by the xstate library with the rest of the area kept${skip ? ` (skipped: ${skip})` : ''}`, (t) => {
  const plain = run({});
  const host = Number(/host=(\d+)/.exec(plain)?.[1]);
  t.log(`plain: ${plain}`);
  if (host > 832) t.regex(plain, /short_set=errno 14 /, 'the host kernel takes a short XSAVE write: then no library is needed');
  else t.regex(plain, /short_set=ok /);
  const via = run({ LD_PRELOAD: (lib as { path: string }).path });
  t.log(`with the library: ${via}`);
  t.regex(via, /short_set=ok legacy=yes /, 'the short write goes through and its change takes effect');
  if (host > 832) t.regex(via, /extended=kept$/, 'the part of the area UML does not move is kept');
});
