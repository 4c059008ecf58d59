/**
 * The system clock's arithmetic against a fake of the system calls
 * (helpers/fake-kernel.ts): timex encoding, the tick/frequency split, slew
 * scheduling and what a slew really ran, step borrowing, the sync state,
 * the start frequency, the refusals. Nothing here touches a real clock.
 */
import test from 'ava';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ClockRefused, openSystemClock } from '../lib/clock/open.js';
import { findTimeDaemons, hasCapSysTime, kernelEvidence } from '../lib/clock/guard.js';
import { readStateFile, writeStateFile } from '../lib/clock/statefile.js';
import { SystemClock, planSlew } from '../lib/clock/system.js';
import {
  ADJ_FREQUENCY,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_SETOFFSET,
  ADJ_TICK,
  FREQ_SCALE,
  STA_PLL,
  STA_UNSYNC,
  guessHz,
  kernelFrequencyPpm,
  kernelState,
  ppmToTimexFreq,
  splitFrequency,
  stepTimeval,
  statusNames,
} from '../lib/clock/timex.js';
import { SystemClockKeeper } from '../lib/daemon/keeper.js';
import { FakeKernel, FakeTimers } from './helpers/fake-kernel.js';

const MS = 1_000_000n;
const S = 1_000_000_000n;

function clock(k = new FakeKernel(), opts: { start?: number; minSlewNs?: bigint } = {}): { k: FakeKernel; t: FakeTimers; c: SystemClock } {
  const t = new FakeTimers();
  const c = new SystemClock({ kernel: k, timers: t, maxSlewPpm: 500, stepThresholdNs: 100_000n, startFrequencyPpm: opts.start, minSlewNs: opts.minSlewNs });
  return { k, t, c };
}

// ------------------------------------------------------------ timex encoding

test('frequency in the kernel units: 65536 per ppm, rounded', (t) => {
  t.is(ppmToTimexFreq(1), 65536);
  t.is(ppmToTimexFreq(-12.5), -819200);
  t.is(ppmToTimexFreq(0.00001), 1);
  t.is(kernelFrequencyPpm(80 * FREQ_SCALE, 10000, 100), 80);
});

test('tick carries the frequency beyond ±500 ppm (1 µs of tick = USER_HZ ppm), freq the rest', (t) => {
  t.deepEqual(splitFrequency(80, 100), { tick: 10000, freq: 80 * 65536 });
  t.deepEqual(splitFrequency(-500, 100), { tick: 10000, freq: -500 * 65536 });
  t.deepEqual(splitFrequency(750, 100), { tick: 10008, freq: -50 * 65536 });
  t.deepEqual(splitFrequency(-1234.5, 100), { tick: 9988, freq: ppmToTimexFreq(-34.5) });
  for (const ppm of [0, 1, 499.9, 501, 9999.25, -20000.5, 50000]) {
    const { tick, freq } = splitFrequency(ppm, 100);
    t.true(Math.abs(freq) <= 500 * 65536, `${ppm}`);
    t.true(Math.abs(kernelFrequencyPpm(freq, tick, 100) - ppm) < 1e-4, `${ppm} round trip`);
  }
  // Clamped inside the kernel's ±10% tick range.
  t.true(splitFrequency(1e6, 100).tick <= 11000);
  t.is(guessHz(10000), 100);
  t.is(guessHz(10008), 100);
  t.is(guessHz(1000), 1000);
  t.is(guessHz(4000), 250);
});

test('a step borrows a second when negative: the kernel wants 0 ≤ ns < 1e9', (t) => {
  t.deepEqual(stepTimeval(1_500_000_000n), { sec: 1, usec: 500_000_000 });
  t.deepEqual(stepTimeval(-1_500_000_000n), { sec: -2, usec: 500_000_000 });
  t.deepEqual(stepTimeval(-1n), { sec: -1, usec: 999_999_999 });
  t.deepEqual(stepTimeval(-1_000_000_000n), { sec: -1, usec: 0 });
  t.deepEqual(stepTimeval(0n), { sec: 0, usec: 0 });
  t.deepEqual(stepTimeval(999n), { sec: 0, usec: 999 });
});

test('status bits are named; the kernel state reads as status shows it', (t) => {
  t.deepEqual(statusNames(STA_UNSYNC | STA_PLL | 0x2000), ['STA_PLL', 'STA_UNSYNC', 'STA_NANO']);
  const k = new FakeKernel({ freq: -3 * 65536, status: 0 });
  const r = k.adjtime({ modes: 0 });
  const s = kernelState(r.state, r.timex);
  t.is(s.frequencyPpm, -3);
  t.true(s.synchronized);
  t.is(s.state, 'TIME_OK');
});

// ------------------------------------------------------------ slew scheduling

test('slew plan: full rate for large corrections, a lower rate over the shortest slew for small ones', (t) => {
  t.deepEqual(planSlew(1_000_000n, 500, 200n * MS), { ratePpm: 500, durationNs: 2n * S });
  t.deepEqual(planSlew(-1_000_000n, 500, 200n * MS), { ratePpm: -500, durationNs: 2n * S });
  t.deepEqual(planSlew(10_000n, 500, 200n * MS), { ratePpm: 50, durationNs: 200n * MS });
  t.deepEqual(planSlew(0n, 500, 200n * MS), { ratePpm: 0, durationNs: 0n });
});

test('a slew is a temporary frequency offset; appliedNs follows what the kernel really ran, late timer included', (t) => {
  const { k, t: timers, c } = clock(new FakeKernel({ freq: 80 * 65536 }));
  t.is(c.startFrequencyPpm, 80);
  t.is(c.correct(1_000_000n, false), 'slew');
  t.is(k.frequencyPpm(), 580);
  const timer = timers.only();
  t.is(timer.ms, 2000);
  const phase0 = k.phaseNs();
  k.advance(1n * S);
  t.is(c.appliedNs(), 500_000n);
  t.is(c.pendingNs(), 500_000n);
  // The timer fires 3 ms late: 1.5 µs too much ran, and is slewed back.
  k.advance(1_003n * MS);
  timer.fire();
  t.is(c.appliedNs(), 1_001_500n);
  const back = timers.only();
  t.true(k.frequencyPpm() < 80, 'slewing back');
  k.advance(BigInt(Math.round(back.ms * 1e6)));
  back.fire();
  t.is(timers.pending.size, 0);
  t.is(k.frequencyPpm(), 80);
  const ran = k.phaseNs() - phase0 - 80 * (2.003 + back.ms / 1000) * 1e3;
  t.true(Math.abs(ran - 1_000_000) < 2, `the kernel ran ${ran} ns of slew`);
  t.true(Math.abs(Number(c.appliedNs()) - ran) < 2, `appliedNs ${c.appliedNs()} vs ${ran}`);
  t.is(c.pendingNs(), 0n);
  // The PLL never ran a correction.
  t.false(k.writes().some((w) => w.modes & ADJ_OFFSET));
});

test('a new correction replaces what is left of a slew, never adds to it', (t) => {
  const { k, t: timers, c } = clock();
  c.correct(1_000_000n, false);
  k.advance(500n * MS);
  c.correct(-100_000n, false);
  t.is(timers.pending.size, 1);
  t.is(c.appliedNs(), 250_000n);
  t.is(c.pendingNs(), -100_000n);
  t.is(k.frequencyPpm(), -500);
  k.advance(200n * MS);
  timers.only().fire();
  t.is(c.appliedNs(), 150_000n);
  t.is(k.frequencyPpm(), 0);
});

test('a frequency change during a slew keeps the slew rate on top of the new base', (t) => {
  const { k, t: timers, c } = clock(new FakeKernel({ freq: 10 * 65536 }));
  c.correct(1_000_000n, false);
  k.advance(1n * S);
  c.setFrequencyPpm(-4);
  t.is(c.frequencyPpm(), -4);
  t.is(k.frequencyPpm(), 10 - 4 + 500);
  k.advance(1n * S);
  timers.only().fire();
  t.is(k.frequencyPpm(), 6);
  t.is(c.disciplinedFrequencyPpm(), 6);
  t.is(c.appliedNs(), 1_000_000n);
});

test('a step goes through ADJ_SETOFFSET|ADJ_NANO, exact; at() maps monotonic to realtime exactly', (t) => {
  const { k, c } = clock();
  const m = k.mono;
  const before = c.at(m);
  t.is(before, m + k.offset);
  t.is(c.correct(-1_500_000_000n, true), 'step');
  const w = k.writes().at(-1)!;
  t.is(w.modes, ADJ_SETOFFSET | ADJ_NANO);
  t.deepEqual(w.time, { sec: -2, usec: 500_000_000 });
  t.is(c.at(m), before - 1_500_000_000n);
  t.is(c.now(), k.realtimeNs());
  t.is(c.appliedNs(), -1_500_000_000n);
  // Below the threshold, or without permission to step: a slew.
  t.is(c.correct(50_000n, true), 'slew');
  t.is(c.correct(5_000_000n, false), 'slew');
});

test('a step made by someone else is noticed by now() within 10 s, and told (the daemon warns); our own steps are not', (t) => {
  const k = new FakeKernel();
  const told: bigint[] = [];
  const c = new SystemClock({ kernel: k, timers: new FakeTimers(), maxSlewPpm: 500, stepThresholdNs: 100_000n, onForeignStep: (ns) => told.push(ns) });
  t.is(c.correct(2n * S, true), 'step');
  k.advance(11n * S);
  c.now();
  t.deepEqual(told, [], 'our own step is in the model already');
  k.offset += 5n * S;
  k.advance(11n * S);
  t.is(c.now(), k.realtimeNs());
  t.is(c.state().foreignSteps, 1);
  t.deepEqual(told, [5n * S]);
});

// ------------------------------------------------------------ kernel state and start frequency

test('start: kernel frequency kept (never reset to 0), STA_UNSYNC set, PLL untouched when off', (t) => {
  const { k } = clock(new FakeKernel({ freq: 37 * 65536, status: STA_UNSYNC }));
  t.is(k.frequencyPpm(), 37);
  t.is(k.status, STA_UNSYNC);
  t.false(k.writes().some((w) => w.modes & ADJ_OFFSET));
});

test('start from the saved frequency, with ADJ_TICK beyond 500 ppm', (t) => {
  const { k, c } = clock(new FakeKernel({ freq: 80 * 65536 }), { start: 750 });
  t.is(c.startFrequencyPpm, 750);
  t.is(k.tick, 10008);
  t.is(k.freq, -50 * 65536);
  t.true(k.writes().some((w) => (w.modes & (ADJ_FREQUENCY | ADJ_TICK)) === (ADJ_FREQUENCY | ADJ_TICK)));
});

test('start: a kernel PLL left on is reset (offset 0) and turned off, as chrony does', (t) => {
  const { k } = clock(new FakeKernel({ status: STA_PLL, pllOffset: 1234 }));
  t.is(k.pllOffset, 0);
  t.is(k.status & STA_PLL, 0);
  t.is(k.status & STA_UNSYNC, STA_UNSYNC);
});

test('synchronized: STA_UNSYNC clear and errors in µs (rounded up); lost or closed: STA_UNSYNC and 16 s; frequency kept', (t) => {
  const { k, t: timers, c } = clock(new FakeKernel({ freq: 20 * 65536 }));
  c.setFrequencyPpm(-5.5);
  c.markSynchronized(12_300n, 40_001n);
  t.is(k.status & STA_UNSYNC, 0);
  t.is(k.esterror, 13);
  t.is(k.maxerror, 41);
  t.true(c.isSynchronized());
  c.markUnsynchronized();
  t.is(k.status & STA_UNSYNC, STA_UNSYNC);
  t.is(k.maxerror, 16_000_000);
  c.markSynchronized(0n, 1000n);
  c.correct(300_000n, false);
  t.is(c.close(), 14.5);
  t.is(k.status & STA_UNSYNC, STA_UNSYNC);
  t.is(k.frequencyPpm(), 14.5, 'the learned frequency stays in force, the slew is dropped');
  t.is(timers.pending.size, 0);
  t.throws(() => c.correct(1n, false));
  t.is(c.close(), 14.5, 'idempotent');
});

// ------------------------------------------------------------ refusals, state file

function fakeProc(t: any, procs: Array<{ pid: number; comm: string; cmdline?: string[] }>, capEff = '000001ffffffffff'): string {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-proc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'self'));
  writeFileSync(join(dir, 'self', 'status'), `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`);
  for (const p of procs) {
    mkdirSync(join(dir, String(p.pid)));
    writeFileSync(join(dir, String(p.pid), 'comm'), `${p.comm}\n`);
    writeFileSync(join(dir, String(p.pid), 'cmdline'), (p.cmdline ?? [p.comm]).join('\0') + '\0');
  }
  return dir;
}

test('CAP_SYS_TIME is read from CapEff (bit 25)', (t) => {
  t.true(hasCapSysTime(fakeProc(t, [], '0000000002000000')));
  t.false(hasCapSysTime(fakeProc(t, [], '0000000001ffffff')));
  t.is(hasCapSysTime('/nonexistent'), null);
});

test('other time daemons are found in /proc; chronyd -x (which leaves the clock alone) is not', (t) => {
  const proc = fakeProc(t, [
    { pid: 10, comm: 'chronyd', cmdline: ['/usr/sbin/chronyd', '-F', '1'] },
    { pid: 11, comm: 'chronyd', cmdline: ['chronyd', '-x', '-f', '/tmp/c.conf'] },
    { pid: 12, comm: 'systemd-timesyn' },
    { pid: 13, comm: 'ntpd' },
    { pid: 14, comm: 'phc2sys' },
    { pid: 15, comm: 'bash' },
  ]);
  t.deepEqual(findTimeDaemons(proc, 1).map((d) => `${d.pid} ${d.name}`), ['10 chronyd', '12 systemd-timesyncd', '13 ntpd', '14 phc2sys']);
});

test('the kernel shows another discipline: PLL on, or STA_UNSYNC clear unless berkeleyd left it so', (t) => {
  const tx = (status: number) => new FakeKernel({ status }).adjtime({ modes: 0 }).timex;
  t.deepEqual(kernelEvidence(tx(STA_UNSYNC), false), []);
  t.is(kernelEvidence(tx(STA_PLL | STA_UNSYNC), false).length, 1);
  t.regex(kernelEvidence(tx(0), false)[0]!, /STA_UNSYNC is clear/);
  t.deepEqual(kernelEvidence(tx(0), true), []);
});

test('openSystemClock refuses without CAP_SYS_TIME, and beside another time service unless forced', (t) => {
  const noCap = fakeProc(t, [], '0000000000000000');
  const e1 = t.throws(() => openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: null, force: false, kernel: new FakeKernel(), procRoot: noCap }));
  t.true(e1 instanceof ClockRefused && e1.reason === 'capability');
  t.regex(e1!.message, /CAP_SYS_TIME.*AmbientCapabilities=CAP_SYS_TIME/s);
  // CapEff says yes but the kernel says EPERM (a user namespace): the same refusal.
  const e2 = t.throws(() => openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: null, force: false, kernel: new FakeKernel({ privileged: false }), procRoot: fakeProc(t, []) }));
  t.is((e2 as ClockRefused).reason, 'capability');

  const proc = fakeProc(t, [{ pid: 42, comm: 'chronyd' }]);
  const k = new FakeKernel();
  const e3 = t.throws(() => openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: null, force: false, kernel: k, procRoot: proc }));
  t.is((e3 as ClockRefused).reason, 'other-discipline');
  t.regex(e3!.message, /chronyd is running \(pid 42\).*--force/);
  t.deepEqual(k.writes(), [], 'a refusal writes nothing');
  const ok = openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: null, force: true, kernel: k, procRoot: proc });
  t.deepEqual(ok.overridden, ['chronyd (pid 42)']);
});

test('the state file: round trip, start from it, a bad one refused with its path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'clock.json');
  t.is(readStateFile(path), null);
  writeStateFile(path, { frequencyPpm: -12.3456789, synchronized: true });
  t.like(readStateFile(path), { frequencyPpm: -12.345679, synchronized: true });
  const k = new FakeKernel({ freq: 99 * 65536, status: 0 });
  // STA_UNSYNC clear, but the state file says berkeleyd left it so (it died synchronized): not another service.
  const o = openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: path, force: false, kernel: k, procRoot: fakeProc(t, []) });
  t.is(o.startFrom, 'state-file');
  t.true(Math.abs(k.frequencyPpm() + 12.345679) < 2 ** -16, `${k.frequencyPpm()}: the kernel holds 2^-16 ppm`);
  writeFileSync(path, '{"frequencyPpm": "fast"}');
  const e = t.throws(() => openSystemClock({ maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: path, force: false, kernel: new FakeKernel(), procRoot: fakeProc(t, []) }));
  t.is((e as ClockRefused).reason, 'state-file');
  t.true(e!.message.includes(path));
  t.regex(readFileSync(path, 'utf8'), /fast/);
});

// ------------------------------------------------------------ the daemon's keeper

test('the keeper: synchronized corrections clear STA_UNSYNC and save the state file; lost and closed set it again', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-keeper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'clock.json');
  const { k, c } = clock(new FakeKernel({ freq: 12 * 65536 }));
  const warnings: string[] = [];
  const keeper = new SystemClockKeeper(c, { stateFile: path, intervalNs: 1_000_000_000n, warn: (m) => warnings.push(m), log: () => {} });
  t.teardown(() => keeper.close());
  keeper.corrected(-40_000n, false, 300_000n);
  t.is(k.status & STA_UNSYNC, STA_UNSYNC, 'not yet synchronized: the kernel is not told so');
  t.is(readStateFile(path), null);
  c.setFrequencyPpm(-2);
  keeper.corrected(-40_000n, true, 300_000n);
  t.is(k.status & STA_UNSYNC, 0);
  t.is(k.esterror, 40);
  t.is(k.maxerror, 190, '|adjustment| + half the round trip');
  t.like(readStateFile(path), { frequencyPpm: 10, synchronized: true });
  keeper.lost('test');
  t.is(k.status & STA_UNSYNC, STA_UNSYNC);
  t.regex(warnings[0]!, /no longer synchronized \(test\): STA_UNSYNC set, frequency 10\.000 ppm kept/);
  t.like(readStateFile(path), { frequencyPpm: 10, synchronized: false });
  keeper.corrected(1_000n, true, 0n);
  t.is(k.maxerror, 151, 'no round trip this round: the last known one counts');
  t.deepEqual(keeper.close(), { ppm: 10, saved: { ok: true } });
  t.is(k.status & STA_UNSYNC, STA_UNSYNC);
  t.is(k.frequencyPpm(), 10);
  t.like(readStateFile(path), { frequencyPpm: 10, synchronized: false });
});

test('the keeper: a state file that cannot be written is tried again every round, warned about once, and the stop says it was not saved', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-keeper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Its directory is a file (as root, permissions would not stop the write): mkdir fails with ENOTDIR... until it is removed.
  const blocker = join(dir, 'state');
  writeFileSync(blocker, 'not a directory');
  const path = join(blocker, 'clock.json');
  const { c } = clock(new FakeKernel({ freq: 3 * 65536 }));
  const warnings: string[] = [];
  const logs: string[] = [];
  const keeper = new SystemClockKeeper(c, { stateFile: path, intervalNs: 1_000_000_000n, warn: (m) => warnings.push(m), log: (f, ...a) => logs.push(`${f} ${a.join(' ')}`) });
  t.teardown(() => keeper.close());
  for (let i = 0; i < 5; i++) keeper.corrected(1_000n, true, 100_000n);
  t.is(warnings.length, 1, `one warning for five failed rounds: ${warnings.join(' | ')}`);
  t.regex(warnings[0]!, /cannot write the state file .*clock\.json: .*trying again every round/);
  rmSync(blocker);
  keeper.corrected(1_000n, true, 100_000n);
  t.like(readStateFile(path), { frequencyPpm: 3, synchronized: true }, 'the next round wrote it');
  t.true(logs.some((l) => /written again/.test(l)));
  // Broken again at stop: the stop reports the failure, not a save.
  rmSync(dirname(path), { recursive: true });
  writeFileSync(blocker, 'not a directory');
  const closed = keeper.close();
  t.is(closed.ppm, 3);
  t.false(closed.saved!.ok);
  t.is(warnings.length, 2, 'a second warning: the state changed from written to failing');
  t.deepEqual(keeper.close(), closed, 'idempotent');
});

test('kernel marks alone (a stopped chrony or timesyncd leaves them): cleared when every process is visible or under the unit, refused when the scan is blind', (t) => {
  const opts = { maxSlewPpm: 500, stepThresholdNs: 100_000n, stateFile: null, force: false };
  // Every process visible (pid 1 readable), none a time service: the PLL timesyncd left on is taken over.
  const k1 = new FakeKernel({ status: STA_PLL | STA_UNSYNC, pllOffset: 300 });
  const o1 = openSystemClock({ ...opts, kernel: k1, procRoot: fakeProc(t, [{ pid: 1, comm: 'systemd' }]), env: {} });
  t.is(o1.leftovers.length, 2);
  t.regex(o1.leftovers[0]!, /STA_PLL/);
  t.is(k1.status & STA_PLL, 0);
  t.is(k1.pllOffset, 0);
  // chrony with rtcsync leaves STA_UNSYNC clear: the same.
  const k2 = new FakeKernel({ status: 0 });
  t.regex(openSystemClock({ ...opts, kernel: k2, procRoot: fakeProc(t, [{ pid: 1, comm: 'init' }]), env: {} }).leftovers[0]!, /STA_UNSYNC is clear/);
  t.is(k2.status & STA_UNSYNC, STA_UNSYNC);
  // Other users' processes hidden (hidepid, ProtectProc=invisible) and not under the unit: refused.
  const k3 = new FakeKernel({ status: STA_PLL | STA_UNSYNC });
  const e = t.throws(() => openSystemClock({ ...opts, kernel: k3, procRoot: fakeProc(t, []), env: {} }));
  t.is((e as ClockRefused).reason, 'other-discipline');
  t.regex(e!.message, /cannot see other users' processes/);
  t.deepEqual(k3.writes(), []);
  // Under the unit (INVOCATION_ID), whose Conflicts= has stopped the packaged services: taken over.
  t.is(openSystemClock({ ...opts, kernel: k3, procRoot: fakeProc(t, []), env: { INVOCATION_ID: 'abc' } }).leftovers.length, 1);
});
