/**
 * ClockBound's segment (protocol v2): the layout byte for byte, the bound
 * as published from a fake bound source, the writer read back by a C
 * reader written from aws/clock-bound's PROTOCOL.md (helpers/clockbound-
 * reader.c), the seqlock's retry on a write caught half done and under a
 * writer that never stops, who owns the default path (auto), the refusal
 * without --clock system, and the Node client's now().
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CLOCKBOUND_SEGMENT_SIZE,
  ClockStatus,
  boundAt,
  decodeSegment,
  encodeSegment,
  nextEvenGeneration,
  oddGeneration,
  statusAt,
  type ClockErrorBoundRecord,
} from '../lib/clock/clockbound-layout.js';
import { ClockBoundWriter, coarseMonotonicNs, decideAuto } from '../lib/clock/clockbound.js';
import { ClockBoundReader } from '../lib/clock/clockbound-reader.js';
import type { ErrorBound } from '../lib/core/types.js';
import { BoundPublisher, VALIDITY_NS, publishedAt, recordFor } from '../lib/daemon/publish.js';
import { cleanEnv, cli, Proc, testGroup, waitFor, BERKELEYD_JS } from './helpers/group.js';
import { buildC } from './helpers/uml-probe.js';

const S = 1_000_000_000n;
const reader = buildC('clockbound-reader', false);
const withReader = reader.ok ? test : test.skip;
const noReader = reader.ok ? '' : ` (skipped: ${reader.why})`;

/** A directory in tmpfs (/dev/shm, as the segment lives in), removed when the test ends. */
function shmDir(t: ExecutionContext): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'berkeleyd-cb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const rec = (o: Partial<ClockErrorBoundRecord> = {}): ClockErrorBoundRecord => ({
  asOfNs: 1234n * S + 5678n,
  voidAfterNs: 1239n * S + 5678n,
  boundNs: 42_000n,
  disruptionMarker: 0n,
  maxDriftPpb: 15_000,
  status: ClockStatus.Synchronized,
  disruptionSupport: false,
  ...o,
});

/** The C reader's "name value" lines. */
function readC(path: string): { code: number | null; fields: Record<string, string>; text: string } {
  const r = spawnSync((reader as { path: string }).path, [path], { encoding: 'utf8', timeout: 10_000 });
  const fields = Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
  return { code: r.status, fields, text: r.stdout + r.stderr };
}

// ---------------------------------------------------------------- layout

test('layout: 80 bytes, the magic as the clients compare it, version 2, every field at its offset, native (little-endian) order', (t) => {
  const b = encodeSegment(rec({ disruptionMarker: 7n, disruptionSupport: true, status: ClockStatus.FreeRunning }), 6);
  t.is(b.length, CLOCKBOUND_SEGMENT_SIZE);
  // Two native u32s 0x414D5A4E, 0x43420200: on a little-endian CPU these bytes.
  t.deepEqual([...b.subarray(0, 8)], [0x4e, 0x5a, 0x4d, 0x41, 0x00, 0x02, 0x42, 0x43]);
  t.is(b.readUInt32LE(8), 80);
  t.is(b.readUInt16LE(12), 2);
  t.is(b.readUInt16LE(14), 6);
  t.deepEqual([b.readBigInt64LE(16), b.readBigInt64LE(24)], [1234n, 5678n]);
  t.deepEqual([b.readBigInt64LE(32), b.readBigInt64LE(40)], [1239n, 5678n]);
  t.is(b.readBigInt64LE(48), 42_000n);
  t.is(b.readBigUInt64LE(56), 7n);
  t.is(b.readUInt32LE(64), 15_000);
  t.is(b.readInt32LE(68), 2);
  t.is(b.readUInt8(72), 1);
  t.deepEqual([...b.subarray(73)], [0, 0, 0, 0, 0, 0, 0]);
  const d = decodeSegment(b);
  t.true(d.ok);
  if (d.ok) t.deepEqual(d.record, rec({ disruptionMarker: 7n, disruptionSupport: true, status: ClockStatus.FreeRunning }));
  t.throws(() => encodeSegment(rec({ maxDriftPpb: 1e9 }), 2), { message: /max drift/ });
});

test('layout: what the clients refuse is refused, each with its reason', (t) => {
  const good = encodeSegment(rec(), 2);
  const bad = (edit: (b: Buffer) => void): string => {
    const b = Buffer.from(good);
    edit(b);
    const d = decodeSegment(b);
    return d.ok ? 'ok' : d.reason;
  };
  t.is(bad(() => {}), 'ok');
  t.is(bad((b) => b.writeUInt32BE(0x414d5a4e, 0)), 'magic', 'the magic in the document\'s byte order is not what the clients compare on x86');
  t.is(bad((b) => b.writeUInt16LE(1, 12)), 'version');
  t.is(bad((b) => b.writeUInt16LE(0, 14)), 'not-written');
  t.is(bad((b) => b.writeUInt16LE(9, 14)), 'writing');
  t.is(bad((b) => b.writeUInt32LE(16, 8)), 'size');
  t.is(decodeSegment(good.subarray(0, 10)).ok, false);
});

test('generation: odd while writing, even after, and 0 skipped on wrap', (t) => {
  t.is(oddGeneration(2), 3);
  t.is(oddGeneration(3), 3, 'a write left half done by a killed writer is continued, not counted twice');
  t.is(nextEvenGeneration(3), 4);
  t.is(nextEvenGeneration(65533), 65534);
  t.is(oddGeneration(65534), 65535);
  t.is(nextEvenGeneration(65535), 2, 'never 0: readers take 0 as never written');
});

test('the bound grows as the clients grow it, and their statuses: as written for 5 s, then free running, then unknown at void-after', (t) => {
  const r = rec({ asOfNs: 100n * S, voidAfterNs: 110n * S, boundNs: 1000n, maxDriftPpb: 50_000 });
  t.is(boundAt(r, 100n * S), 1000n);
  t.is(boundAt(r, 102n * S), 1000n + 100_000n, '50 ppm over 2 s: 100 µs');
  t.is(boundAt(r, 100n * S - 500n), 1000n, 'within the clients\' 1 µs of causality blur');
  t.is(boundAt(r, 100n * S - 2000n), null);
  t.is(statusAt(r, 104n * S), ClockStatus.Synchronized);
  t.is(statusAt(r, 106n * S), ClockStatus.FreeRunning);
  t.is(statusAt(r, 110n * S), ClockStatus.Unknown);
  t.is(statusAt(rec({ status: ClockStatus.Unknown }), 0n), ClockStatus.Unknown);
});

// ------------------------------------------------- from a bound to a record

const bound = (o: Partial<ErrorBound>): ErrorBound => ({ state: 'synchronized', boundNs: 20_000n, asOfMonoNs: 10n * S, driftPpb: 2000.2, why: null, ...o });

test('recordFor: the node\'s states map to ClockBound\'s: synchronized 1, free-running 2, none 0 with no bound', (t) => {
  const res = 4_000_000n;
  const s = recordFor(bound({}), 12n * S, 12n * S - 3_000_000n, res);
  t.is(s.status, ClockStatus.Synchronized);
  t.is(s.maxDriftPpb, 2001, 'drift rounded up');
  // 20 µs at 10 s, grown 2 s at 2001 ppb (4002 ns), plus one coarse tick at 2001 ppb (8.004 → 9 ns), plus 1 ns.
  t.is(s.boundNs, 20_000n + 4002n + 9n + 1n);
  t.is(s.asOfNs, 12n * S - 3_000_000n, 'as-of is the coarse reading');
  t.is(s.voidAfterNs - s.asOfNs, VALIDITY_NS);
  t.false(s.disruptionSupport);
  t.is(s.disruptionMarker, 0n);
  t.is(recordFor(bound({ state: 'free-running' }), 12n * S, 12n * S, res).status, ClockStatus.FreeRunning);
  const none = recordFor(bound({ state: 'none', boundNs: null, why: 'not yet synchronized' }), 12n * S, 12n * S, res);
  t.like(none, { status: ClockStatus.Unknown, boundNs: 0n, maxDriftPpb: 0 });
});

test('recordFor: what a client computes from the record covers the bound at every later instant, whatever the coarse clock\'s lag', (t) => {
  const res = 4_000_000n;
  const b = bound({ driftPpb: 50_000 });
  for (const lag of [0n, 1n, 2_000_000n, 4_000_000n]) {
    const mono = 13n * S;
    const r = recordFor(b, mono, mono - lag, res);
    for (const later of [0n, 1_000n, 3_999_999n, 4_000_000n, 999_000_000n]) {
      const t0 = mono + later;
      const truth = b.boundNs! + ((t0 - b.asOfMonoNs) * 50_000n + S - 1n) / S;
      // The client's coarse clock is at least t0 − one tick.
      const coarse = t0 - res > r.asOfNs ? t0 - res : r.asOfNs;
      t.true(boundAt(r, coarse)! >= truth, `lag ${lag}, ${later} ns later: ${boundAt(r, coarse)} < ${truth}`);
    }
  }
});

// -------------------------------------------------- writer and C reader

withReader(`the writer's segment read by the C reader from PROTOCOL.md: every field, mode 0644 whatever the umask, the parent directory made${noReader}`, (t) => {
  const path = join(shmDir(t), 'clockbound', 'shm0');
  // Created under the unit's umask, 0077, in a process of its own (a worker cannot set the umask).
  const lib = join(BERKELEYD_JS, '..', '..', 'lib', 'clock', 'clockbound.js');
  const first = `{ asOfNs: 1234000005678n, voidAfterNs: 1239000005678n, boundNs: 31000n, disruptionMarker: 0n, maxDriftPpb: 15000, status: 1, disruptionSupport: false }`;
  const made = spawnSync('sh', ['-c', `umask 077 && exec "$0" --input-type=module -e "$1"`, process.execPath, `import { ClockBoundWriter } from '${lib}'; ClockBoundWriter.open(${JSON.stringify(path)}, ${first}).close();`], { encoding: 'utf8' });
  t.is(made.status, 0, made.stderr);
  t.is(statSync(path).mode & 0o777, 0o644);
  const w = ClockBoundWriter.open(path, rec({ boundNs: 31_000n }));
  t.teardown(() => w.close());
  let c = readC(path);
  t.is(c.code, 0, c.text);
  t.like(c.fields, { magic: '414d5a4e 43420200', segment_size: '80', version: '2', generation: '4', as_of: '1234.000005678', void_after: '1239.000005678' });
  t.like(c.fields, { bound_ns: '31000', disruption_marker: '0', max_drift_ppb: '15000', clock_status: '1 synchronized', disruption_support: '0', retries: '0' });
  t.is(w.write(rec({ boundNs: 5n, status: ClockStatus.FreeRunning })), 6);
  c = readC(path);
  t.like(c.fields, { generation: '6', bound_ns: '5', clock_status: '2 free-running' });
  w.close(rec({ status: ClockStatus.Unknown, boundNs: 0n }));
  c = readC(path);
  t.like(c.fields, { generation: '8', clock_status: '0 unknown' });
  t.deepEqual(readdirSync(join(path, '..')), ['shm0'], 'no temporary file left');
});

withReader(`a restart writes the earlier run's segment in place (readers keep their mapping), anything else is replaced whole${noReader}`, (t) => {
  const path = join(shmDir(t), 'shm0');
  const a = ClockBoundWriter.open(path, rec());
  a.write(rec());
  a.close(rec({ status: ClockStatus.Unknown }));
  const ino = statSync(path).ino;
  const b = ClockBoundWriter.open(path, rec({ boundNs: 77n }));
  t.teardown(() => b.close());
  t.is(b.opened, 'reused');
  t.is(statSync(path).ino, ino);
  t.like(readC(path).fields, { generation: '8', bound_ns: '77' });
  b.close();
  writeFileSync(path, 'not a segment');
  const c = ClockBoundWriter.open(path, rec({ boundNs: 78n }));
  t.teardown(() => c.close());
  t.is(c.opened, 'created');
  t.like(readC(path).fields, { generation: '2', bound_ns: '78' });
});

withReader(`seqlock: the C reader that finds a write half done (generation odd) waits and reads the finished write, never the half${noReader}`, async (t) => {
  const path = join(shmDir(t), 'shm0');
  const w = ClockBoundWriter.open(path, rec({ boundNs: 1n }));
  t.teardown(() => w.close());
  // A writer caught between its first and last pwrite: generation odd, half the new body in.
  const fd = openSync(path, 'r+');
  t.teardown(() => closeSync(fd));
  const next = encodeSegment(rec({ boundNs: 999n, status: ClockStatus.FreeRunning }), 4);
  writeSync(fd, Buffer.from([3, 0]), 0, 2, 14);
  writeSync(fd, next, 48, 8, 48);
  const child = spawn((reader as { path: string }).path, [path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  // 'close', not 'exit': the output is all in by then.
  const exited = new Promise<number | null>((r) => child.on('close', r));
  await new Promise((r) => setTimeout(r, 150));
  t.is(child.exitCode, null, 'still waiting while the generation is odd');
  writeSync(fd, next, 16, 64, 16);
  writeSync(fd, Buffer.from([4, 0]), 0, 2, 14);
  t.is(await exited, 0, out);
  t.regex(out, /^generation 4$/m);
  t.regex(out, /^bound_ns 999$/m);
  t.regex(out, /^clock_status 2 free-running$/m);
  t.regex(out, /^retries [1-9]\d*$/m, 'it retried');
});

withReader(`seqlock under load: 20,000 C snapshots while another process rewrites the segment nonstop are all whole writes${noReader}`, async (t) => {
  const path = join(shmDir(t), 'shm0');
  ClockBoundWriter.open(path, rec({ boundNs: 0n, status: ClockStatus.Synchronized, maxDriftPpb: 0 })).close();
  // Each write k: bound 1000·k and status k mod 2 + 1; a torn read would pair one write's bound with another's status (they sit on different cache lines).
  const script = `
    import { ClockBoundWriter } from '${join(BERKELEYD_JS, '..', '..', 'lib', 'clock', 'clockbound.js')}';
    const w = ClockBoundWriter.open(${JSON.stringify(path)}, { asOfNs: 0n, voidAfterNs: 0n, boundNs: 0n, disruptionMarker: 0n, maxDriftPpb: 0, status: 1, disruptionSupport: false });
    const end = Date.now() + 20000;
    let k = 0;
    process.stdin.on('data', () => process.exit(0));
    (function loop() { for (let i = 0; i < 200; i++) { k++; w.write({ asOfNs: BigInt(k), voidAfterNs: BigInt(k), boundNs: 1000n * BigInt(k), disruptionMarker: BigInt(k), maxDriftPpb: 0, status: (k % 2) + 1, disruptionSupport: false }); } if (Date.now() < end) setImmediate(loop); })();
    console.log('writing');`;
  const writer = new Proc(process.execPath, ['--input-type=module', '-e', script], cleanEnv());
  t.teardown(() => writer.stop());
  await waitFor('the writer', async () => (writer.stdout.includes('writing') ? true : writer.running ? undefined : Promise.reject(new Error(writer.stderr))), 10_000);
  const r = spawnSync((reader as { path: string }).path, [path, 'sample', '20000', '20'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  writer.child.stdin?.end();
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('S '));
  t.is(lines.length, 20_000);
  let torn = 0;
  let retried = 0;
  const gens = new Set<string>();
  for (const l of lines) {
    const f = l.split(' ');
    const [gen, status, b, tries] = [f[4]!, Number(f[5]), BigInt(f[6]!), Number(f[9])];
    gens.add(gen);
    if (b % 1000n !== 0n || Number((b / 1000n) % 2n) + 1 !== status) torn++;
    if (tries > 0) retried++;
  }
  t.log(`${lines.length} snapshots over ${gens.size} generations; ${retried} had to read again (a write in progress or landing during the read); torn: ${torn}`);
  t.is(torn, 0);
  t.true(gens.size > 100, `the writer kept writing during the reads (${gens.size} generations seen)`);
});

// -------------------------------------------------------------- the client

test('client: a write caught half done is waited out through the retry rule', (t) => {
  const path = join(shmDir(t), 'shm0');
  const w = ClockBoundWriter.open(path, rec({ asOfNs: coarseMonotonicNs(), voidAfterNs: coarseMonotonicNs() + 5n * S }));
  t.teardown(() => w.close());
  const fd = openSync(path, 'r+');
  t.teardown(() => closeSync(fd));
  const asOf = coarseMonotonicNs();
  const next = encodeSegment(rec({ asOfNs: asOf, voidAfterNs: asOf + 5n * S, boundNs: 4321n, maxDriftPpb: 0 }), 4);
  let finished = 0;
  const r = new ClockBoundReader(path, (tries) => {
    if (tries === 3) {
      writeSync(fd, next, 16, 64, 16);
      writeSync(fd, Buffer.from([4, 0]), 0, 2, 14);
      finished = tries;
    }
  });
  t.teardown(() => r.close());
  writeSync(fd, Buffer.from([3, 0]), 0, 2, 14);
  const got = r.record();
  t.is(finished, 3);
  t.is(r.lastRetries, 3);
  t.is(got.boundNs, 4321n);
});

test("client: `import { now } from 'berkeleyd/client'` gives [earliest, latest] around CLOCK_REALTIME and the status", async (t) => {
  const path = join(shmDir(t), 'shm0');
  const asOf = coarseMonotonicNs();
  const w = ClockBoundWriter.open(path, rec({ asOfNs: asOf, voidAfterNs: asOf + 5n * S, boundNs: 250_000n, maxDriftPpb: 10_000 }));
  t.teardown(() => w.close());
  const { now } = (await import('berkeleyd/client')) as typeof import('../lib/client.js');
  const before = BigInt(Date.now()) * 1_000_000n;
  const r = now(path);
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  t.is(r.status, 'synchronized');
  t.true(r.boundNs >= 250_000n && r.boundNs < 250_000n + 10_000n, `${r.boundNs}`);
  t.is(r.latest - r.earliest, 2n * r.boundNs);
  const mid = (r.earliest + r.latest) / 2n;
  t.true(mid >= before && mid <= after, 'centred on CLOCK_REALTIME now');
  w.write(rec({ asOfNs: coarseMonotonicNs(), voidAfterNs: coarseMonotonicNs() + 5n * S, status: ClockStatus.Unknown, boundNs: 0n }));
  t.is(now(path).status, 'unknown', 'the next call sees the next write (the mapping is live)');
  t.throws(() => now(join(path, '..', 'missing')), { message: /ENOENT/ });
});

// --------------------------------------------------------- the publisher

withReader(`publisher: a fake bound source's states reach the segment, and stop leaves status unknown${noReader}`, (t) => {
  const path = join(shmDir(t), 'run', 'shm0');
  let state: ErrorBound = { state: 'none', boundNs: null, asOfMonoNs: 0n, driftPpb: 0, why: 'not yet synchronized' };
  const said: string[] = [];
  const p = new BoundPublisher({ path, auto: false, bound: () => state, info: (m) => said.push(m), warn: (m) => said.push(`warning: ${m}`) });
  t.teardown(() => p.stop());
  p.start();
  t.regex(said.join('\n'), /publishing the error bound in ClockBound's segment .*shm0 \(created\)/);
  t.like(readC(path).fields, { clock_status: '0 unknown', bound_ns: '0' });
  state = { state: 'synchronized', boundNs: 12_000n, asOfMonoNs: process.hrtime.bigint(), driftPpb: 1000, why: null };
  p.update();
  const c = readC(path);
  t.is(c.fields['clock_status'], '1 synchronized');
  t.true(Number(c.fields['bound_ns']) >= 12_000 && Number(c.fields['bound_ns']) < 13_000, c.text);
  t.is(c.fields['max_drift_ppb'], '1000');
  t.like(publishedAt(p, process.hrtime.bigint()), { path, status: 1, writes: 2 });
  state = { ...state, state: 'free-running' };
  p.update();
  t.is(readC(path).fields['clock_status'], '2 free-running');
  p.stop();
  t.like(readC(path).fields, { clock_status: '0 unknown' });
  t.is(p.path, null);
  t.is(publishedAt(p, process.hrtime.bigint()), null);
});

test('auto: the default path unless a clockbound process runs or another user\'s file there was written in the last 10 s', (t) => {
  const dir = shmDir(t);
  const proc = join(dir, 'proc');
  mkdirSync(join(proc, '4242'), { recursive: true });
  writeFileSync(join(proc, '4242', 'comm'), 'bash\n');
  const path = join(dir, 'shm0');
  t.like(decideAuto(path, { procRoot: proc }), { publish: true });
  writeFileSync(join(proc, '4242', 'comm'), 'clockbound\n');
  t.like(decideAuto(path, { procRoot: proc }), { publish: false, why: 'a clockbound daemon runs (pid 4242) and owns ' + path });
  writeFileSync(join(proc, '4242', 'comm'), 'bash\n');
  writeFileSync(path, encodeSegment(rec({ asOfNs: 100n * S }), 2));
  const uid = statSync(path).uid;
  t.like(decideAuto(path, { procRoot: proc, uid }), { publish: true }, 'our own file');
  const other = decideAuto(path, { procRoot: proc, uid: uid + 1, monoNs: () => 103n * S });
  t.false(other.publish);
  t.regex(other.why, /written 3\.0 s ago: another writer/);
  t.like(decideAuto(path, { procRoot: proc, uid: uid + 1, monoNs: () => 200n * S }), { publish: true }, 'nobody wrote it for 10 s');
  t.true(readFileSync(path).length === 80);
});

// ------------------------------------------------------------- the command

test('run: --clockbound PATH is refused without --clock system, naming why; auto with a virtual clock runs and says it publishes nothing', async (t) => {
  const refused = await cli(['run', '--clockbound', '/dev/shm/berkeleyd-never'], { env: cleanEnv() });
  t.is(refused.code, 2, refused.text);
  t.regex(refused.stderr, /--clockbound \/dev\/shm\/berkeleyd-never: ClockBound's segment bounds the error of CLOCK_REALTIME.*only --clock system/);
  t.false(existsSync('/dev/shm/berkeleyd-never'));
  const viaEnv = await cli(['run'], { env: cleanEnv({ BERKELEYD_CLOCKBOUND: '/dev/shm/berkeleyd-never' }) });
  t.is(viaEnv.code, 2, viaEnv.text);
  const g = await testGroup();
  const dir = shmDir(t);
  const p = new Proc(process.execPath, [BERKELEYD_JS, 'run', ...g.args, '--control', join(dir, 'c.sock'), '--clockbound', 'auto'], cleanEnv());
  t.teardown(() => p.stop());
  await waitFor('the line', async () => (/not publishing/.test(p.stderr) ? true : p.running ? undefined : Promise.reject(new Error(p.stderr))), 10_000);
  t.regex(p.stderr, /--clockbound auto: not publishing the error bound: ClockBound's segment describes CLOCK_REALTIME, and this daemon keeps a virtual clock/);
});
