/**
 * Receive timestamps (lib/net/stamps.ts, lib/net/ffi.ts, the transport):
 * the conversion of kernel stamps to the monotonic base and the tests that
 * reject them, with fake clocks; then real sockets: on loopback every
 * datagram of a burst gets its own kernel stamp (read after each delivery,
 * not the last of a batch), and between network namespaces the daemons'
 * status counters show kernel stamps for every exchange.
 */
import test, { type ExecutionContext } from 'ava';
import { loadSocketCalls, parseIpv4, type SocketCalls } from '../lib/net/ffi.js';
import { newStampCounters, RxStamper, STAMPER_DEFAULTS, type StampClocks } from '../lib/net/stamps.js';
import { freeUdpPort, Transport, type RxTime } from '../lib/net/transport.js';
import { transmitStampOffset, encode, decode } from '../lib/wire/codec.js';
import { MessageType } from '../lib/wire/messages.js';
import { netnsAvailable } from './helpers/netns.js';
import { withLanGroup } from './helpers/lan-group.js';
import { sleep } from './helpers/group.js';

/** Fake clocks: CLOCK_REALTIME = monotonic + offsetNs; each reading advances monotonic time by stepNs. */
function fakeClocks(o: { offsetNs: bigint; stepNs?: bigint; kernel?: () => bigint | null }) {
  const c = { mono: 1_000_000_000n, offsetNs: o.offsetNs, kernel: o.kernel ?? ((): bigint | null => null), reads: 0 };
  const step = o.stepNs ?? 100n;
  const clocks: StampClocks = {
    monoNs: () => ((c.mono += step), c.mono),
    realNs: () => ((c.mono += step), c.mono + c.offsetNs),
    lastRxRealNs: () => c.kernel(),
  };
  return { c, clocks };
}

test('a kernel stamp becomes monotonic time exactly: its age is taken against a bracketed pairing', (t) => {
  const offset = 1_700_000_000_000_000_000n;
  const { c, clocks } = fakeClocks({ offsetNs: offset });
  const s = new RxStamper(clocks);
  const counters = newStampCounters();
  // The datagram reached the kernel at monotonic 1.000000500 s; JS saw it 30 µs later.
  const arrival = 1_000_000_500n;
  c.mono = arrival + 30_000n;
  c.kernel = () => arrival + offset;
  const r = s.stamp(5, c.mono, counters);
  t.deepEqual(r, { monoNs: arrival, source: 'kernel' });
  t.deepEqual(counters, { ...newStampCounters(), kernel: 1 });
});

test('missing, late and far-too-old kernel stamps are rejected and counted; the user-space stamp is used', (t) => {
  const { c, clocks } = fakeClocks({ offsetNs: 0n });
  const s = new RxStamper(clocks);
  const counters = newStampCounters();
  const user = (): bigint => c.mono;
  c.kernel = () => null;
  t.is(s.stamp(5, user(), counters).source, 'user', 'none');
  c.kernel = () => c.mono + 1_000n; // after the user-space stamp
  const u = user();
  t.deepEqual(s.stamp(5, u, counters), { monoNs: u, source: 'user' }, 'late');
  c.kernel = () => c.mono - STAMPER_DEFAULTS.maxAgeNs - 1_000n;
  t.is(s.stamp(5, user(), counters).source, 'user', 'old');
  c.kernel = () => c.mono - 50_000n;
  t.is(s.stamp(5, user(), counters).source, 'kernel', 'a stamp 50 µs old is fine');
  t.deepEqual(counters, { kernel: 1, user: 3, missing: 1, late: 1, old: 1, step: 0 });
});

/** A stamper on fake clocks that has taken one kernel stamp (20 µs old), CLOCK_REALTIME = CLOCK_MONOTONIC. */
function stamperAfterOne(t: ExecutionContext) {
  const { c, clocks } = fakeClocks({ offsetNs: 0n });
  const s = new RxStamper(clocks);
  const counters = newStampCounters();
  c.kernel = () => c.mono + c.offsetNs - 20_000n;
  t.is(s.stamp(5, c.mono, counters).source, 'kernel');
  return { c, s, counters };
}

test('a step of CLOCK_REALTIME rejects the stamps that may straddle it, for maxAgeNs; time passing alone does not', (t) => {
  const { c, s, counters } = stamperAfterOne(t);
  // One second later, the host clock slewed meanwhile: a slew (like any frequency change) runs CLOCK_MONOTONIC
  // alike, so the offset between them did not move, and the stamp is fine.
  c.mono += 1_000_000_000n;
  t.is(s.stamp(5, c.mono, counters).source, 'kernel');
  // Then stepped forward by 2 s: the stamp may straddle the step.
  c.mono += 1_000_000n;
  c.offsetNs += 2_000_000_000n;
  t.is(s.stamp(5, c.mono, counters).source, 'user');
  // Stamps read within maxAgeNs of the step may still be from before it: user-space stamps too.
  c.mono += 1_000_000n;
  t.is(s.stamp(5, c.mono, counters).source, 'user');
  // Past that, kernel stamps again.
  c.mono += STAMPER_DEFAULTS.maxAgeNs;
  t.is(s.stamp(5, c.mono, counters).source, 'kernel');
  t.deepEqual(counters, { kernel: 3, user: 2, missing: 0, late: 0, old: 0, step: 2 });
});

test('datagrams stamped before a small step and read after it are all rejected, not only the first (their stamps are in the old time base)', (t) => {
  const { c, s, counters } = stamperAfterOne(t);
  // Two datagrams reach the kernel at monotonic A and A + 1 ms, stamped in the old base; then the clock is stepped
  // forward by 50 ms (a newcomer's coarse step, under the 100 ms that late/old catch), then both are read.
  c.mono += 1_000_000_000n;
  const a = c.mono;
  c.mono += 3_000_000n;
  c.offsetNs += 50_000_000n;
  c.kernel = () => a;
  t.is(s.stamp(5, c.mono, counters).source, 'user', 'the first read reveals the step');
  c.kernel = () => a + 1_000_000n;
  const second = s.stamp(7, c.mono + 10_000n, counters);
  t.is(second.source, 'user', `the second would be ${a + 1_000_000n - second.monoNs} ns off with the new offset`);
  t.deepEqual(counters, { kernel: 1, user: 2, missing: 0, late: 0, old: 0, step: 2 });
});

test('a pairing interrupted between its readings is read again and the narrower bracket kept', (t) => {
  let reads = 0;
  let mono = 10_000_000_000n;
  const clocks: StampClocks = {
    // The first pairing's second monotonic read comes 1 ms late (preempted).
    monoNs: () => ((reads += 1), (mono += reads === 2 ? 1_000_000n : 100n)),
    realNs: () => (mono += 100n),
    lastRxRealNs: () => 9_999_000_000n,
  };
  const counters = newStampCounters();
  const r = new RxStamper(clocks).stamp(3, 10_010_000_000n, counters);
  t.is(reads, 4, 'two pairings');
  // Second pairing: monotonic 10_001_000_300 / _500 around realtime _400: offset 0 exactly.
  t.deepEqual(r, { monoNs: 9_999_000_000n, source: 'kernel' });
});

test('a pairing slowed within its bracket moves no stamp: the offset is where every pairing since the last step says', (t) => {
  // CLOCK_REALTIME = CLOCK_MONOTONIC + 5 s exactly. Each pairing reads monotonic, realtime, monotonic; the gaps
  // between the reads are scripted: [before the realtime read, after it].
  const offset = 5_000_000_000n;
  let mono = 20_000_000_000n;
  let gaps: [bigint, bigint] = [100n, 100n];
  let phase = 0;
  const clocks: StampClocks = {
    monoNs: () => (phase === 0 ? ((phase = 1), mono) : ((phase = 0), (mono += gaps[1]))),
    realNs: () => (mono += gaps[0]) + offset,
    lastRxRealNs: () => mono - 40_000n + offset,
  };
  const s = new RxStamper(clocks);
  const counters = newStampCounters();
  const arrival = (): bigint => mono - 40_000n;
  // Tight pairings, the realtime read in the middle of each bracket: exact.
  let want = arrival();
  t.is(s.stamp(3, mono + 1_000n, counters).monoNs, want, 'first pairing');
  mono += 1_000_000n;
  want = arrival();
  t.is(s.stamp(3, mono + 1_000n, counters).monoNs, want, 'a second one agrees');
  // Preempted for 9 µs after the realtime read, inside the 20 µs a bracket may take: alone, its middle would put
  // the offset 4.45 µs off and the stamp 4.45 µs late.
  mono += 1_000_000n;
  gaps = [100n, 9_000n];
  want = arrival();
  const slowed = s.stamp(3, mono + 20_000n, counters).monoNs;
  t.is(slowed - want, 0n, 'the slowed pairing narrows nothing and moves nothing');
  // CLOCK_REALTIME stepped by 3 ms: the old intersection no longer holds, and the next stamps follow the new offset.
  gaps = [100n, 100n];
  mono += 1_000_000n;
  const stepped = offset + 3_000_000n;
  clocks.realNs = () => (mono += gaps[0]) + stepped;
  clocks.lastRxRealNs = () => mono - 40_000n + stepped;
  s.stamp(3, mono + 1_000n, counters);
  mono += STAMPER_DEFAULTS.maxAgeNs + 1_000_000n;
  want = arrival();
  const after = s.stamp(3, mono + 1_000n, counters);
  t.is(after.source, 'kernel');
  t.is(after.monoNs, want, 'after the step, the new offset');
  t.is(counters.step, 1, 'the stamp read across the step was rejected');
});

test('parseIpv4 takes dotted quads only', (t) => {
  t.is(parseIpv4('127.0.0.1'), 0x7f000001);
  t.is(parseIpv4('239.255.1.2'), 0xefff0102);
  t.is(parseIpv4('255.255.255.255'), 0xffffffff);
  for (const bad of ['256.0.0.1', 'localhost', '::1', '1.2.3', '1.2.3.4.5', '']) t.is(parseIpv4(bad), null, bad);
});

test('the transmit stamp offset points at t1 of a request and T3 of a reply in the encoded bytes', (t) => {
  const h = { domain: 7, sender: 42n, epoch: 3, round: 9 };
  const req = encode({ type: MessageType.TimeRequest, ...h, nonce: 5n, originNs: 0n });
  req.writeBigInt64BE(123_456_789n, transmitStampOffset(MessageType.TimeRequest)!);
  const r1 = decode(req);
  t.true(r1.ok && r1.msg.type === MessageType.TimeRequest && r1.msg.originNs === 123_456_789n);
  const rep = encode({ type: MessageType.TimeReply, ...h, nonce: 5n, originNs: 1n, receiveNs: 2n, transmitNs: 0n });
  rep.writeBigInt64BE(-987n, transmitStampOffset(MessageType.TimeReply)!);
  const r2 = decode(rep);
  t.true(r2.ok && r2.msg.type === MessageType.TimeReply && r2.msg.transmitNs === -987n && r2.msg.receiveNs === 2n);
  t.is(transmitStampOffset(MessageType.Report), null);
});

// ------------------------------------------------------------ real sockets

const calls = loadSocketCalls();
const realTest = calls ? test : test.skip;
const noFfi = calls ? '' : ' (skipped: no koffi/libc here)';

/** The two families on loopback: the group the sockets join, the interface, and where the burst goes. */
const LOOPBACK = {
  4: { group: '239.255.250.1', interfaceAddress: '127.0.0.1', to: '127.0.0.1' },
  6: { group: 'ff05::b3d1:fa01', interfaceAddress: 'lo', to: '::1' },
} as const;

const burstTest = test.macro(async (t, family: 4 | 6) => {
  const real = calls!;
  const { to, ...where } = LOOPBACK[family];
  // A spy on the real calls: the raw CLOCK_REALTIME kernel stamps, in arrival order.
  const kernelStamps: bigint[] = [];
  const spy: SocketCalls = {
    realNs: () => real.realNs(),
    sendTo: (fd, d, ip, p) => real.sendTo(fd, d, ip, p),
    sendTo6: (fd, d, ip, scope, p) => real.sendTo6!(fd, d, ip, scope, p),
    lastRxRealNs: (fd) => {
      const k = real.lastRxRealNs(fd);
      if (k !== null) kernelStamps.push(k);
      return k;
    },
  };
  const got: { seq: number; rxMonoNs: bigint; source: string }[] = [];
  const port = await freeUdpPort();
  const opts = { ...where, port, ttl: 0 };
  const rx = new Transport({ ...opts, unicastPort: 0 }, (d, _f, rx) => got.push({ seq: d.readUInt32BE(0), rxMonoNs: rx(), source: rx.source! }), (e) => t.fail(e.message), spy);
  const tx = new Transport({ ...opts, unicastPort: 0 }, () => undefined, (e) => t.fail(e.message), real);
  t.teardown(async () => {
    await rx.stop();
    await tx.stop();
  });
  await rx.start();
  await tx.start();
  t.true(rx.kernelStamps);
  // Warm up: the first socket to ask switches the kernel's receive stamping on, from a work queue.
  for (let i = 0; i < 20 && got.length === 0; i++) {
    tx.sendTo(Buffer.from([0xff, 0xff, 0xff, 0xff]), to, rx.unicastPort);
    await sleep(50);
  }
  got.length = 0;
  kernelStamps.length = 0;
  const before = structuredClone(rx.counters.rxStamps.unicast);
  // A burst: all queued before the receiver's event loop runs, read by libuv in one go.
  const N = 64;
  const sentReal: bigint[] = [];
  for (let i = 0; i < N; i++) {
    const b = Buffer.alloc(48);
    b.writeUInt32BE(i, 0);
    sentReal.push(real.realNs());
    tx.sendTo(b, to, rx.unicastPort);
  }
  sentReal.push(real.realNs());
  for (let i = 0; i < 100 && got.length < N; i++) await sleep(20);
  t.is(got.length, N);
  t.deepEqual(got.map((g) => g.seq), [...Array(N).keys()], 'in order');
  const c = rx.counters.rxStamps.unicast;
  t.is(c.kernel - before.kernel, N, 'every datagram of the burst measured with the kernel stamp');
  t.is(c.user - before.user, 0);
  t.true(got.every((g) => g.source === 'kernel'));
  t.is(kernelStamps.length, N);
  // Datagram i was stamped inside its own send call: after the clock read before it, before the one after it.
  // (A stamp of the last datagram of a batch would break this for all but one of them.)
  for (let i = 0; i < N; i++) {
    if (!(sentReal[i]! <= kernelStamps[i]! && kernelStamps[i]! <= sentReal[i + 1]!)) {
      t.fail(`datagram ${i}: kernel stamp ${kernelStamps[i]} outside its send call [${sentReal[i]}, ${sentReal[i + 1]}]`);
      return;
    }
  }
  // And the monotonic times handed up keep that order.
  for (let i = 1; i < N; i++) t.true(got[i]!.rxMonoNs > got[i - 1]!.rxMonoNs, `monotonic order at ${i}`);
  t.is(tx.counters.tx.node, 0, 'every send went straight to sendto(2)');
});

realTest(`loopback: every datagram of a burst gets its own kernel stamp, taken inside its sender's send call${noFfi}`, burstTest, 4);
realTest(`loopback, IPv6 (udp6 sockets, sendto(2) to a sockaddr_in6): the same${noFfi}`, burstTest, 6);

realTest(`loopback: an arrival time asked for after the receive callback returned is the user-space stamp, and is not counted${noFfi}`, async (t) => {
  const kept: RxTime[] = [];
  const port = await freeUdpPort();
  const opts = { group: '239.255.250.3', port, interfaceAddress: '127.0.0.1', ttl: 0 };
  const rx = new Transport({ ...opts, unicastPort: 0 }, (_d, _f, time) => void kept.push(time), (e) => t.fail(e.message));
  const tx = new Transport({ ...opts, unicastPort: 0 }, () => undefined, (e) => t.fail(e.message));
  t.teardown(async () => {
    await rx.stop();
    await tx.stop();
  });
  await rx.start();
  await tx.start();
  for (let i = 0; i < 100 && kept.length === 0; i++) {
    if (i % 10 === 0) tx.sendTo(Buffer.from('late'), '127.0.0.1', rx.unicastPort);
    await sleep(10);
  }
  t.true(kept.length > 0);
  const before = structuredClone(rx.counters.rxStamps.unicast);
  const a = kept[0]!();
  t.is(kept[0]!.source, 'user');
  t.is(kept[0]!(), a, 'read once');
  t.deepEqual(rx.counters.rxStamps.unicast, before, 'nothing counted for a datagram whose time was not asked for in time');
});

const ns = netnsAvailable();
const nsTest = ns.ok && calls ? test : test.skip;
const nsSkipped = !calls ? noFfi : ns.ok ? '' : ` (skipped: ${ns.why})`;

nsTest(`between network namespaces: the daemons' counters show kernel stamps for every exchange${nsSkipped}`, async (t) => {
  await withLanGroup(t, { hosts: 2, intervalMs: 250 }, async (g, lan) => {
    await g.start([
      { name: 'm', host: lan.hosts[0]!, args: ['--master'] },
      { name: 'p', host: lan.hosts[1]!, args: ['--priority', '0'] },
    ]);
    // Rounds complete; every datagram of the exchanges crossed the bridge.
    for (let i = 0; i < 80; i++) {
      const s = await g.status('m');
      if ((s.lastRound?.round ?? 0) >= 8) break;
      await sleep(100);
    }
    for (const name of ['m', 'p']) {
      const s = await g.status(name);
      const u = s.counters.net.rxStamps.unicast;
      t.true(u.kernel > 20, `${name}: ${u.kernel} exchanges' datagrams`);
      t.is(u.user, 0, `${name}: no user-space stamp on the unicast socket (${JSON.stringify(u)})`);
      t.is(s.counters.net.tx.node, 0, `${name}: every send direct`);
      t.log(`${name}: unicast ${JSON.stringify(u)}, group ${JSON.stringify(s.counters.net.rxStamps.group)}`);
    }
  });
});
