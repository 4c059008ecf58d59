/**
 * `berkeleyd run --clock system` on real kernels: three User-Mode Linux
 * guests (helpers/uml.ts), each with its own CLOCK_REALTIME, on one
 * Ethernet segment. Never this machine's clock: the last test checks that
 * it was not touched.
 *
 * 1. Noise floor: with no daemon, every guest stamps the same broadcast
 *    probes in its kernel (SO_TIMESTAMPNS); the guests' clocks all come
 *    from this machine's, so what varies between probes is the harness.
 * 2. The group: clocks set seconds apart (`busybox date -s`) and to
 *    different rates (`busybox adjtimex -f`), then a real daemon in each,
 *    g0 pinned master, 1 s interval. Their CLOCK_REALTIME, measured by the
 *    probes, must come within 1 ms of each other by round 3 and hold.
 * 3. The kernel's view: STA_UNSYNC clear and maxerror small while
 *    synchronized; after SIGTERM STA_UNSYNC set and the learned frequency
 *    in force and in the state file; a restart starts from it.
 * 4. Refusals: without CAP_SYS_TIME (setpriv), and beside a running
 *    chronyd: exit 2 with the message, the kernel clock untouched.
 *
 * Skips with a message where UML cannot run (not root, no linux.uml ...).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKernelClock, realKernelClock } from '../lib/clock/adjtimex.js';
import type { KernelClock } from '../lib/clock/timex.js';
import { GUEST_DIR, GUEST_STAMPER, UmlLan, umlAvailability, type Guest } from './helpers/uml.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'bin', 'berkeleyd.js');
const avail = umlAvailability();
const uml = avail.ok ? test.serial : test.skip;
const skipped = avail.ok ? '' : ` (skipped: ${avail.why})`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const STATE = '/tmp/berkeleyd/clock.json';
const OFFSETS_S = [2, -1, 1];
const RATES_PPM = [80, -60, 30];

let lan: UmlLan | null = null;
let hostBefore: ReturnType<typeof hostClock> | null = null;
let seq = 0;
/** Probe number → this machine's CLOCK_REALTIME just before it was sent, ns, and performance.now(). */
const sentNs = new Map<number, bigint>();
const sentMs = new Map<number, number>();
let hostOffsetNs = 0n;

/** This machine's clock: REALTIME − MONOTONIC and the kernel's timex state (read only). */
function hostClock(): { offsetNs: bigint; freq: number; tick: number; status: number; offset: number } {
  let k: KernelClock | undefined;
  try {
    k = realKernelClock();
  } catch {
    k = undefined;
  }
  let best: { w: bigint; off: bigint } | null = null;
  for (let i = 0; i < 9; i++) {
    const m1 = process.hrtime.bigint();
    const r = k ? k.realtimeNs() : BigInt(Date.now()) * 1_000_000n;
    const m2 = process.hrtime.bigint();
    if (!best || m2 - m1 < best.w) best = { w: m2 - m1, off: r - (m1 + m2) / 2n };
  }
  const t = readKernelClock(k)?.timex;
  return { offsetNs: best!.off, freq: t?.freq ?? 0, tick: t?.tick ?? 0, status: t?.status ?? 0, offset: t?.offset ?? 0 };
}

async function probes(n: number, gapMs: number): Promise<number[]> {
  const sent: number[] = [];
  for (let i = 0; i < n; i++) {
    sentNs.set(seq, process.hrtime.bigint() + hostOffsetNs);
    sentMs.set(seq, performance.now());
    lan!.sendProbe(seq);
    sent.push(seq++);
    await sleep(gapMs);
  }
  await sleep(300);
  return sent;
}

interface Row {
  /** Each guest's stamp, ns (its CLOCK_REALTIME when its kernel received the probe). */
  stamps: bigint[];
  /** This machine's CLOCK_REALTIME when the probe was sent, ns. */
  sentNs: bigint;
  /** performance.now() when it was sent. */
  sentMs: number;
}

/** Each probe's stamps in guest order (only probes every guest stamped). */
function stampsOf(sent: number[]): Row[] {
  const maps = lan!.guests.map((g) => new Map(g.stamps.map((s) => [s.seq, s.realtimeNs])));
  const out: Row[] = [];
  for (const s of sent) {
    const v = maps.map((m) => m.get(s));
    if (v.every((x) => x !== undefined)) out.push({ stamps: v as bigint[], sentNs: sentNs.get(s)!, sentMs: sentMs.get(s)! });
  }
  return out;
}

const spreadNs = (v: readonly bigint[]): number => Number(v.reduce((a, b) => (a > b ? a : b)) - v.reduce((a, b) => (a < b ? a : b)));
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const us = (ns: number): string => `${(ns / 1000).toFixed(0)} µs`;
function median(xs: number[]): number {
  return pct(xs, 50);
}

/**
 * Spread of the clocks over windows of w probes, filtered as NTP filters
 * delay: a probe only ever reaches a guest late, never early, so each
 * guest's least (stamp − time sent) in the window is its clock plus the
 * least delivery time, which is about the same for every guest. (The time
 * sent is this machine's clock; it cancels out of the spread.)
 */
function filteredSpreads(rows: Row[], w: number): Array<{ atMs: number; spread: number }> {
  return leastDelays(rows, w).map((m, k) => ({ atMs: rows[k * w]!.sentMs, spread: Math.max(...m) - Math.min(...m) }));
}

/** Per window of w probes, each guest's least (stamp − time sent), ns. */
function leastDelays(rows: Row[], w: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i + w <= rows.length; i += w) {
    const win = rows.slice(i, i + w);
    out.push(lan!.guests.map((_, g) => Math.min(...win.map((r) => Number(r.stamps[g]! - r.sentNs)))));
  }
  return out;
}

/** Probes per filter window (12 × 50 ms). */
const WINDOW = 12;

/**
 * The master's full rounds from its debug log on the console: a "round
 * e/r: average" line (the table is out) followed by a table line for each of
 * n nodes; numbered from 1, with the time the line reached this machine
 * (performance.now(); the guests' own clocks step during the test).
 */
function masterRounds(lines: ReadonlyArray<{ atMs: number; text: string }>, n: number): Array<{ round: number; atMs: number }> {
  const out: Array<{ round: number; atMs: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/berkeleyd:round round \d+\/\d+: average/.test(lines[i]!.text)) continue;
    let rows = 0;
    while (rows < n && /berkeleyd:round {3}\S+ offset /.test(lines[i + 1 + rows]?.text ?? '')) rows++;
    if (rows === n || out.length > 0) out.push({ round: out.length + 1, atMs: lines[i]!.atMs });
  }
  return out;
}

function daemonCmd(g: Guest, extra = ''): string {
  return `DEBUG=berkeleyd:clock,berkeleyd:round node ${CLI} run --clock system --node-id ${g.name} --interface eth0 --interval 1s --state-file ${STATE} --control /tmp/berkeleyd.sock ${extra}`;
}

/** busybox adjtimex, parsed. */
async function adjtimex(g: Guest): Promise<{ freq: number; status: number; maxerror: number; esterror: number }> {
  const r = await g.run('busybox adjtimex');
  const num = (name: string): number => Number(new RegExp(`${name}:\\s+(-?\\d+)`).exec(r.out)?.[1] ?? NaN);
  return { freq: num('freq.adjust'), status: num('status'), maxerror: num('maxerror'), esterror: num('esterror') };
}

test.before(async () => {
  if (!avail.ok) return;
  hostBefore = hostClock();
  hostOffsetNs = hostBefore.offsetNs;
  lan = await UmlLan.start({ guests: 3 });
  // chronyd for the refusal: the Debian package unpacked (never installed), or a stand-in named chronyd.
  const debs = existsSync('/tmp/debs') ? readdirSync('/tmp/debs').filter((f) => /^chrony_.*\.deb$/.test(f)) : [];
  if (debs.length > 0) spawnSync('dpkg', ['-x', join('/tmp/debs', debs[0]!), join(lan.dir, 'chrony')]);
  if (!existsSync(join(lan.dir, 'chrony', 'usr', 'sbin', 'chronyd'))) {
    mkdirSync(join(lan.dir, 'chrony', 'usr', 'sbin'), { recursive: true });
    copyFileSync('/bin/sleep', join(lan.dir, 'chrony', 'usr', 'sbin', 'chronyd'));
  }
  writeFileSync(join(lan.dir, 'chrony.conf'), 'pidfile /run/chronyd.pid\ncmdport 0\nport 0\n');
  await Promise.all(lan.guests.map((g) => g.background(`python3 ${GUEST_STAMPER} 7799`, null)));
  await Promise.all(lan.guests.map((g) => g.waitLine(/^@@STAMPER/, 15_000)));
});

test.after.always(() => {
  lan?.destroySync();
});

uml(`noise floor: the guests stamp the same probes with no daemon running${skipped}`, async (t) => {
  const floorProbes = await probes(96, 50);
  const rows = stampsOf(floorProbes);
  t.true(rows.length >= 80, `only ${rows.length} of 96 probes reached every guest`);
  // The guests' clocks all run on this machine's; their constant offsets (from boot) are not noise.
  const off = lan!.guests.map((_, g) => median(rows.map((r) => Number(r.stamps[g]! - r.stamps[0]!))));
  const fixed = rows.map((r) => ({ ...r, stamps: r.stamps.map((x, g) => x - BigInt(Math.round(off[g]!))) }));
  const spreads = fixed.map((r) => spreadNs(r.stamps));
  // Filtered the same way as the group's, less each guest's constant part.
  const least = leastDelays(rows, WINDOW);
  const constant = lan!.guests.map((_, g) => median(least.map((m) => m[g]! - m[0]!)));
  const f = least.map((m) => {
    const d = m.map((x, g) => x - m[0]! - constant[g]!);
    return Math.max(...d) - Math.min(...d);
  });
  t.log(`noise floor (${rows.length} probes; the guests' constant boot offsets ${off.map((o) => us(o)).join(', ')} removed): per probe p50 ${us(pct(spreads, 50))}, p99 ${us(pct(spreads, 99))}; filtered (least delay of 12): p50 ${us(pct(f, 50))}, max ${us(Math.max(...f))}`);
  t.pass();
});

uml(`3 guests seconds apart and ±100 ppm: --clock system converges within 1 ms by round 3 and holds${skipped}`, async (t) => {
  const gs = lan!.guests;
  await Promise.all(gs.map((g, i) => g.run(`busybox date -s @$(( $(date +%s) + ${OFFSETS_S[i]} )) >/dev/null && busybox adjtimex -f ${RATES_PPM[i]! * 65536} >/dev/null`)));
  const before = stampsOf(await probes(5, 50));
  t.true(spreadNs(before.at(-1)!.stamps) > 1e9, `the clocks start seconds apart (spread ${spreadNs(before.at(-1)!.stamps)} ns)`);
  // The master's log also on the console, where each line gets this machine's time of arrival.
  await Promise.all(gs.map((g, i) => (i === 0 ? g.background(`${daemonCmd(g, '--master')} 2>&1 | tee /tmp/daemon.log`, null) : g.background(daemonCmd(g), '/tmp/daemon.log'))));
  const groupProbes = await probes(360, 50);
  const logs = await Promise.all(gs.map((g) => g.run('cat /tmp/daemon.log')));
  for (const [i, l] of logs.entries()) {
    t.regex(l.out, new RegExp(`disciplining the system clock \\(CLOCK_REALTIME\\) with adjtimex: starting from the kernel's current frequency, ${RATES_PPM[i]}\\.000 ppm`), `g${i} starts from the kernel's frequency`);
  }
  // The master's rounds, in its own clock (debug's ISO date, ms), against its own stamps.
  // Rounds are counted from the first whose table holds all three clocks (the master starts its rounds before the others' node processes are up).
  const rounds = masterRounds(gs[0]!.lines.filter((l) => !l.text.startsWith('@@')), gs.length);
  t.true(rounds.length >= 10, `the master ran ${rounds.length} full rounds:\n${logs[0]!.out.slice(-2000)}`);
  const rows = stampsOf(groupProbes);
  const windows = filteredSpreads(rows, WINDOW);
  const roundAt = (ms: number): number => rounds.filter((r) => r.atMs <= ms).at(-1)?.round ?? 0;
  // Converged at round R: from R's table on, every window is within 1 ms.
  let converged: number | null = null;
  for (const r of rounds) {
    if (windows.filter((w) => w.atMs >= r.atMs).every((w) => w.spread < 1_000_000)) {
      converged = r.round;
      break;
    }
  }
  const per = new Map<number, number[]>();
  for (const row of rows) {
    const r = roundAt(row.sentMs);
    per.set(r, [...(per.get(r) ?? []), spreadNs(row.stamps)]);
  }
  t.log(`spread by round (max over probes): ${[...per].slice(0, 8).map(([r, v]) => `r${r} ${us(Math.max(...v))}`).join(', ')}`);
  t.log(`filtered spread by window (round: spread): ${windows.slice(0, 16).map((w) => `${roundAt(w.atMs)}: ${us(w.spread)}`).join(', ')}`);
  t.log(`full rounds at (ms after the first probe): ${rounds.slice(0, 8).map((r) => (r.atMs - rows[0]!.sentMs).toFixed(0)).join(', ')}`);
  t.log(`converged within 1 ms (filtered, windows of 12 probes) from full round ${converged}; windows above 1 ms after it: none`);
  t.not(converged, null, 'never converged');
  t.true(converged! <= 3, `converged only at round ${converged}`);
  const settled = rows.filter((r) => roundAt(r.sentMs) >= 6).map((r) => spreadNs(r.stamps));
  const settledF = windows.filter((w) => roundAt(w.atMs) >= 6).map((w) => w.spread);
  t.true(settled.length > 100);
  t.log(`after full round 6 (${settled.length} probes over ${rounds.at(-1)!.round - 6} rounds): per probe p50 ${us(pct(settled, 50))}, p99 ${us(pct(settled, 99))}; filtered: p50 ${us(pct(settledF, 50))}, p99 ${us(pct(settledF, 99))}, max ${us(Math.max(...settledF))}`);
});

uml(`while synchronized the kernel says so: STA_UNSYNC clear, small maxerror; status shows it${skipped}`, async (t) => {
  for (const g of lan!.guests) {
    const k = await adjtimex(g);
    t.log(`${g.name}: status ${k.status}, maxerror ${k.maxerror} µs, esterror ${k.esterror} µs, freq ${(k.freq / 65536).toFixed(3)} ppm`);
    t.is(k.status & 0x40, 0, `${g.name}: STA_UNSYNC clear`);
    t.is(k.status & 0x1, 0, `${g.name}: kernel PLL off`);
    t.true(k.maxerror < 100_000, `${g.name}: maxerror ${k.maxerror} µs`);
    const s = JSON.parse((await g.run(`node ${CLI} status --json --control /tmp/berkeleyd.sock`)).out);
    t.like(s.clock, { kind: 'system', synchronized: true, kernel: { synchronized: true } });
  }
  const text = (await lan!.guests[1]!.run(`node ${CLI} status --control /tmp/berkeleyd.sock`)).out;
  t.regex(text, /^Kernel clock +: [+-]\d+\.\d{3} ppm .*maxerror \d+ µs/m);
});

uml(`SIGTERM: STA_UNSYNC set, the learned frequency kept in the kernel and the state file; a restart starts from it${skipped}`, async (t) => {
  const g = lan!.guests[2]!;
  await g.run('kill -TERM $(pidof node | tr " " "\\n" | while read p; do grep -q -- "--clock" /proc/$p/cmdline && echo $p; done); sleep 1');
  const k = await adjtimex(g);
  const saved = JSON.parse((await g.run(`cat ${STATE}`)).out);
  t.log(`after SIGTERM: status ${k.status}, freq ${(k.freq / 65536).toFixed(3)} ppm; state file ${JSON.stringify(saved)}`);
  t.is(k.status & 0x40, 0x40, 'STA_UNSYNC set');
  t.true(Math.abs(k.freq / 65536 - saved.frequencyPpm) < 1e-4, 'the kernel runs at the saved frequency');
  t.true(Math.abs(saved.frequencyPpm - RATES_PPM[2]!) > 1e-3, `a frequency was learned (started from ${RATES_PPM[2]} ppm)`);
  t.false(saved.synchronized);
  t.regex((await g.run('cat /tmp/daemon.log')).out, /system clock left running at -?\d+\.\d{3} ppm, STA_UNSYNC set, frequency saved/);
  // Another frequency in the kernel meanwhile: the restart must take the saved one, not the kernel's.
  await g.run('busybox adjtimex -f 0 >/dev/null');
  await g.background(daemonCmd(g), '/tmp/restart.log');
  // Read the kernel as soon as the start line is out, before the first round can slew.
  const r = await g.run('for i in $(seq 150); do grep -q disciplining /tmp/restart.log && break; sleep 0.05; done; busybox adjtimex | grep freq.adjust; grep disciplining /tmp/restart.log');
  const k2 = { freq: Number(/freq.adjust:\s+(-?\d+)/.exec(r.out)?.[1]) };
  t.regex(r.out, new RegExp(`starting from the saved frequency in ${STATE}, ${saved.frequencyPpm.toFixed(3).replace('.', '\\.')} ppm`));
  t.true(Math.abs(k2.freq / 65536 - saved.frequencyPpm) < 1e-4, `restarted at ${k2.freq / 65536} ppm, saved ${saved.frequencyPpm}`);
});

uml(`refusals: without CAP_SYS_TIME, and beside a running chronyd: exit 2 with the message, the clock untouched${skipped}`, async (t) => {
  const g = lan!.guests[2]!;
  await g.run('kill -TERM $(pidof node | tr " " "\\n" | while read p; do grep -q -- "--clock" /proc/$p/cmdline && echo $p; done); sleep 1');
  const before = await adjtimex(g);
  const noCap = await g.run(`setpriv --inh-caps=-sys_time --bounding-set=-sys_time node ${CLI} run --clock system --interface eth0 --control /tmp/refused.sock`);
  t.log(`without CAP_SYS_TIME: exit ${noCap.code}: ${noCap.out.split('\n').at(-1)!.slice(0, 160)}…`);
  t.is(noCap.code, 2, noCap.out);
  t.regex(noCap.out, /needs CAP_SYS_TIME.*AmbientCapabilities=CAP_SYS_TIME/);
  t.deepEqual(await adjtimex(g), before, 'the refused run changed nothing');

  const chronyd = `${GUEST_DIR}/chrony/usr/sbin/chronyd`;
  const real = (await g.run(`${chronyd} -v`)).out.includes('chronyd');
  await g.background(real ? `${chronyd} -n -u root -f ${GUEST_DIR}/chrony.conf` : `${chronyd} 60`, '/tmp/chronyd.log');
  await g.run('for i in 1 2 3 4 5 6 7 8 9 10; do pidof chronyd >/dev/null && break; sleep 0.2; done');
  const refused = await g.run(`node ${CLI} run --clock system --interface eth0 --control /tmp/refused.sock`);
  t.log(`beside ${real ? 'chronyd 4.3 (unpacked from the Debian package, running in the guest)' : 'a process named chronyd'}: exit ${refused.code}: ${refused.out.split('\n').at(-1)!.slice(0, 200)}…`);
  t.is(refused.code, 2, refused.out);
  t.regex(refused.out, /chronyd is running \(pid \d+\).*--force/);
  await g.run('kill $(pidof chronyd)');
});

uml(`this machine's clock was not touched${skipped}`, async (t) => {
  lan?.destroySync();
  const after = hostClock();
  const b = hostBefore!;
  const stepNs = Number(after.offsetNs - b.offsetNs);
  t.log(`host REALTIME − MONOTONIC moved ${stepNs} ns; timex freq ${b.freq} → ${after.freq}, tick ${b.tick} → ${after.tick}, status ${b.status} → ${after.status}`);
  t.true(Math.abs(stepNs) < 10_000_000, `the host clock was stepped by ${stepNs} ns`);
  // Where another service disciplines this machine (STA_UNSYNC clear or its PLL on) its frequency moves by itself.
  if ((b.status & 0x40) !== 0 && (b.status & 0x1) === 0) t.deepEqual({ ...after, offsetNs: 0n }, { ...b, offsetNs: 0n });
});
