/**
 * --reference on real daemons on loopback: a master that follows a
 * simulated external reference (--reference file:PATH: a clock that runs
 * 100 ppm fast, described by a file the test rewrites) and three peers with
 * simulated clocks. The group must follow the reference's rate and phase;
 * when the reference says it is unsynchronized (and meanwhile steps by
 * 2 ms) the group falls back to its own average and does not follow; when
 * it is back, the group slews to it without a step. Every process shares
 * CLOCK_MONOTONIC, so each daemon's group clock is compared with the
 * reference exactly (lib/daemon/truth.ts's idea).
 *
 * Plus the pure parts: the tracker's states and limits, the table's
 * arithmetic, and the system reader over the fake kernel.
 */
import test from 'ava';
import { writeFileSync, renameSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { referenceTimeAt, systemReference, type ReferenceFile } from '../lib/clock/reference.js';
import { STA_UNSYNC } from '../lib/clock/timex.js';
import { faultTolerantAverage } from '../lib/core/average.js';
import { RETURN_PPM, ReferenceTracker, referenceFault, towardReference, type ReferenceSample } from '../lib/core/reference.js';
import { query } from '../lib/daemon/control.js';
import { FakeKernel } from './helpers/fake-kernel.js';
import { cli, sleep, testCluster, testGroup, waitFor } from './helpers/group.js';

test('towardReference: the master adjusts by the target, each peer by the target less its offset; the selection still names outliers', (t) => {
  const r = faultTolerantAverage(
    [
      { node: 1n, offsetNs: 0n, errorNs: 10n },
      { node: 2n, offsetNs: -90n, errorNs: 10n },
      { node: 3n, offsetNs: -95n, errorNs: 10n },
      { node: 4n, offsetNs: 5_000n, errorNs: 10n },
    ],
    20_000n,
  );
  const f = towardReference(r, 7n);
  t.is(f.averageNs, 7n);
  t.deepEqual(f.entries.map((e) => e.adjustmentNs), [7n, 97n, 102n, -4_993n]);
  t.deepEqual(f.entries.map((e) => e.outlier), r.entries.map((e) => e.outlier));
  t.true(f.entries.find((e) => e.node === 4n)!.outlier);
  t.is(towardReference(r, null), r);
});

test('ReferenceTracker: follows, is lost on STA_UNSYNC, on maxerror and when unreadable, and comes back slewing at most RETURN_PPM of the interval per round', (t) => {
  let sample: ReferenceSample | { error: string } = { offsetNs: -40n, unsync: false, maxErrorNs: 1_000_000n };
  const tr = new ReferenceTracker(() => sample, 100_000_000n);
  const changes: string[] = [];
  const change = (s: string, why: string | null): void => void changes.push(why ? `${s}: ${why}` : s);
  const interval = 1_000_000_000n;
  const limit = (RETURN_PPM * interval) / 1_000_000n;
  t.is(tr.target(interval, true, change), 40n);
  t.is(tr.state, 'following');
  sample = { offsetNs: -40n, unsync: true, maxErrorNs: 1_000_000n };
  t.is(tr.target(interval, true, change), null);
  t.is(tr.state, 'lost');
  t.is(tr.target(interval, true, change), null);
  t.is(tr.losses, 1, 'one loss, however many rounds it lasts');
  sample = { offsetNs: 5_000_000n, unsync: false, maxErrorNs: 1_000_000n };
  t.is(tr.target(interval, true, change), -limit);
  t.is(tr.state, 'returning');
  t.is(tr.target(interval, false, change), -5_000_000n, 'before the first synchronization: at once');
  sample = { offsetNs: 1_000n, unsync: false, maxErrorNs: 200_000_000n };
  t.is(tr.target(interval, true, change), null);
  t.regex(tr.why!, /maximum error 200000 µs exceeds/);
  sample = { error: 'EIO' };
  t.is(tr.target(interval, true, change), null);
  t.regex(tr.why!, /cannot read the reference: EIO/);
  sample = { offsetNs: 1_000n, unsync: false, maxErrorNs: 0n };
  t.is(tr.target(interval, true, change), -1_000n);
  t.is(tr.state, 'following');
  t.is(tr.losses, 2);
  t.deepEqual(changes.map((c) => c.split(':')[0]), ['lost', 'returning', 'lost', 'following']);
  t.is(referenceFault({ offsetNs: 0n, unsync: false, maxErrorNs: 100n }, 100n), null, 'the bound itself is healthy');
});

test('systemReference reads the kernel clock without setting it: STA_UNSYNC and maxerror (µs) as the kernel reports them', (t) => {
  const k = new FakeKernel();
  let mono = 5_000n;
  const ref = systemReference(k, () => (mono += 2n));
  k.status = 0;
  k.maxerror = 1500;
  const r = ref.read();
  t.false(r.unsync);
  t.is(r.maxErrorNs, 1_500_000n);
  t.is(r.monoNs, 5_003n);
  k.status = STA_UNSYNC;
  t.true(ref.read().unsync);
  t.true(k.calls.every((q) => q.modes === 0), 'only reads (modes 0)');
});

/** The reference as the test defines it: versions of the file, each in force from its monoNs. */
class RefScript {
  readonly versions: ReferenceFile[] = [];
  constructor(readonly path: string) {}
  write(f: ReferenceFile): void {
    writeFileSync(`${this.path}.tmp`, JSON.stringify(f));
    renameSync(`${this.path}.tmp`, this.path);
    this.versions.push(f);
  }
  /** Change the reference from now on: a step, a health. */
  change(over: Partial<Omit<ReferenceFile, 'monoNs' | 'timeNs'>> & { stepNs?: bigint }): void {
    const last = this.versions[this.versions.length - 1]!;
    const mono = process.hrtime.bigint();
    const { stepNs, ...rest } = over;
    this.write({ ...last, ...rest, monoNs: mono.toString(), timeNs: (referenceTimeAt(last, mono) + (stepNs ?? 0n)).toString() });
  }
  at(monoNs: bigint): bigint {
    let v = this.versions[0]!;
    for (const x of this.versions) if (BigInt(x.monoNs) <= monoNs) v = x;
    return referenceTimeAt(v, monoNs);
  }
}

const US = 1_000n;
const fmt = (ns: bigint | number): string => `${(Number(ns) / 1000).toFixed(1)} µs`;
const pct = (xs: bigint[], p: number): bigint => {
  const s = [...xs].map((x) => (x < 0n ? -x : x)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

test('real daemons: the group follows a reference running 100 ppm fast, falls back to its average when it is lost, and slews back without a step', async (t) => {
  t.timeout(90_000);
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-ref-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ref = new RefScript(join(dir, 'reference.json'));
  const mono0 = process.hrtime.bigint();
  ref.write({ monoNs: mono0.toString(), timeNs: (BigInt(Date.now()) * 1_000_000n).toString(), driftPpm: 100, unsync: false, maxErrorUs: 2000 });
  const g = await testGroup(200);
  const c = testCluster(t);
  await c.add({ name: 'ref', args: [...g.args, '--reference', `file:${ref.path}`] });
  const peers = [
    ['p1', '-30', '2ms'],
    ['p2', '15', '-1ms'],
    ['p3', '40', '500us'],
  ];
  for (const [name, drift, offset] of peers) await c.add({ name: name!, args: [...g.args, '--sim-drift', drift!, '--sim-offset', offset!] });
  const names = ['ref', ...peers.map((p) => p[0]!)];
  /** Each clock minus the reference, at the instant of its reading. */
  const offsets = async (): Promise<bigint[]> =>
    Promise.all(
      names.map(async (n) => {
        const r = (await query(c.member(n).control, 'reading')) as { groupTimeNs: string; monotonicNs: string };
        return BigInt(r.groupTimeNs) - ref.at(BigInt(r.monotonicNs));
      }),
    );
  const within = (xs: bigint[], ns: bigint): boolean => xs.every((x) => x <= ns && x >= -ns);
  await waitFor('every clock within 200 µs of the reference', async () => (within(await offsets(), 200n * US) ? true : undefined), 30_000, { everyMs: 200 });
  // Converged: 4 s of readings. The reference runs 100 ppm fast: 400 µs over that time that the group must follow.
  const followed: bigint[] = [];
  for (let i = 0; i < 20; i++) {
    followed.push(...(await offsets()));
    await sleep(200);
  }
  t.log(`following: offset from the reference p50 ${fmt(pct(followed, 50))} p99 ${fmt(pct(followed, 99))} max ${fmt(pct(followed, 100))} (${followed.length} readings)`);
  t.true(within(followed, 300n * US), `the group follows the reference: ${followed.map(fmt).join(', ')}`);
  let st = await c.status('ref');
  t.is(st.reference?.state, 'following');
  t.is((await c.status('p1')).masterId, 'ref');
  t.true((await c.status('p1')).masterReference, "the peers see in SYNC that their group's time follows a reference");
  // Lost: STA_UNSYNC, and the reference steps 2 ms meanwhile: the group must not follow it.
  const lostAt = process.hrtime.bigint();
  ref.change({ unsync: true, stepNs: 2_000n * US });
  await waitFor('the master to say the reference is lost', async () => ((await c.status('ref')).reference?.state === 'lost' ? true : undefined), 5_000, { everyMs: 20 });
  const fallbackMs = Number(process.hrtime.bigint() - lostAt) / 1e6;
  const whileLost: bigint[][] = [];
  for (let i = 0; i < 10; i++) {
    whileLost.push(await offsets());
    await sleep(200);
  }
  const spreads = whileLost.map((o) => o.reduce((a, b) => (b > a ? b : a)) - o.reduce((a, b) => (b < a ? b : a)));
  t.log(`lost: said so within ${fallbackMs.toFixed(0)} ms; group spread while lost p50 ${fmt(pct(spreads, 50))} max ${fmt(pct(spreads, 100))}`);
  t.true(whileLost.flat().every((o) => o < -1_200n * US), 'while lost the group keeps its own time: it does not follow the reference\'s 2 ms step');
  st = await c.status('ref');
  t.regex(st.reference!.why!, /STA_UNSYNC/);
  t.is(st.reference!.losses, 1);
  const metrics = (await query(c.member('ref').control, 'metrics')) as { text: string };
  t.regex(metrics.text, /berkeleyd_reference_state\{state="lost"\} 1/);
  const text = await cli(['status', '--control', c.member('ref').control]);
  t.regex(text.stdout, /^Reference +: file LOST \(the reference clock is unsynchronized.*the group runs on its average; group clock − reference -\d/m, text.text);
  t.regex(c.member('ref').stderr, /reference lost in round \d+: the reference clock is unsynchronized/);
  // Back: the group slews 2 ms back (250 ppm: 8 s), each clock moving at most its slew rate between readings.
  ref.change({ unsync: false });
  let prev = await offsets();
  let largest = 0n;
  let who = '';
  const backAt = process.hrtime.bigint();
  await waitFor(
    'every clock back within 200 µs of the reference',
    async () => {
      const o = await offsets();
      o.forEach((x, i) => {
        const d = x - prev[i]! < 0n ? prev[i]! - x : x - prev[i]!;
        if (d > largest) [largest, who] = [d, names[i]!];
      });
      prev = o;
      return within(o, 200n * US) ? true : undefined;
    },
    45_000,
    { everyMs: 100 },
  );
  t.log(`return: within 200 µs after ${(Number(process.hrtime.bigint() - backAt) / 1e6).toFixed(0)} ms; largest change of a clock's offset between readings (~100 ms apart) ${fmt(largest)} (${who})`);
  t.true(largest < 1_000n * US, `no step on return: the largest move between readings was ${fmt(largest)}`);
  t.regex(c.member('ref').stderr, /reference back in round \d+: the group slews to it/);
});

test('run --reference: system with --clock system, with --priority 0, or an unknown source: exit 2 naming it', async (t) => {
  const g = await testGroup();
  const bad: Array<[string[], RegExp]> = [
    [['--reference', 'system', '--clock', 'system'], /--reference and --clock system contradict each other.*leave --clock virtual/],
    [['--reference', 'system', '--priority', '0'], /--reference makes this node the master; --priority 0 contradicts it/],
    [['--reference', 'ntp'], /"ntp": expected none, system or file:PATH/],
  ];
  for (const [args, message] of bad) {
    const r = await cli(['run', ...g.args, ...args]);
    t.is(r.code, 2, r.text);
    t.regex(r.stderr, message, r.text);
  }
});
