/**
 * Sample messages of every type for the wire tests, and fixed test keys.
 * The values reach the edges of their fields on purpose (i64 extremes,
 * u32 maxima, multi-byte UTF-8, a 64-byte name).
 */

import { createKeyring, type Keyring } from '../../lib/wire/keys.js';
import { type Header, type Message, MessageType } from '../../lib/wire/messages.js';
import { nodeIdOf } from '../../lib/wire/ids.js';

export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;
export const U64_MAX = (1n << 64n) - 1n;

export const KEY_1 = Buffer.alloc(32, 0x11);
export const KEY_2 = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
/** Key 1 signs; key 2 is accepted too. */
export const KEYRING_1_2: Keyring = createKeyring([[1, KEY_1], [2, KEY_2]]);
/** The same keys after rotation: key 2 signs. */
export const KEYRING_2_1: Keyring = createKeyring([[2, KEY_2], [1, KEY_1]]);
/** Only key 2: datagrams signed with key 1 are 'unknown-key'. */
export const KEYRING_2: Keyring = createKeyring([[2, KEY_2]]);

export const HEADER: Header = { domain: 0x1234, sender: nodeIdOf('alpha'), epoch: 7, round: 4_000_000_000 };

export function samples(): Message[] {
  return [
    {
      ...HEADER, type: MessageType.Sync, masterTimeNs: 1_700_000_000_123_456_789n, priority: 200, pinned: true,
      intervalMs: 2000, collectMs: 1500, unicastAddress: '192.168.1.20', unicastPort: 12345, probes: 12, steps: 0, reference: false, name: 'alpha',
    },
    {
      ...HEADER, type: MessageType.Sync, masterTimeNs: I64_MIN, priority: 0, pinned: false,
      intervalMs: 0xffffffff, collectMs: 1, unicastAddress: '0.0.0.0', unicastPort: 65535, probes: 64, steps: 255, reference: true, name: 'ä'.repeat(32),
    },
    { ...HEADER, type: MessageType.TimeRequest, nonce: U64_MAX, originNs: -1n },
    { ...HEADER, type: MessageType.TimeReply, nonce: 0x0123456789abcdefn, originNs: -1n, receiveNs: I64_MAX, transmitNs: I64_MIN },
    { ...HEADER, type: MessageType.Report, offsetNs: -90n, delayNs: 0n, frequencyPpb: 12_345, name: 'peer-1.example' },
    { ...HEADER, type: MessageType.Report, offsetNs: I64_MAX, delayNs: I64_MAX, frequencyPpb: -0x7fff_ffff, name: 'x'.repeat(64) },
    {
      ...HEADER, type: MessageType.Adjust, part: 0, parts: 1, averageNs: -45n, commonPpb: -1_500, rangeFirst: 0n, rangeLast: U64_MAX, full: false,
      entries: [
        { node: 0n, adjustmentNs: I64_MIN, outlier: true, faulty: true },
        { node: 1n, adjustmentNs: 0n, outlier: false, faulty: true },
        { node: nodeIdOf('peer-1'), adjustmentNs: 45n, outlier: false, faulty: false },
        { node: U64_MAX, adjustmentNs: I64_MAX, outlier: false, faulty: false },
      ],
    },
    { ...HEADER, type: MessageType.Adjust, part: 2, parts: 3, averageNs: 0n, commonPpb: 0x7fff_ffff, rangeFirst: 1000n, rangeLast: 2000n, full: true, entries: [] },
    { ...HEADER, type: MessageType.Claim, priority: 255, name: '時計' },
    { ...HEADER, type: MessageType.Leave, name: 'z' },
    // SYNC from IPv6 masters: link-local (the receiver adds the scope), global, and "::" (the source).
    {
      ...HEADER, type: MessageType.Sync, masterTimeNs: I64_MAX, priority: 1, pinned: true,
      intervalMs: 1000, collectMs: 999, unicastAddress: 'fe80::1', unicastPort: 1, probes: 1, steps: 1, reference: true, name: 'v6',
    },
    {
      ...HEADER, type: MessageType.Sync, masterTimeNs: 0n, priority: 100, pinned: false,
      intervalMs: 1000, collectMs: 500, unicastAddress: '2001:db8:0:1:ffff:ffff:ffff:fffe', unicastPort: 9300, probes: 12, steps: 0, reference: false, name: 'v6-global',
    },
    {
      ...HEADER, type: MessageType.Sync, masterTimeNs: -1n, priority: 100, pinned: false,
      intervalMs: 1000, collectMs: 500, unicastAddress: '::', unicastPort: 9300, probes: 12, steps: 3, reference: false, name: 'v6-source',
    },
  ];
}
