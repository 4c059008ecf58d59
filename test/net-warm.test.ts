/**
 * Warming the send path (lib/net/warm.ts): a stamped send after an idle
 * spell is preceded by an empty datagram to our own port on loopback, the
 * transmit stamp is read after it, a send soon after another is not, and
 * the empty datagram never reaches the daemon.
 */
import test from 'ava';
import { loadSocketCalls, parseIpv4, type SocketCalls } from '../lib/net/ffi.js';
import { freeUdpPort, Transport } from '../lib/net/transport.js';
import { SendIdle, WARM_AFTER_NS } from '../lib/net/warm.js';
import { sleep } from './helpers/group.js';

test('SendIdle: the first send and one after more than the idle spell are cold; one soon after another is not', (t) => {
  const idle = new SendIdle(1_000n);
  t.true(idle.cold(10_000n), 'first');
  t.false(idle.cold(10_500n));
  t.false(idle.cold(11_500n), 'exactly the spell after the last send');
  t.true(idle.cold(12_501n));
  t.true(WARM_AFTER_NS > 0n);
});

const calls = loadSocketCalls();
const realTest = calls ? test : test.skip;
const noFfi = calls ? '' : ' (skipped: no koffi/libc here)';

const WHERE = {
  4: { group: '239.255.250.3', interfaceAddress: '127.0.0.1', to: '127.0.0.1' },
  6: { group: 'ff05::b3d1:fa03', interfaceAddress: 'lo', to: '::1' },
} as const;

const warmTest = test.macro(async (t, family: 4 | 6) => {
  const real = calls!;
  const { to, ...where } = WHERE[family];
  // What the sender's calls did, in order: "warm <port>", "send <port>", and "stamp" when the transmit stamp ran.
  const log: string[] = [];
  const spy: SocketCalls = {
    realNs: () => real.realNs(),
    lastRxRealNs: (fd) => real.lastRxRealNs(fd),
    sendTo: (fd, d, ip, p) => (log.push(`${d.length === 0 ? 'warm' : 'send'} ${p}${ip === parseIpv4('127.0.0.1') ? '' : ' elsewhere'}`), real.sendTo(fd, d, ip, p)),
    sendTo6: (fd, d, ip, scope, p) => (log.push(`${d.length === 0 ? 'warm' : 'send'} ${p}${ip[15] === 1 && ip.slice(0, 15).every((b) => b === 0) ? '' : ' elsewhere'}`), real.sendTo6!(fd, d, ip, scope, p)),
  };
  const port = await freeUdpPort();
  const opts = { ...where, port, ttl: 0 };
  const got: number[] = [];
  const ownGot: number[] = [];
  const rx = new Transport({ ...opts, unicastPort: 0 }, (d) => got.push(d.length), (e) => t.fail(e.message), real);
  const tx = new Transport({ ...opts, unicastPort: 0 }, (d) => ownGot.push(d.length), (e) => t.fail(e.message), spy);
  t.teardown(async () => {
    await rx.stop();
    await tx.stop();
  });
  await rx.start();
  await tx.start();
  const stamp = (): void => void log.push('stamp');
  const dest = rx.unicastPort;
  const own = tx.unicastPort;
  tx.sendTo(Buffer.alloc(48), to, dest, stamp);
  tx.sendTo(Buffer.alloc(48), to, dest, stamp);
  await sleep(Number(WARM_AFTER_NS / 1_000_000n) * 5);
  tx.sendTo(Buffer.alloc(48), to, dest); // no stamp: no warming, but it counts as a send
  tx.sendTo(Buffer.alloc(48), to, dest, stamp);
  t.deepEqual(log, [`warm ${own}`, 'stamp', `send ${dest}`, 'stamp', `send ${dest}`, `send ${dest}`, 'stamp', `send ${dest}`]);
  t.is(tx.warmSends, 1);
  for (let i = 0; i < 50 && got.length < 4; i++) await sleep(20);
  await sleep(50);
  t.deepEqual(got, [48, 48, 48, 48], 'the destination got the datagrams, and no empty one');
  t.deepEqual(ownGot, [], 'our own empty datagram never reached the receiver');
});

realTest(`loopback: a stamped send after an idle spell warms the path first, a send right after another does not${noFfi}`, warmTest, 4);
realTest(`loopback, IPv6: the same${noFfi}`, warmTest, 6);
