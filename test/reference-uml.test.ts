/**
 * `--reference system` on real kernels: three User-Mode Linux guests
 * (helpers/uml.ts). g0's clock is disciplined from outside, as a time
 * service would do it (a small adjtimex program in the guest plays chrony:
 * it clears STA_UNSYNC with a small maxerror, runs the clock 40 ppm fast,
 * steps it, and clears STA_UNSYNC again after the step, which Linux sets at
 * every step); g0 runs `berkeleyd run --reference system` and reads that
 * clock without setting it; g1 and g2 run `--clock system` and must follow
 * it. Then the reference is lost (STA_UNSYNC set, and it steps 2 ms
 * meanwhile): the group must fall back and not follow; and it comes back:
 * the group slews to it without a step. The guests' CLOCK_REALTIME are
 * compared with probes every guest's kernel stamps (helpers/uml-stamps.ts).
 * Never this machine's clock.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_DIR, GUEST_STAMPER, UmlLan, umlAvailability, type Guest } from './helpers/uml.js';
import { buildC } from './helpers/uml-probe.js';
import { pct, Prober, sleep, stats, us, type Row } from './helpers/uml-stamps.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'bin', 'berkeleyd.js');
const alone = process.env.BERKELEYD_UML_TESTS === '1';
const avail = alone ? umlAvailability() : ({ ok: false, why: 'npm test runs the guests after the rest of the suite, beside the container tests (BERKELEYD_UML_TESTS=1 npx ava dist/test/reference-uml.test.js)' } as const);
const uml = avail.ok ? test.serial : test.skip;
const skipped = avail.ok ? '' : ` (skipped: ${avail.why})`;

/**
 * The stand-in time service: adjtimex(2) through ctypes (struct timex as
 * glibc lays it out on 64-bit Linux). sync MAXERROR_US: STA_UNSYNC clear,
 * maxerror set; unsync: STA_UNSYNC set; step NS: ADJ_SETOFFSET.
 */
const CLOCKCTL = `import ctypes, struct, sys
b = ctypes.create_string_buffer(208)
cmd = sys.argv[1]
if cmd == 'sync':
    struct.pack_into('I', b, 0, 0x0010 | 0x0004)
    struct.pack_into('q', b, 24, int(sys.argv[2]))
    struct.pack_into('i', b, 40, 0)
elif cmd == 'unsync':
    struct.pack_into('I', b, 0, 0x0010)
    struct.pack_into('i', b, 40, 0x40)
elif cmd == 'step':
    ns = int(sys.argv[2])
    struct.pack_into('I', b, 0, 0x0100 | 0x2000)
    struct.pack_into('q', b, 72, ns // 1000000000)
    struct.pack_into('q', b, 80, ns % 1000000000)
r = ctypes.CDLL(None).adjtimex(b)
print('clockctl', cmd, r, 'status', struct.unpack_from('i', b, 40)[0], 'maxerror', struct.unpack_from('q', b, 24)[0])
`;

let lan: UmlLan | null = null;
let prober: Prober | null = null;

test.before(async () => {
  if (!avail.ok) return;
  const shim = buildC('uml-xstate', true);
  lan = await UmlLan.start({ guests: 3, preload: shim.ok ? shim.path : null });
  prober = new Prober(lan);
  writeFileSync(join(lan.dir, 'clockctl.py'), CLOCKCTL);
  await Promise.all(lan.guests.map((g) => g.background(`python3 ${GUEST_STAMPER} 7799`, null)));
  await Promise.all(lan.guests.map((g) => g.waitLine(/^@@STAMPER/, 15_000)));
});

test.after.always(() => {
  lan?.destroySync();
});

/** Each peer's clock minus g0's (the reference), at each measurable probe, ns. */
const fromRef = (rows: Row[]): number[][] => rows.filter((r) => r.atSend !== null).map((r) => r.atSend!.slice(1).map((x) => Number(x - r.atSend![0]!)));

uml(`the group follows a reference that another service disciplines, falls back to its average when it is lost, and slews back without a step${skipped}`, async (t) => {
  t.timeout(180_000);
  const [g0, g1, g2] = lan!.guests as [Guest, Guest, Guest];
  const ctl = (g: Guest, args: string) => g.run(`python3 ${GUEST_DIR}/clockctl.py ${args}`);
  // The stand-in service: g0 synchronized, 40 ppm fast; the peers' clocks start 2 s and 1 s off, ±60 ppm.
  const hostS = Math.floor(Date.now() / 1000);
  await ctl(g0, 'sync 1000');
  await g0.run('busybox adjtimex -f 2621440 >/dev/null');
  await g1.run(`busybox date -s @${hostS + 2} >/dev/null && busybox adjtimex -f ${60 * 65536} >/dev/null`);
  await g2.run(`busybox date -s @${hostS - 1} >/dev/null && busybox adjtimex -f ${-60 * 65536} >/dev/null`);
  const common = `--interface eth0 --interval 250ms --control /tmp/berkeleyd.sock`;
  await g0.background(`node ${CLI} run --reference system --node-id g0 ${common} 2>&1 | tee /tmp/daemon.log`, null);
  for (const g of [g1, g2]) await g.background(`node ${CLI} run --clock system --node-id ${g.name} --state-file /tmp/clock.json ${common}`, '/tmp/daemon.log');
  const start = await g0.waitLine(/following the system clock as a reference, read only, never set/, 20_000);
  t.log(start.text.replace(/^.*?following/, 'g0: following'));
  // Follow: 6 s to converge (24 rounds), then 4 s of probes.
  await sleep(6_000);
  const following = fromRef(prober!.stampsOf(await prober!.probes(80, 50))).flat();
  t.true(following.length > 80, `only ${following.length} measurable offsets`);
  const abs = (xs: number[]): number[] => xs.map(Math.abs);
  t.log(`following (40 ppm fast): g1, g2 minus the reference ${stats(abs(following))}`);
  t.true(pct(abs(following), 99) < 1_000_000, 'the peers follow the reference within 1 ms');
  // The service steps the reference by 1 ms (as chrony's makestep): berkeleyd's clock on g0 runs on CLOCK_MONOTONIC, so only the reference mode brings the group there.
  // Linux marks the clock unsynchronized at every step (ntp_clear: STA_UNSYNC, maxerror 16 s); the service says it is synchronized again at its next update.
  await ctl(g0, 'step 1000000');
  await ctl(g0, 'sync 1000');
  for (let i = 0; i < 4; i++) {
    await sleep(1_000);
    const r = JSON.parse((await g0.run(`node ${CLI} status --json --control /tmp/berkeleyd.sock`)).out).reference;
    const o = fromRef(prober!.stampsOf(await prober!.probes(3, 50))).flat();
    t.log(`+${i + 1} s: g0 ${r.state}, group clock − reference ${(Number(r.offsetNs) / 1000).toFixed(0)} µs; peers − reference ${o.map((x) => us(x)).join(' ')}`);
  }
  const stepped = fromRef(prober!.stampsOf(await prober!.probes(40, 50))).flat();
  t.log(`after a 1 ms step of the reference: ${stats(abs(stepped))}`);
  t.true(pct(abs(stepped), 50) < 300_000, 'the group went to the stepped reference');
  // Lost: STA_UNSYNC, and a 2 ms step meanwhile that the group must not follow.
  const mark = g0.lines.length;
  const lostMs = performance.now();
  await ctl(g0, 'unsync');
  await ctl(g0, 'step 2000000');
  const said = await g0.waitLine(/reference lost in round \d+: the reference clock is unsynchronized/, 5_000, mark);
  const lost = prober!.stampsOf(await prober!.probes(40, 50));
  const lostOffsets = fromRef(lost);
  const peerSpread = lostOffsets.map((o) => Math.abs(o[0]! - o[1]!));
  t.log(`lost: said ${(said.atMs - lostMs).toFixed(0)} ms after STA_UNSYNC was set (interval 250 ms); spread g1-g2 while lost ${stats(peerSpread)}; peers minus the reference ${us(pct(lostOffsets.flat(), 50))} (it stepped 2 ms)`);
  t.true(lostOffsets.flat().every((o) => o < -1_200_000), 'while lost, the group does not follow the reference');
  const st = JSON.parse((await g0.run(`node ${CLI} status --json --control /tmp/berkeleyd.sock`)).out);
  t.is(st.reference.state, 'lost');
  // Back: the service says synchronized again; the group slews 2 ms back (250 ppm: 8 s).
  const mark2 = g0.lines.length;
  await ctl(g0, 'sync 1000');
  await g0.waitLine(/reference back in round \d+: the group slews to it/, 5_000, mark2);
  const back = fromRef(prober!.stampsOf(await prober!.probes(240, 50)));
  let largest = 0;
  for (let i = 1; i < back.length; i++) for (let k = 0; k < 2; k++) largest = Math.max(largest, Math.abs(back[i]![k]! - back[i - 1]![k]!));
  const tail = back.slice(-40).flat();
  t.log(`return: largest change of a peer's offset between probes (~50 ms apart) ${us(largest)}; at the end ${stats(abs(tail))}`);
  t.true(largest < 1_000_000, `no step on return (largest move ${us(largest)})`);
  t.true(pct(abs(tail), 50) < 300_000, 'the group is back on the reference');
  // g0's clock was read, never set: its kernel frequency is what the stand-in service put there.
  t.regex((await g0.run('busybox adjtimex | grep freq.adjust')).out, /freq.adjust:\s+2621440/);
});
