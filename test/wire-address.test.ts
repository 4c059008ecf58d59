/**
 * Protocol 4's SYNC fields: addresses of both families (parsing, the
 * canonical text of RFC 5952, where a peer sends for "::" and for a
 * link-local address), and the steps and reference a master advertises,
 * as the engine sends and sees them.
 */
import test from 'ava';
import { MessageType, type SyncMessage, type TimeRequestMessage } from '../lib/wire/messages.js';
import { formatIPv6, isLinkLocalIPv6, parseIPv4, parseIPv6, resolveAdvertised } from '../lib/wire/address.js';
import { FakeTime, MASTER_ADDR, armed, fakeMaster, makeNode, only, sends, syncFrom } from './helpers/core-harness.js';

test('IPv6 text parses to 16 bytes and prints in the canonical form of RFC 5952', (t) => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['FE80:0:0:0:0:0:0:1', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'], // the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['ff02::b3d1', 'ff02::b3d1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'], // a dotted tail parses; the text is hex
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [text, canonical] of cases) {
    const bytes = parseIPv6(text);
    if (!bytes) return t.fail(`${text} did not parse`);
    t.is(bytes.length, 16);
    t.is(formatIPv6(bytes), canonical, text);
    t.deepEqual(parseIPv6(canonical), bytes, canonical);
  }
  for (const bad of ['', ':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', 'fe80::1%eth0', '::1.2.3', '1.2.3.4::', '::1.2.3.4:5', ' ::1', '1:2:3:4:5:6:7:8::']) {
    t.is(parseIPv6(bad), null, JSON.stringify(bad));
  }
  t.deepEqual(parseIPv4('192.168.1.20'), Buffer.from([192, 168, 1, 20]));
  for (const bad of ['256.1.1.1', '01.1.1.1', '1.2.3', '::1', '1.2.3.4 ']) t.is(parseIPv4(bad), null, bad);
});

test('link-local IPv6 (fe80::/10) is recognised with or without its scope', (t) => {
  t.true(isLinkLocalIPv6('fe80::1'));
  t.true(isLinkLocalIPv6('fe80::1%eth0'));
  t.true(isLinkLocalIPv6('febf::1'));
  t.false(isLinkLocalIPv6('fec0::1'));
  t.false(isLinkLocalIPv6('2001:db8::1'));
  t.false(isLinkLocalIPv6('169.254.0.1'));
});

test('where a peer sends: the SYNC source for "::" and "0.0.0.0", the source scope for a link-local address', (t) => {
  t.is(resolveAdvertised('0.0.0.0', '10.0.0.1'), '10.0.0.1');
  t.is(resolveAdvertised('::', 'fe80::2%br0'), 'fe80::2%br0');
  t.is(resolveAdvertised('::', '2001:db8::2'), '2001:db8::2');
  t.is(resolveAdvertised('fe80::1', 'fe80::2%veth3'), 'fe80::1%veth3', 'the interface the SYNC came in on');
  t.is(resolveAdvertised('fe80::1', 'fe80::2'), 'fe80::1', 'no scope to take: left as it is');
  t.is(resolveAdvertised('2001:db8::1', 'fe80::2%br0'), '2001:db8::1', 'a global address needs no scope');
  t.is(resolveAdvertised('10.9.8.7', '10.0.0.1'), '10.9.8.7');
});

test('a master advertises its steps and reference flag (0 and false unless told); a peer sees its master\'s', (t) => {
  const time = new FakeTime();
  const plain = makeNode(time, 'alpha', { pinnedMaster: true });
  const sync = only(sends(plain.handle({ type: 'start', monoNs: time.ns }), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(sync.steps, 0);
  t.false(sync.reference);
  t.is(plain.node.status().masterSteps, 0);
  t.false(plain.node.status().masterReference);

  const boundary = makeNode(time, 'beta', { pinnedMaster: true, steps: 2, reference: true });
  const sync2 = only(sends(boundary.handle({ type: 'start', monoNs: time.ns }), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(sync2.steps, 2);
  t.true(sync2.reference);

  const p = makeNode(time, 'p1');
  p.handle({ type: 'start', monoNs: time.ns });
  t.is(p.node.status().masterSteps, null, 'no master followed yet');
  p.receive(syncFrom(fakeMaster(time), 1, 1, { steps: 3, reference: true }), MASTER_ADDR);
  t.is(p.node.status().masterSteps, 3);
  t.true(p.node.status().masterReference);
  t.throws(() => makeNode(time, 'gamma', { steps: 256 }), { instanceOf: RangeError, message: /steps/ });
});

test('a peer sends its requests to a link-local master through the interface the SYNC came in on', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  p.handle({ type: 'start', monoNs: time.ns });
  const from = { address: 'fe80::9%br-b', port: 9123 };
  const onSync = p.receive(syncFrom(fakeMaster(time), 1, 1, { unicastAddress: 'fe80::1', unicastPort: 4444 }), from);
  time.advance(armed(onSync, 'slot')[0]!);
  const req = only(sends(p.fire('slot'), MessageType.TimeRequest), 'TIME_REQUEST');
  t.deepEqual(req.to, { address: 'fe80::1%br-b', port: 4444 });
  t.is((req.msg as TimeRequestMessage).round, 1);
});
