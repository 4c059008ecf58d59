/**
 * The metrics module on its own: the listen address parser, absent values,
 * faulty members, bounded member series, and the exposition checked by
 * promtool where it is installed.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { DEFAULT_METRICS_PORT, MAX_MEMBER_SERIES, Metrics, parseListen } from '../lib/daemon/metrics.js';
import { clockState, type StatusJson } from '../lib/daemon/status.js';
import { findPromtool } from './helpers/promtool.js';

const promtool = findPromtool();

function peerStatus(over: Partial<StatusJson> = {}): StatusJson {
  return {
    schemaVersion: 1, nodeId: 'p', role: 'peer', masterId: null, epoch: 0, round: 0, synced: false,
    groupTimeNs: '1', monotonicNs: '1',
    earliestNs: null, latestNs: null, errorBoundNs: null, boundState: 'none', boundWhy: 'not yet synchronized', boundDriftPpb: 1000,
    lastAdjustmentNs: null, lastOffsetNs: null, lastDelayNs: null, frequencyPpm: 0, lastCorrectionAgeS: null,
    clock: {
      kind: 'virtual', state: 'free-running', pendingNs: '0', appliedNs: '0', steps: 0, foreignSteps: null, maxSlewPpm: 500, stepThresholdNs: '100000', simDriftPpm: null, simOffsetNs: null,
      startFrequencyPpm: null, disciplinedFrequencyPpm: null, synchronized: null,
      kernel: { frequencyPpm: 1.25, freq: 81920, tick: 10000, status: 0x40, statusNames: ['STA_UNSYNC'], state: 'TIME_ERROR', synchronized: false, maxErrorUs: 16000000, estErrorUs: 16000000, offset: 0, tai: 37 },
    },
    members: [], lastRound: null,
    faults: { members: [], named: 0, thisNode: false, cannotFollow: false, ownClock: null },
    membership: { inTable: true, leftOut: null, probes: 12, maxMembers: 16384, refused: 0, full: false },
    counters: { received: 0, sent: 0, sendErrors: 0, rejected: {}, dropped: {}, elections: 0, claims: 0, corrections: 0, reloads: { ok: 0, refused: 0 }, otherParts: 0, net: { rxStamps: { group: { kernel: 10, user: 0, missing: 0, late: 0, old: 0, step: 0 }, unicast: { kernel: 10, user: 0, missing: 0, late: 0, old: 0, step: 0 } }, tx: { direct: 5, node: 0 } } },
    config: { group: '239.255.77.1', port: 7737, interface: '127.0.0.1', unicastPort: 1, domain: 0, intervalMs: 1000, collectTimeoutMs: 500, probes: 12, toleranceNs: '20000000', maxAdjustNs: null, priority: 100, pinnedMaster: false, authenticated: false, keyIds: [], metrics: null },
    uptimeS: 1, pid: 1,
    ...over,
  };
}

test('parseListen: ADDR:PORT, PORT, ADDR, :PORT, [v6]:PORT', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9999'), { host: '127.0.0.1', port: 9999 });
  t.deepEqual(parseListen('7738'), { host: '0.0.0.0', port: 7738 });
  t.deepEqual(parseListen(':7000'), { host: '0.0.0.0', port: 7000 });
  t.deepEqual(parseListen('10.0.0.1'), { host: '10.0.0.1', port: DEFAULT_METRICS_PORT });
  t.deepEqual(parseListen('[::1]:8000'), { host: '::1', port: 8000 });
  t.throws(() => parseListen('1.2.3.4:70000'), { message: /not 0 to 65535/ });
  t.throws(() => parseListen(''));
});

test('clockState: free-running, locked within 3 intervals, then holdover', (t) => {
  t.is(clockState(null, 10n, 1n), 'free-running');
  t.is(clockState(7n, 10n, 1n), 'locked');
  t.is(clockState(6n, 10n, 1n), 'holdover');
});

test('a fresh peer: values it does not have are absent, not 0', async (t) => {
  const m = new Metrics(() => peerStatus());
  t.teardown(() => m.stop());
  const text = await m.text();
  t.true(text.endsWith('\n'));
  t.regex(text, /^berkeleyd_master_known 0$/m);
  t.regex(text, /^berkeleyd_clock_state\{state="free_running"\} 1$/m);
  t.regex(text, /^berkeleyd_error_bound_state\{state="none"\} 1$/m);
  t.regex(text, /^berkeleyd_error_bound_state\{state="synchronized"\} 0$/m);
  for (const absent of ['berkeleyd_error_bound_seconds', 'berkeleyd_offset_seconds', 'berkeleyd_round_trip_seconds', 'berkeleyd_send_key_id', 'berkeleyd_group_spread_seconds', 'berkeleyd_master_info', 'berkeleyd_last_correction_age_seconds']) {
    t.notRegex(text, new RegExp(`^${absent}[ {]`, 'm'), absent);
  }
  if (promtool) t.is(spawnSync(promtool, ['check', 'metrics'], { input: text }).status, 0);
});

test('a system clock stepped by another program: berkeleyd_foreign_steps_total counts it', async (t) => {
  const s = peerStatus();
  s.clock.foreignSteps = 2;
  const m = new Metrics(() => s);
  t.teardown(() => m.stop());
  t.regex(await m.text(), /^berkeleyd_foreign_steps_total 2$/m);
});

test('a master: faulty members, spread, bounded member series, rejected by reason', async (t) => {
  const members = [...Array(MAX_MEMBER_SERIES + 5).keys()].map((i) => ({
    nodeId: `m${String(i).padStart(3, '0')}`, offsetNs: String(i * 1000), delayNs: '50000', lastRound: 9, address: '10.0.0.1',
    frequencyPpm: 1.5, faulty: i === 1 ? 'outlier' : null, faultySinceRound: i === 1 ? 5 : null,
  }));
  const s = peerStatus({
    role: 'master', masterId: 'p', members,
    earliestNs: '-11999', latestNs: '12001', errorBoundNs: '12000', boundState: 'synchronized', boundWhy: null, boundDriftPpb: 3000,
    lastRound: {
      epoch: 1, round: 9, averageNs: '0', quorum: true, commonPpm: 0.5, marginNs: '10000',
      table: [
        { nodeId: 'p', offsetNs: '0', delayNs: '0', adjustmentNs: '0', outlier: false, errorNs: '30000', frequencyPpm: null, faulty: null },
        { nodeId: 'm001', offsetNs: '-2500', delayNs: '1', adjustmentNs: '2500', outlier: true, errorNs: '30000', frequencyPpm: 2, faulty: 'outlier' },
      ],
    },
    faults: { members: [{ nodeId: 'm001', reason: 'outlier', sinceRound: 5 }], named: 1, thisNode: false, cannotFollow: false, ownClock: null },
    counters: { ...peerStatus().counters, rejected: { 'bad-tag': 3 } },
  });
  const m = new Metrics(() => s);
  t.teardown(() => m.stop());
  const text = await m.text();
  t.regex(text, new RegExp(`^berkeleyd_members ${MAX_MEMBER_SERIES + 5}$`, 'm'));
  t.is([...text.matchAll(/^berkeleyd_member_offset_seconds\{/gm)].length, MAX_MEMBER_SERIES);
  t.regex(text, /^berkeleyd_member_faulty\{node="m001",reason="outlier"\} 1$/m);
  t.regex(text, /^berkeleyd_faulty_members 1$/m);
  t.regex(text, /^berkeleyd_faults_named_total 1$/m);
  t.regex(text, /^berkeleyd_group_common_frequency_ratio 5e-7$/m);
  t.regex(text, /^berkeleyd_selection_margin_seconds 0.00001$/m);
  t.regex(text, /^berkeleyd_frequency_limit 0$/m);
  t.regex(text, /^berkeleyd_kernel_synchronized 0$/m);
  t.regex(text, /^berkeleyd_kernel_maxerror_seconds 16$/m);
  t.regex(text, /^berkeleyd_group_spread_seconds 0\.0000025$/m);
  t.regex(text, /^berkeleyd_datagrams_rejected_total\{reason="bad-tag"\} 3$/m);
  t.regex(text, /^berkeleyd_role\{role="master"\} 1$/m);
  t.regex(text, /^berkeleyd_error_bound_seconds 0\.000012$/m);
  t.regex(text, /^berkeleyd_error_bound_state\{state="synchronized"\} 1$/m);
  t.regex(text, /^berkeleyd_error_bound_drift_ratio 0\.000003$/m);
  if (promtool) {
    const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    t.is(r.status, 0, r.stdout + r.stderr);
  }
});

test('counters added to the status later are exported without a change here', async (t) => {
  const s = peerStatus();
  const m = new Metrics(() => s, false);
  t.teardown(() => m.stop());
  t.notRegex(await m.text(), /berkeleyd_faults_total/);
  (s.counters as unknown as Record<string, unknown>).faults = 2;
  (s.counters as unknown as Record<string, unknown>).faultyNamed = { outlier: 1, 'frequency-limit': 3 };
  (s.counters as unknown as Record<string, unknown>).steps = 99; // clashes with berkeleyd_steps_total: ignored
  const text = await m.text();
  t.regex(text, /^berkeleyd_faults_total 2$/m);
  t.regex(text, /^berkeleyd_faulty_named_total\{reason="frequency-limit"\} 3$/m);
  t.regex(text, /^berkeleyd_steps_total 0$/m);
  if (promtool) t.is(spawnSync(promtool, ['check', 'metrics'], { input: text }).status, 0);
});
