/**
 * bench:scale: the generator's schedule and the report's arithmetic (pure),
 * and one small run against a real master, in which every emulated member
 * must get its entry in every steady round.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Schedule } from '../bench/scale-schedule.js';
import { windowOf, type SizeResult, type SyncSample } from '../bench/scale-report.js';
import { newRound } from '../bench/scale-types.js';
import { cleanEnv } from './helpers/group.js';

test('the schedule gives slots in time order and only the deadlines of requests still waiting', (t) => {
  const waiting = new Set<string>();
  const s = new Schedule(3, 10, () => undefined, (i, seq) => waiting.has(`${i}:${seq}`));
  s.plan((i) => [30, 10, 20][i]!);
  t.is(s.slotDue(5), -1);
  t.deepEqual([s.slotDue(25), s.slotDue(25), s.slotDue(25)], [1, 2, -1]);
  t.is(s.notStarted, 1);
  waiting.add('1:1').add('2:1');
  s.deadline(1, 1, 40);
  s.deadline(2, 1, 45);
  waiting.delete('1:1'); // answered
  t.is(s.timeoutDue(50), 2, 'the answered request is skipped');
  t.is(s.timeoutDue(50), -1);
  s.cancel();
});

test('a window divides the master CPU between its SYNCs by members x rounds, and counts late replies once', (t) => {
  const rec = (round: number) => ({ ...newRound(1, round, 500, 10), onTime: 100, late: 2, lateEarlier: 1, timeouts: 5, lost: 3, tableRows: 11, gotEntry: 10, adjustParts: 1, adjustPartsAnnounced: 1, genCpuUs: 5000, genSysUs: 1000, genWaitUs: 0 });
  const sample = (round: number, cpuS: number): SyncSample => ({ round, atMs: round * 1000, masterCpuS: cpuS, masterSysS: cpuS / 2, masterWaitS: 0, machine: null, masterDrops: 0 });
  const samples = new Map([sample(13, 1), sample(14, 1.01), sample(15, 1.03)].map((x) => [x.round, x]));
  const w = windowOf([rec(13), rec(14)], samples, 13, 2, 10, 2)!;
  t.is(w.rounds, 2);
  t.is(Math.round(w.masterCpuUsPerMemberRound!), 1500); // 30 ms / (10 members x 2 rounds)
  t.is(w.masterCpuPercent!.toFixed(1), '1.5'); // 30 ms over 2 s
  t.is(Math.round(w.masterCpuUsPerReply! * 10), Math.round((30_000 / 206) * 10));
  t.is(w.late, 6);
  t.is(w.lost, 4);
  t.deepEqual(w.gotEntry, { min: 10, median: 10 });
  t.is(windowOf([rec(13)], samples, 20, 2, 10, 2), null, 'no record, no window');
});

test('20 emulated members against a real master: every one gets its entry in every steady round', async (t) => {
  const script = fileURLToPath(new URL('../bench/scale.js', import.meta.url));
  const child = spawn(process.execPath, [script, '--members', '20', '--rounds', '3', '--pause', '0s', '--json'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGINT'), 60_000);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  t.is(code, 0, err);
  const r = (JSON.parse(out.trim().split('\n').pop()!) as { results: SizeResult[] }).results[0]!;
  t.is(r.steady?.rounds, 3, err);
  t.deepEqual(r.steady?.gotEntry, { min: 20, median: 20 }, err);
  t.is(r.steady?.rows.min, 21, 'the members and the master');
  t.is(r.steady?.strayEntries, 0, 'every entry answers its member\'s report');
  t.is(r.generator.kernelDrops, 0);
  t.true(r.steady!.masterCpuPercent! > 0);
});
