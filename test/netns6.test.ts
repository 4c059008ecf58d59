/**
 * IPv6 groups on real hosts (issue 18): network namespaces on one bridge
 * with IPv6 addresses only (fe80::<i>, and a unique local address), a
 * link-local group ff02::b3d1:xxxx joined on eth0. The checks of the IPv4
 * tests in one run: five daemons without --master elect one master and
 * converge within 1 ms, exchanging over link-local unicast (the master
 * advertises "::", the peers reach the SYNC's source through the interface
 * it came in on) with kernel receive stamps and direct sends; a flood of
 * malformed datagrams to the group and to the master's unicast port
 * crashes nothing and the group holds; the master is killed and a new one
 * takes over within 3 intervals without a clock jump. Then a site-scope
 * group (ff05::) without --interface follows the routes.
 *
 * Serial: the bounds are real time on a 2-core machine.
 */
import test from 'ava';
import { randomInt } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { parseGroup, resolveInterfaceOf, Scopes } from '../lib/net/groups.js';
import { parseIPv6 } from '../lib/wire/address.js';
import { flood } from './helpers/attacker.js';
import {
  clockJumps, delta, formatNs, liveIn, mastersIn, MS, settledMaster, spreadIn, total, withLanGroup, type LanGroup, type Sample,
} from './helpers/lan-group.js';
import { netnsAvailable } from './helpers/netns.js';
import { testSeed } from './helpers/prng.js';
import { cli, sleep } from './helpers/group.js';

const avail = netnsAvailable();
const nstest = avail.ok ? test.serial : test.serial.skip;
const skipped = avail.ok ? '' : ` (skipped: ${avail.why})`;

const INTERVAL_MS = 500;
const INTERVAL_NS = BigInt(INTERVAL_MS) * MS;
const DRIFT_PPM = [20, 10, -10, -20, 5];
const FLOOD_TOTAL = 40_000;
const ms = (ns: bigint): string => (Number(ns) / 1e6).toFixed(0);

/** Waits until `names` follow one master, every one synced, within 1 ms of each other. */
async function converged(g: LanGroup, names: string[], sinceNs: bigint): Promise<{ sample: Sample; master: string }> {
  const r = await g.timeline.waitFor(
    `${names.join('+')} following one master, synced, within 1 ms`,
    (s) => {
      const m = settledMaster(s, names);
      return m && liveIn(s, names).every((x) => x.synced) && (spreadIn(s, names) ?? MS) < MS ? m : undefined;
    },
    40 * INTERVAL_MS,
    sinceNs,
  );
  return { sample: r.sample, master: r.value };
}

nstest(`IPv6 only, link-local group: 5 hosts converge within 1 ms, survive a flood, and fail over within 3 intervals without a jump${skipped}`, async (t) => {
  t.timeout(90_000);
  const seed = testSeed();
  await withLanGroup(t, { hosts: 6, intervalMs: INTERVAL_MS, family: 6, env: { DEBUG: 'berkeleyd:election' } }, async (g, lan) => {
    const hosts = lan.hosts.slice(0, 5);
    const names = hosts.map((h) => h.name);
    t.regex(g.group, /^ff02::/);
    const t0 = process.hrtime.bigint();
    await g.start(hosts.map((h, i) => ({ name: h.name, host: h, args: ['--sim-drift', String(DRIFT_PPM[i]!)] })));
    const c = await converged(g, names, t0);
    t.log(`group ${g.group} on eth0: ${c.master} leads; all five within 1 ms after ${ms(c.sample.atNs - t0)} ms`);

    // What the exchanges ran over: link-local unicast, kernel stamps, direct sends.
    await sleep(2 * INTERVAL_MS);
    const before = await g.statuses();
    const masterHost = hosts[names.indexOf(c.master)]!;
    const m0 = before.get(c.master)!;
    t.is(m0.config.group, g.group);
    t.is(m0.config.interface, 'eth0');
    for (const n of names) {
      const s = before.get(n)!;
      const rx = s.counters.net.rxStamps;
      t.true(rx.unicast.kernel > 0 && rx.group.kernel > 0, `${n}: kernel receive stamps on both IPv6 sockets (${JSON.stringify(rx)})`);
      t.true(s.counters.net.tx.direct > 0 && s.counters.net.tx.node === 0, `${n}: every datagram sent by sendto(2) to a sockaddr_in6, with its scope (${JSON.stringify(s.counters.net.tx)})`);
      t.is(total(s.counters.rejected), 0, `${n}: nothing rejected before the flood (${JSON.stringify(s.counters.rejected)})`);
    }
    const peer = before.get(names.find((n) => n !== c.master)!)!;
    t.truthy(peer.lastDelayNs, 'a peer measured a round trip');

    // A flood from a sixth host: to the group, and to the master's unicast port at its link-local address.
    const startNs = process.hrtime.bigint();
    const result = await flood(lan.hosts[5]!, {
      targets: [
        { address: `${g.group}`, port: g.port, count: FLOOD_TOTAL / 2 },
        { address: `${masterHost.linkLocal}%eth0`, port: m0.config.unicastPort, count: FLOOD_TOTAL / 2 },
      ],
      seed,
      domain: 0,
      keyIds: [],
      ratePerSecond: 25_000,
    });
    await sleep(2 * INTERVAL_MS);
    const after = await g.statuses();
    t.log(`flood: ${result.sent} sent (${result.errors} errors) in ${result.durationMs.toFixed(0)} ms (seed ${seed})`);
    t.is(result.sent, FLOOD_TOTAL, 'the flooder sent everything');
    let rejected = 0;
    for (const n of names) {
      t.is(g.cluster.member(n).exitCode, null, `${n} is still running`);
      rejected += total(delta(after.get(n)!.counters.rejected, before.get(n)!.counters.rejected));
    }
    const toMaster = total(delta(after.get(c.master)!.counters.rejected, m0.counters.rejected));
    t.log(`rejected by the five: ${rejected} (the master: ${toMaster}) of ${FLOOD_TOTAL / 2} to the group (each daemon gets it) and ${FLOOD_TOTAL / 2} to the master`);
    // As the IPv4 flood test: most of it reached the daemons (each gets the group's share, the master its own too).
    const addressed = names.length * (FLOOD_TOTAL / 2) + FLOOD_TOTAL / 2;
    t.true(rejected >= addressed / 2, `the daemons counted at least half of the flood addressed to them: ${rejected} of ${addressed}`);
    const flooded = clockJumps(g.timeline.between(startNs), names);
    t.true(flooded.maxSpreadNs < MS, `the group stays within 1 ms through the flood: ${formatNs(flooded.maxSpreadNs)}`);
    t.true(g.timeline.between(startNs).every((s) => settledMaster(s, names) === c.master), 'the master keeps its group through the flood');

    // Failover: kill the master.
    const survivors = names.filter((n) => n !== c.master);
    const killNs = process.hrtime.bigint();
    await g.kill(c.master, 'SIGKILL');
    const elected = await g.timeline.waitFor('a new master', (s) => (mastersIn(s, survivors).length === 1 ? mastersIn(s, survivors)[0] : undefined), 10 * INTERVAL_MS, killNs);
    const failoverNs = elected.sample.atNs - killNs;
    await g.timeline.waitFor('every survivor following it', (s) => settledMaster(s, survivors), 10 * INTERVAL_MS, killNs);
    t.log(`killed ${c.master}; ${elected.value} master after ${ms(failoverNs)} ms (${(Number(failoverNs) / Number(INTERVAL_NS)).toFixed(2)} intervals)`);
    t.true(failoverNs <= 3n * INTERVAL_NS, `new master ${ms(failoverNs)} ms after the kill (bound: 3 intervals)`);
    await sleep(4 * INTERVAL_MS);
    const j = clockJumps(g.timeline.between(killNs - INTERVAL_NS), survivors);
    t.log(`failover window (${j.samples} samples): max jump ${formatNs(j.maxRelativeNs)}, max spread ${formatNs(j.maxSpreadNs)}`);
    t.true(j.maxRelativeNs < MS, `no survivor's clock jumps by 1 ms or more: ${formatNs(j.maxRelativeNs)}`);
    t.true(j.maxSpreadNs < MS, `the survivors stay within 1 ms: ${formatNs(j.maxSpreadNs)}`);
  });
});

nstest(`IPv6 only, site-scope group (ff05::) without --interface: 3 hosts converge over their unique local addresses${skipped}`, async (t) => {
  t.timeout(60_000);
  const group = `ff05::b3d1:${randomInt(1, 0xffff).toString(16)}`;
  await withLanGroup(t, { hosts: 3, intervalMs: INTERVAL_MS, family: 6, group }, async (g, lan) => {
    const names = lan.hosts.map((h) => h.name);
    const t0 = process.hrtime.bigint();
    // Without --interface: the kernel's route ff00::/8 dev eth0 carries the group.
    await g.cluster.add({ name: names[0]!, args: ['--group', group, '--port', String(g.port), '--interval', `${INTERVAL_MS}ms`, '--master'], wrap: (cmd, args) => ['ip', ['netns', 'exec', lan.hosts[0]!.netns, cmd, ...args]] });
    await g.start(lan.hosts.slice(1).map((h) => ({ name: h.name, host: h })));
    const c = await converged(g, names, t0);
    const s = await g.status(names[1]!);
    t.is(c.master, names[0]);
    t.is(s.config.group, group);
    t.true(s.counters.net.rxStamps.unicast.kernel > 0, 'kernel stamps on the unicast socket');
    t.log(`${group}: converged after ${ms(c.sample.atNs - t0)} ms`);
  });
});

test('IPv6 groups on the command line: a link-local group without --interface, and addresses that are no group, are usage errors that say why', async (t) => {
  const r = await cli(['run', '--group', 'ff02::b3d1']);
  t.is(r.code, 2, r.text);
  t.regex(r.stderr, /ff02::b3d1 is link-local \(ff02::\/16\): name the link with --interface/);
  const bad: Array<[string, RegExp]> = [
    ['ff01::1', /scope 1: use link \(ff02::\) or a wider scope/],
    ['fe80::1', /not a multicast address/],
    ['ff02::1%eth0', /a scope such as %eth0 goes in --interface/],
    ['239.255.0.0.1', /not an IPv4 or IPv6 address/],
    ['10.0.0.1', /not a multicast address/],
  ];
  for (const [group, why] of bad) {
    const e = await cli(['run', '--group', group]);
    t.is(e.code, 2, `${group}: ${e.text}`);
    t.regex(e.stderr, why, group);
  }
  const noIf = await cli(['run', '--group', 'ff05::b3d1', '--interface', 'no-such-if0']);
  t.regex(noIf.stderr, /--interface: no interface "no-such-if0" on this host/);
});

test('IPv6 destinations for sendto(2): the scope of "%ifname" or "%index", a link-local group scoped by the joined interface, a global address unscoped', (t) => {
  const looked: string[] = [];
  const scopes = new Scopes('eth0', (name) => (looked.push(name), name === 'eth0' ? 7 : 0));
  t.deepEqual(scopes.destination('fe80::1%eth0'), { bytes: parseIPv6('fe80::1')!, scopeId: 7 });
  t.deepEqual(scopes.destination('fe80::1%3'), { bytes: parseIPv6('fe80::1')!, scopeId: 3 });
  t.deepEqual(scopes.destination('ff02::b3d1'), { bytes: parseIPv6('ff02::b3d1')!, scopeId: 7 }, 'a link-local group: the interface it was joined on');
  t.deepEqual(scopes.destination('ff05::b3d1'), { bytes: parseIPv6('ff05::b3d1')!, scopeId: 0 });
  t.deepEqual(scopes.destination('2001:db8::1'), { bytes: parseIPv6('2001:db8::1')!, scopeId: 0 });
  t.is(scopes.destination('fe80::1%nosuch'), null, 'an unknown interface: left to Node, which reports the error');
  t.is(scopes.destination('10.0.0.1'), null);
  t.deepEqual(looked, ['eth0', 'nosuch'], 'each interface looked up once');
  t.deepEqual(parseGroup('ff02::b3d1'), { family: 6, scope: 2 });
  t.deepEqual(parseGroup('FF0E::101'), { family: 6, scope: 14 });
  t.deepEqual(parseGroup('239.255.77.1'), { family: 4, scope: null });
  t.throws(() => parseGroup('ff0f::1'), { message: /scope 15/ });
});

test('--interface by name or by an address of either family: the IPv4 address for an IPv4 group, the name for an IPv6 one', (t) => {
  const lo = networkInterfaces().lo ?? [];
  if (!lo.some((a) => a.address === '::1') || !lo.some((a) => a.address === '127.0.0.1')) return t.pass('loopback lacks ::1 or 127.0.0.1 here: nothing to resolve');
  t.is(resolveInterfaceOf('lo', 4), '127.0.0.1');
  t.is(resolveInterfaceOf('::1', 4), '127.0.0.1', 'an IPv6 address names its interface');
  t.is(resolveInterfaceOf('0:0::1', 4), '127.0.0.1', 'in any spelling');
  t.is(resolveInterfaceOf('127.0.0.1', 6), 'lo', 'an IPv4 address names its interface');
  t.is(resolveInterfaceOf('lo', 6), 'lo');
  t.is(resolveInterfaceOf(undefined, 6), '', 'IPv6 without --interface: the route decides');
  t.throws(() => resolveInterfaceOf('192.0.2.77', 4), { message: /no interface "192.0.2.77" on this host \(have: .*lo \(127\.0\.0\.1\)/ });
});
