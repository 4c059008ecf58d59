/**
 * The chrony anchor's log parsing (bench/chrony.ts): chrony's own
 * measurements.log lines, as chronyd 4.3 writes them.
 */
import test from 'ava';
import { parseMeasurement, parseTracking } from '../bench/chrony.js';

test('a measurements.log line gives its time, offset and round trip; headers give nothing', (t) => {
  const line = '2026-12-02 03:08:07 127.0.0.1       N  1 111 111 1111   0  0 1.00  3.490e-07  3.286e-06  3.491e-08  0.000e+00  0.000e+00 7F7F0101 4B K K';
  const m = parseMeasurement(line);
  t.truthy(m);
  t.is(m!.atS, Date.parse('2026-12-02T03:08:07Z') / 1000);
  t.is(Math.round(m!.offsetNs), 349);
  t.is(Math.round(m!.delayNs), 3286);
  t.is(parseMeasurement('-1.117e-05 negative offsets too'.replace(/.*/, '2026-12-02 03:07:45 127.0.0.1 N 1 111 111 1111 0 0 0.00 -1.117e-05 2.756e-05 3.979e-07'))!.offsetNs < 0, true);
  for (const head of [
    '========================================================================================================================================',
    '   Date (UTC) Time     IP Address   L St 123 567 ABCD  LP RP Score    Offset  Peer del. Peer disp.  Root del. Root disp. Refid     MTxRx',
    '',
  ]) t.is(parseMeasurement(head), null, head);
});

test('a tracking.log line gives its time and offset', (t) => {
  const m = parseTracking('2026-12-02 03:08:07 127.0.0.1        2     -0.039      0.094 -1.462e-07 N  1  2.863e-07 -1.311e-06  3.286e-06  6.368e-07  6.447e-06');
  t.truthy(m);
  t.is(Math.round(m!.offsetNs), -146);
  t.is(parseTracking('   Date (UTC) Time     IP Address   St   Freq ppm   Skew ppm     Offset L Co  Offset sd Rem. corr.'), null);
});
