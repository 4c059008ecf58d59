/**
 * The daemon on real processes and real sockets (loopback multicast, one
 * random group and free port per test): a group converges and holds within
 * 1 ms by ground truth, a peer waits for a late master, members leave by
 * silence and by LEAVE, signals stop `run` cleanly, `status` and `now` talk
 * to it, and the demo leaves nothing behind.
 *
 * Serial: the bounds are real time on a 2-core machine that also runs the
 * other test files; one group at a time from this file keeps them honest.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAST_START_ROUNDS } from '../lib/core/master.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { readingOf, spreadNs } from '../lib/daemon/truth.js';
import { BERKELEYD_JS, cleanEnv, cli, sleep, STACK_LINE, startRun, testCluster, testGroup, waitFor } from './helpers/group.js';
import { mulberry32, testSeed } from './helpers/prng.js';

const DECIMAL = /^-?\d+$/;
const MS = 1_000_000n;

const cluster = testCluster;

const live = (xs: (StatusJson | null)[]): StatusJson[] => xs.filter((s): s is StatusJson => s !== null);

test.serial('4 daemons seconds apart and drifting converge within 1 ms and stay there; status has every field', async (t) => {
  const seed = testSeed();
  const rnd = mulberry32(seed);
  t.teardown(() => {
    if (!t.passed) t.log(`seed ${seed} (replay: BERKELEYD_TEST_SEED=${seed})`);
  });
  const g = await testGroup(200);
  const c = cluster(t);
  const specs = ['n0', 'n1', 'n2', 'n3'].map((name, i) => {
    const offsetMs = Math.round((rnd.next() * 2 - 1) * 2000);
    const driftPpm = ((rnd.next() * 2 - 1) * 100).toFixed(3);
    return { name, args: [...g.args, '--sim-offset', `${offsetMs}ms`, '--sim-drift', driftPpm, ...(i === 0 ? ['--master'] : ['--priority', '0'])] };
  });
  t.log(`seed ${seed}: ${specs.map((s) => `${s.name} ${s.args.slice(-5).join(' ')}`).join('; ')}`);
  await Promise.all(specs.map((s) => c.add(s)));

  const spreads: bigint[] = [];
  const sample = async (): Promise<{ all: StatusJson[]; spread: bigint }> => {
    const all = live(await c.statusAll());
    t.is(all.length, 4, 'every daemon answers');
    const spread = spreadNs(all.map(readingOf));
    spreads.push(spread);
    return { all, spread };
  };
  const describe = (): string => `spreads so far (µs): ${spreads.map((s) => s / 1000n).join(' ')}`;
  // Converge: every node synced and the ground-truth spread under 1 ms, within ~30 intervals.
  await waitFor(
    'the 4 clocks to agree within 1 ms',
    async () => {
      const { all, spread } = await sample();
      return all.every((s) => s.synced) && spread < MS ? true : undefined;
    },
    30 * g.intervalMs,
    { everyMs: g.intervalMs / 2, describe },
  );
  // Hold: several more samples over several rounds, each within 1 ms.
  for (let i = 0; i < 6; i++) {
    await sleep(g.intervalMs);
    const { spread } = await sample();
    t.true(spread < MS, `spread ${spread} ns after convergence, sample ${i + 1}; ${describe()}`);
  }
  t.log(describe());

  const statuses = live(await c.statusAll());
  const master = statuses.find((s) => s.nodeId === 'n0')!;
  t.is(master.role, 'master');
  t.is(master.masterId, 'n0');
  t.true(master.config.pinnedMaster);
  t.deepEqual(master.members.map((m) => m.nodeId).sort(), ['n1', 'n2', 'n3'], 'the master lists exactly its three peers');
  for (const m of master.members) {
    t.regex(m.offsetNs, DECIMAL, `${m.nodeId} offsetNs`);
    t.regex(m.delayNs, DECIMAL, `${m.nodeId} delayNs`);
    t.true(Number.isInteger(m.lastRound) && m.lastRound > 0, `${m.nodeId} lastRound ${m.lastRound}`);
    t.true(BigInt(m.delayNs) > 0n, `${m.nodeId} delay ${m.delayNs} ns is a measured round trip`);
  }
  for (const s of statuses) {
    const where = `status of ${s.nodeId}: ${JSON.stringify(s)}`;
    t.is(typeof s.nodeId, 'string', where);
    t.is(s.role, s.nodeId === 'n0' ? 'master' : 'peer', where);
    t.is(s.masterId, 'n0', where);
    t.true(Number.isInteger(s.epoch) && s.epoch >= 1, where);
    t.true(Number.isInteger(s.round) && s.round >= 1, where);
    t.is(s.synced, true, where);
    t.regex(s.groupTimeNs, DECIMAL, where);
    t.regex(s.monotonicNs, DECIMAL, where);
    t.true(s.lastAdjustmentNs !== null && DECIMAL.test(s.lastAdjustmentNs), where);
    t.is(typeof s.frequencyPpm, 'number', where);
    t.true(Number.isFinite(s.frequencyPpm), where);
    t.true(Array.isArray(s.members), where);
    if (s.role === 'peer') t.deepEqual(s.members, [], `a peer keeps no member table: ${where}`);
    t.true(Number.isInteger(s.counters.received) && s.counters.received > 0, where);
    t.true(Number.isInteger(s.counters.sent) && s.counters.sent > 0, where);
    t.is(typeof s.counters.rejected, 'object', where);
    for (const [reason, n] of Object.entries(s.counters.rejected)) t.true(Number.isInteger(n) && n > 0, `rejected ${reason}: ${n}`);
    // The group clock really is on wall-clock time (sim offsets are at most 2 s).
    const wallNs = BigInt(Date.now()) * MS;
    const gt = BigInt(s.groupTimeNs);
    t.true(gt > wallNs - 5000n * MS && gt < wallNs + 5000n * MS, `groupTimeNs ${gt} vs wall ${wallNs}`);
  }
});

test.serial('a peer started before the master waits without a master, then joins it', async (t) => {
  const g = await testGroup(200);
  const c = cluster(t);
  await c.add({ name: 'early', args: [...g.args, '--priority', '0', '--sim-offset', '700ms'] });
  // Two intervals and more with no master: it stays an unsynchronized peer (priority 0 never claims).
  const until = Date.now() + 3 * g.intervalMs;
  while (Date.now() < until) {
    const s = await c.status('early');
    t.is(s.role, 'peer');
    t.is(s.masterId, null);
    t.is(s.synced, false);
    await sleep(g.intervalMs / 2);
  }
  await c.add({ name: 'boss', args: [...g.args, '--master'] });
  const joined = await waitFor(
    'the early peer to follow the master and appear in its member table',
    async () => {
      const [peer, master] = await Promise.all([c.status('early'), c.status('boss')]);
      return peer.masterId === 'boss' && peer.synced && master.members.some((m) => m.nodeId === 'early') ? { peer, master } : undefined;
    },
    20 * g.intervalMs,
    { everyMs: 50 },
  );
  t.is(joined.peer.role, 'peer');
  t.deepEqual(joined.master.members.map((m) => m.nodeId), ['early']);
  // Its 700 ms head start is gone.
  const spread = spreadNs([joined.peer, joined.master].map(readingOf));
  t.true(spread < 10n * MS, `spread ${spread} ns`);
});

test.serial('a killed peer leaves the member table by silence; a stopped one at once, by LEAVE', async (t) => {
  const g = await testGroup(200);
  const c = cluster(t);
  await Promise.all([
    c.add({ name: 'm', args: [...g.args, '--master'] }),
    c.add({ name: 'killed', args: [...g.args, '--priority', '0'] }),
    c.add({ name: 'stopped', args: [...g.args, '--priority', '0'] }),
  ]);
  const memberIds = async (): Promise<string[]> => (await c.status('m')).members.map((m) => m.nodeId).sort();
  // Past the fast-start rounds (the first rounds of an epoch run at a fraction of the interval), so that 5 rounds are 5 intervals.
  await waitFor(
    'both peers in the member table, past the fast start',
    async () => {
      const s = await c.status('m');
      return s.round > FAST_START_ROUNDS + 1 && s.members.map((m) => m.nodeId).sort().join() === 'killed,stopped' ? true : undefined;
    },
    30 * g.intervalMs,
  );

  t.is(await c.kill('killed', 'SIGKILL'), 128);
  const killedAt = Date.now();
  // No LEAVE from a SIGKILL: it is still a member right after...
  t.true((await memberIds()).includes('killed'), 'a killed peer is not removed at once');
  // ...and leaves after the member timeout: 5 rounds after the last round it reported in (counted in rounds,
  // not in wall time: on a loaded machine its last reports may have missed a round or two before the kill).
  let lastRound = 0;
  const goneAt = await waitFor(
    'the killed peer to time out',
    async () => {
      const s = await c.status('m');
      const m = s.members.find((x) => x.nodeId === 'killed');
      if (m) lastRound = m.lastRound;
      return m ? undefined : s.round;
    },
    20 * g.intervalMs,
    { everyMs: 10 },
  );
  const silenceMs = Date.now() - killedAt;
  t.log(`killed peer left after ${silenceMs} ms (${(silenceMs / g.intervalMs).toFixed(1)} intervals), in round ${goneAt}; it last reported in round ${lastRound}`);
  t.true(goneAt - lastRound >= 5, `left in round ${goneAt}, ${goneAt - lastRound} rounds after its last report: too soon for a 5-round timeout`);
  t.deepEqual(await memberIds(), ['stopped']);

  // SIGTERM: the LEAVE goes out before the process exits; the master drops it within 2 intervals of the signal.
  const stoppedAt = Date.now();
  const exit = c.kill('stopped', 'SIGTERM');
  await waitFor('the stopped peer to leave', async () => ((await memberIds()).includes('stopped') ? undefined : true), 2 * g.intervalMs, { everyMs: 10 });
  t.log(`stopped peer left ${Date.now() - stoppedAt} ms after SIGTERM`);
  t.deepEqual(await memberIds(), []);
  t.regex(c.member('stopped').stderr, /SIGTERM, leaving the group/);
  t.is(await exit, 0, 'exit status after SIGTERM');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test.serial(`${signal} makes \`run\` exit 0 and remove its control socket`, async (t) => {
    const g = await testGroup(200);
    const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-test-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const control = join(dir, 'run.sock');
    // As systemd starts it: no BERKELEYD_EXIT_WITH_STDIN.
    const proc = await startRun(t, control, [...g.args, '--node-id', 'solo', '--master']);
    t.true(statSync(control).isSocket());
    t.true(await proc.signalAndWait(signal, 3000), `run still running 3 s after ${signal}; stderr:\n${proc.stderr}`);
    t.is(proc.code, 0, `exit (${proc.code ?? proc.signal}); stderr:\n${proc.stderr}`);
    t.false(existsSync(control), `control socket ${control} removed`);
    t.regex(proc.stderr, new RegExp(`${signal}, leaving the group`));
    t.notRegex(proc.stderr, STACK_LINE);
  });
}

test.serial('SIGTERM and SIGINT make `run` exit 0 under Cluster too (BERKELEYD_EXIT_WITH_STDIN=1, as the demo and the benchmark start it)', async (t) => {
  const g = await testGroup(200);
  const c = cluster(t);
  await Promise.all([c.add({ name: 'term', args: [...g.args, '--master'] }), c.add({ name: 'int', args: [...g.args, '--priority', '0'] })]);
  for (const [name, signal] of [['term', 'SIGTERM'], ['int', 'SIGINT']] as const) {
    const m = c.member(name);
    t.true(existsSync(m.control), `${name}: control socket exists while it runs`);
    // Cluster.kill sends SIGKILL 3 s after the signal if the process is still there: 128 then.
    t.is(await c.kill(name, signal, 3000), 0, `${name}: exit status after ${signal} (128: still running 3 s later, killed); stderr:\n${m.stderr}`);
    t.false(existsSync(m.control), `${name}: control socket ${m.control} removed after ${signal}`);
    t.regex(m.stderr, new RegExp(`${signal}, leaving the group`));
    t.notRegex(m.stderr, STACK_LINE);
  }
  t.deepEqual(readdirSync(c.dir), [], 'no socket file left in the cluster directory');
});

test.serial('`status`, `status --json`, `now` and `now --json` talk to a running daemon', async (t) => {
  const g = await testGroup(200);
  const c = cluster(t);
  // The master runs one hour ahead: `now` must print the daemon's clock, not this host's.
  const [m, p] = await Promise.all([
    c.add({ name: 'm', args: [...g.args, '--master', '--sim-offset', '1h'] }),
    c.add({ name: 'p', args: [...g.args, '--priority', '0'] }),
  ]);
  await waitFor('p in the member table', async () => ((await c.status('m')).members.some((x) => x.nodeId === 'p') ? true : undefined), 20 * g.intervalMs);

  const text = await cli(['status', '--control', m.control], { env: cleanEnv() });
  t.is(text.code, 0, text.text);
  t.regex(text.stdout, /Node ID\s*:\s*m$/m, text.text);
  t.regex(text.stdout, /Role\s*:\s*master\b/m, text.text);
  t.regex(text.stdout, /^Members \(1\):$/m, text.text);
  t.regex(text.stdout, /^\s+p\s+/m, 'the member table lists p');

  const peerText = await cli(['status'], { env: cleanEnv({ BERKELEYD_CONTROL: p.control }) });
  t.is(peerText.code, 0, peerText.text);
  t.regex(peerText.stdout, /Node ID\s*:\s*p$/m, peerText.text);
  t.regex(peerText.stdout, /Role\s*:\s*peer of m\b/m, peerText.text);
  t.notRegex(peerText.stdout, /^Members \(/m, 'a peer shows no member table');

  const json = await cli(['status', '--json', '--control', m.control]);
  t.is(json.code, 0, json.text);
  const s = JSON.parse(json.stdout) as StatusJson;
  t.is(s.nodeId, 'm');
  t.is(s.role, 'master');

  const hourNs = 3600n * 1000n * MS;
  const now = await cli(['now', '--control', m.control]);
  t.is(now.code, 0, now.text);
  const iso = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z/.exec(now.stdout);
  t.truthy(iso, `an ISO time with nanoseconds: ${now.stdout}`);
  const printedMs = Date.parse(`${iso![1]}Z`);
  t.true(Math.abs(printedMs - (Date.now() + 3600_000)) < 30_000, `now printed ${now.stdout.trim()}: about an hour ahead of ${new Date().toISOString()}`);

  const nowJson = await cli(['now', '--json', '--control', m.control]);
  t.is(nowJson.code, 0, nowJson.text);
  const r = JSON.parse(nowJson.stdout) as { groupTimeNs: string; monotonicNs: string };
  t.regex(r.groupTimeNs, DECIMAL);
  t.regex(r.monotonicNs, DECIMAL);
  const aheadNs = BigInt(r.groupTimeNs) - BigInt(Date.now()) * MS;
  t.true(aheadNs > hourNs - 30_000n * MS && aheadNs < hourNs + 30_000n * MS, `now --json ${r.groupTimeNs} is ${aheadNs} ns ahead`);

  for (const args of [['status'], ['status', '--json'], ['now']]) {
    const bad = await cli([...args, '--control', '/nonexistent']);
    t.is(bad.code, 2, bad.text);
    t.regex(bad.stderr, /can(no|')t reach the daemon/i, bad.text);
    t.regex(bad.stderr, /\/nonexistent/, bad.text);
    t.notRegex(bad.stderr, STACK_LINE, bad.text);
    t.is(bad.stdout, '', bad.text);
  }
});

/** Processes whose command line is `... berkeleyd.js run ... --port <port> ...`, with their argv. */
function daemonsOnPort(port: number): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const at = argv.indexOf('--port');
    if (argv.some((a) => a.endsWith('berkeleyd.js')) && argv.includes('run') && at >= 0 && argv[at + 1] === String(port)) found.set(Number(entry), argv);
  }
  return found;
}

const alive = (pid: number): boolean => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

test.serial('`demo --rounds 3` prints its rounds, exits 0 and leaves no daemon and no socket behind', async (t) => {
  const child = spawn(process.execPath, [BERKELEYD_JS, 'demo', '--rounds', '3', '--interval', '200ms'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let done = false;
  const seen = new Map<number, string[]>();
  const dirs = new Set<string>();
  t.teardown(async () => {
    if (!done) {
      child.kill('SIGTERM'); // the demo stops its cluster on SIGTERM
      await Promise.race([exited, sleep(5000)]);
      child.kill('SIGKILL');
    }
    // Whatever it may have left behind (only if the test is failing).
    for (const [pid, argv] of seen) {
      try {
        if (alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8') === argv.join('\0')) process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (!t.passed) t.log(`stdout:\n${stdout}\nstderr:\n${stderr}`);
  });

  // Its first line names its group and port; its daemons carry `--port P` and `--control <dir>/nX.sock`.
  const first = await waitFor('the demo\'s first line', async () => (stdout.includes('\n') ? stdout.slice(0, stdout.indexOf('\n')) : undefined), 15_000);
  const m = /on (239\.255\.\d+\.\d+):(\d+) \(loopback\)/.exec(first);
  t.truthy(m, `first line names the group and port: ${first}`);
  const port = Number(m![2]);
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const deadline = Date.now() + 30_000;
  while (exitCode === undefined && Date.now() < deadline) {
    for (const [pid, argv] of daemonsOnPort(port)) {
      seen.set(pid, argv);
      const control = argv[argv.indexOf('--control') + 1];
      if (control) dirs.add(control.slice(0, control.lastIndexOf('/')));
    }
    await Promise.race([exited, sleep(20)]);
  }
  t.not(exitCode, undefined, 'the demo exits within 30 s');
  done = exitCode !== undefined;
  t.is(exitCode, 0, `demo exit status; stderr:\n${stderr}`);
  t.notRegex(stderr, STACK_LINE);

  const rounds = [...stdout.matchAll(/^round \d+ \(epoch \d+\): \d+ of 4 clocks reported(; no majority within the tolerance: all follow the master)?$/gm)];
  t.is(rounds.length, 3, stdout);
  t.regex(stdout, /^\s+n0\s.*master/m, 'round tables list the master');
  t.regex(stdout, /^\s+average .* spread now /m);
  t.regex(stdout, /3 rounds: all 4 clocks agree within/);

  const names = [...seen.values()].map((argv) => argv[argv.indexOf('--node-id') + 1]).sort();
  t.log(`saw the demo's daemons ${names.join(', ')} (pids ${[...seen.keys()].join(', ')}) in ${[...dirs].join(', ')}`);
  t.true(seen.size >= 3, `saw the demo's daemons while it ran: ${names.join(', ')}`);
  t.is(dirs.size, 1, `one cluster directory: ${[...dirs].join(', ')}`);
  for (const pid of seen.keys()) t.false(alive(pid), `daemon ${pid} of the demo is gone`);
  t.deepEqual([...daemonsOnPort(port).keys()], [], `no daemon on port ${port} remains`);
  for (const dir of dirs) t.false(existsSync(dir), `cluster directory ${dir} (and its sockets) removed`);
});
