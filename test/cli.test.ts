/**
 * The command line as a user meets it (the CLI spawned as a process): bad
 * usage exits 2 with a message naming the option and no stack trace, a
 * port in use is named, every command has working --help, --version is the
 * package's, keygen writes a key that `run` accepts, and `simulate`
 * reproduces the seed's vector.
 */
import test, { type ExecutionContext } from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../lib/daemon/control.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { freeUdpPort } from '../lib/net/transport.js';
import { parseKeyFile } from '../lib/wire/keys.js';
import { cleanEnv, cli, randomGroup, ROOT, STACK_LINE, startRun, testGroup, waitFor, type CliResult } from './helpers/group.js';

/** A temporary directory removed when the test ends. */
function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A usage error: exit 2, a one-line-ish message on stderr matching every pattern, nothing on stdout, no stack. */
function isUsageError(t: ExecutionContext, r: CliResult, ...names: RegExp[]): void {
  t.is(r.code, 2, r.text);
  t.not(r.stderr.trim(), '', `a message on stderr\n${r.text}`);
  for (const n of names) t.regex(r.stderr, n, r.text);
  t.notRegex(r.stderr, STACK_LINE, `no stack trace\n${r.text}`);
  t.is(r.stdout, '', r.text);
}

// ---------------------------------------------------------------- bad usage

interface BadCase {
  args: string[];
  env?: Record<string, string>;
  names: RegExp[];
}

const BAD: BadCase[] = [
  { args: ['run', '--port', 'abc'], names: [/--port/, /abc/] },
  { args: ['run', '--port', '70000'], names: [/--port/, /70000/] },
  { args: ['run', '--interval', '2x'], names: [/--interval/, /2x/] },
  { args: ['run', '--interval', '5ms'], names: [/--interval/, /40ms/] },
  { args: ['run', '--collect-timeout', '2s', '--interval', '1s'], names: [/--collect-timeout/] },
  { args: ['run', '--group', '10.0.0.1'], names: [/--group/, /10\.0\.0\.1/, /multicast/] },
  { args: ['run', '--priority', '256'], names: [/--priority/, /256/] },
  { args: ['run', '--interface', 'eth9'], names: [/--interface/, /eth9/] },
  { args: ['run', '--max-slew', '0'], names: [/--max-slew/] },
  { args: ['run'], env: { BERKELEYD_PORT: 'abc' }, names: [/BERKELEYD_PORT/, /abc/] },
  { args: ['run'], env: { BERKELEYD_MASTER: 'maybe' }, names: [/BERKELEYD_MASTER/, /maybe/] },
  { args: ['run', '--master', '--priority', '0'], names: [/--master/, /--priority/] },
  { args: ['simulate', '--nodes', '0'], names: [/--nodes/] },
  { args: ['simulate', '--master', 'n9', '--nodes', '4'], names: [/--master/, /n9/] },
  { args: ['simulate', '--offsets', '1s,2s,3s', '--nodes', '2'], names: [/--offsets/] },
  { args: ['simulate', '--collect-timeout', '2s', '--interval', '1s'], names: [/--collect-timeout/] },
  { args: ['simulate', '--loss', '150%'], names: [/--loss/, /150%/] },
  { args: ['simulate', '--fault', 'n3:melt=1'], names: [/--fault/, /n3:melt=1/] },
  { args: ['simulate', '--fault', 'n3:jump=5ms'], names: [/--fault/, /@ROUND/] },
  { args: ['simulate', '--fault', 'n3:drift=lots'], names: [/--fault/] },
  { args: ['simulate', '--fault', 'n9:mute@3', '--nodes', '4'], names: [/--fault/, /n9/] },
  { args: ['keygen', '--id', '0'], names: [/--id/] },
  { args: ['run', '--bogus'], names: [/unknown option/, /--bogus/] },
  { args: ['status', '--bogus'], names: [/unknown option/, /--bogus/] },
  { args: ['frobnicate'], names: [/unknown command/, /frobnicate/] },
];

for (const c of BAD) {
  const title = `${Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v} `).join('')}berkeleyd ${c.args.join(' ')}: exit 2 naming it`;
  test(title, async (t) => {
    const dir = tempDir(t);
    // Should `run` wrongly accept its arguments, it runs on loopback in a group of its own, and is killed after 10 s.
    const safe = c.args[0] === 'run' ? { BERKELEYD_GROUP: randomGroup(), BERKELEYD_PORT: String(await freeUdpPort()), BERKELEYD_INTERFACE: '127.0.0.1', BERKELEYD_CONTROL: join(dir, 'run.sock') } : {};
    const r = await cli(c.args, { env: cleanEnv({ ...safe, ...c.env }), timeoutMs: 10_000 });
    isUsageError(t, r, ...c.names);
  });
}

// ---------------------------------------------------------------- ports in use

/** A UDP socket on 0.0.0.0 without SO_REUSEADDR: nobody else can bind its port. */
async function blocker(t: ExecutionContext): Promise<number> {
  const s: Socket = createSocket({ type: 'udp4' });
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind({ port: 0, address: '0.0.0.0', exclusive: true }, () => resolve());
  });
  return s.address().port;
}

test('a group port in use: exit 2 naming --port, no control socket left', async (t) => {
  const dir = tempDir(t);
  const port = await blocker(t);
  const control = join(dir, 'run.sock');
  const r = await cli(['run', '--group', randomGroup(), '--port', String(port), '--interface', '127.0.0.1', '--control', control], { timeoutMs: 10_000 });
  isUsageError(t, r, /--port/, new RegExp(String(port)), /in use/);
  t.false(existsSync(control), 'the control socket is removed when the start fails');
});

test('a unicast port in use: exit 2 naming --unicast-port, no control socket left', async (t) => {
  const dir = tempDir(t);
  const unicast = await blocker(t);
  const g = await testGroup();
  const control = join(dir, 'run.sock');
  // Killed after 5 s if it hangs instead of exiting.
  const r = await cli(['run', ...g.args, '--unicast-port', String(unicast), '--control', control], { timeoutMs: 5_000 });
  isUsageError(t, r, /--unicast-port/, new RegExp(String(unicast)), /in use/);
  t.false(existsSync(control), 'the control socket is removed when the start fails');
});

// ---------------------------------------------------------------- help and version

const OPTIONS: Record<string, string[]> = {
  run: [
    '--master', '--priority', '--node-id', '--group', '--port', '--unicast-port', '--interface', '--domain', '--interval', '--collect-timeout', '--probes',
    '--max-delay', '--tolerance', '--max-slew', '--step-threshold', '--step-always', '--max-adjust', '--key-file', '--ttl', '--control', '--sim-offset', '--sim-drift',
  ],
  demo: ['--nodes', '--rounds', '--interval', '--offset-spread', '--drift'],
  simulate: [
    '--nodes', '--rounds', '--interval', '--collect-timeout', '--offsets', '--offset-spread', '--master', '--drift', '--delay', '--jitter', '--asymmetry', '--loss',
    '--tolerance', '--probes', '--max-slew', '--step-threshold', '--crash-master', '--partition', '--fault', '--seed', '--json', '--quiet',
  ],
  status: ['--control', '--json'],
  now: ['--control', '--json'],
  keygen: ['--id', '[file]'],
};

for (const [command, options] of Object.entries(OPTIONS)) {
  test(`berkeleyd ${command} --help: exit 0, lists its options`, async (t) => {
    const r = await cli([command, '--help']);
    t.is(r.code, 0, r.text);
    t.regex(r.stdout, new RegExp(`^Usage: berkeleyd ${command}\\b`, 'm'), r.text);
    for (const o of options) t.true(new RegExp(`(^|\\s)${o.replace(/[[\]]/g, '\\$&')}(\\s|,|$)`, 'm').test(r.stdout), `${command} --help lists ${o}\n${r.text}`);
    t.notRegex(r.stderr, STACK_LINE, r.text);
    if (command === 'run') {
      // Every run option can come from BERKELEYD_<OPTION>, and the help says which.
      const flat = r.stdout.replace(/\s+/g, ' ');
      for (const o of options) t.true(flat.includes(`BERKELEYD_${o.slice(2).toUpperCase().replace(/-/g, '_')}`), `run --help names the variable of ${o}`);
    }
  });
}

test('berkeleyd --help: exit 0, lists every command', async (t) => {
  const r = await cli(['--help']);
  t.is(r.code, 0, r.text);
  for (const c of Object.keys(OPTIONS)) t.regex(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `lists ${c}\n${r.text}`);
  t.regex(r.stdout, /--version/);
});

test('berkeleyd --version and -V print the package.json version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await cli([flag]);
    t.is(r.code, 0, r.text);
    t.is(r.stdout.trim(), version, r.text);
  }
});

// ---------------------------------------------------------------- keygen and --key-file

test('keygen FILE writes a 0600 key that `run --key-file` accepts; keygen does not overwrite it', async (t) => {
  const dir = tempDir(t);
  const key = join(dir, 'group.key');
  const made = await cli(['keygen', '--id', '7', key]);
  t.is(made.code, 0, made.text);
  t.is(statSync(key).mode & 0o777, 0o600, 'mode 0600');
  const text = readFileSync(key, 'utf8');
  const parsed = parseKeyFile(text);
  t.true(parsed.ok, text);
  if (parsed.ok) t.deepEqual(parsed.keyring.ids(), [7]);

  const again = await cli(['keygen', key]);
  isUsageError(t, again, /exists/, new RegExp(key.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  t.is(readFileSync(key, 'utf8'), text, 'the key file is unchanged');

  // A master and a peer sharing the key: the daemon starts, says it authenticates, and the pair synchronizes.
  const g = await testGroup(200);
  const [mSock, pSock] = [join(dir, 'm.sock'), join(dir, 'p.sock')];
  const [master, peer] = await Promise.all([
    startRun(t, mSock, [...g.args, '--key-file', key, '--node-id', 'm', '--master']),
    startRun(t, pSock, [...g.args, '--key-file', key, '--node-id', 'p', '--priority', '0', '--sim-offset', '300ms']),
  ]);
  const status = async (sock: string): Promise<StatusJson> => {
    const r = await cli(['status', '--json', '--control', sock]);
    if (r.code !== 0) throw new Error(r.text);
    return JSON.parse(r.stdout) as StatusJson;
  };
  const s = await status(mSock);
  t.true(s.config.authenticated, 'config.authenticated');
  await waitFor('the keyed peer to synchronize', async () => {
    const p = (await query(pSock, 'status')) as StatusJson;
    return p.synced && p.masterId === 'm' ? true : undefined;
  }, 20 * g.intervalMs);
  t.true((await status(pSock)).config.authenticated);
  t.deepEqual((await status(mSock)).members.map((m) => m.nodeId), ['p']);
  t.deepEqual((await status(mSock)).counters.rejected, {}, 'nothing rejected between nodes sharing a key');

  for (const p of [peer, master]) {
    t.true(await p.signalAndWait('SIGTERM', 3000), `exits after SIGTERM: ${p.stderr}`);
    t.is(p.code, 0, p.stderr);
  }
  t.false(existsSync(mSock) || existsSync(pSock), 'control sockets removed');
});

test('run --key-file with a malformed file: exit 2 naming --key-file and the line', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, '# our group key\n7 HMAC-SHA256 HEX:not-hex\n', { mode: 0o600 });
  const g = await testGroup();
  const control = join(dir, 'run.sock');
  const r = await cli(['run', ...g.args, '--key-file', bad, '--control', control], { timeoutMs: 10_000 });
  isUsageError(t, r, /--key-file/, /line 2/);
  t.false(existsSync(control));
  const missing = await cli(['run', ...g.args, '--key-file', join(dir, 'missing.key'), '--control', control], { timeoutMs: 10_000 });
  isUsageError(t, missing, /--key-file/, /missing\.key/);
});

// ---------------------------------------------------------------- simulate

test('simulate --fault (repeatable): the report names the faulty members, JSON has the good clocks apart', async (t) => {
  const r = await cli(['simulate', '--nodes', '6', '--rounds', '20', '--drift', '20', '--quiet', '--fault', 'n3:drift=2000', '--fault', 'n4:lie=3ms', '--json']);
  t.is(r.code, 0, r.text);
  t.regex(r.stdout, /^faults n3:drift=2000 n4:lie=\+3\.000 ms; the 4 good clocks: /m);
  t.regex(r.stdout, /^named faulty: .*n3 \(outlier\) in round \d+/m);
  const summary = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!) as { faults: string[]; good: { nodes: string[]; rateErrorPpm: number }; flagged: { node: string }[] };
  t.deepEqual(summary.faults, ['n3:drift=2000', 'n4:lie=+3.000 ms']);
  t.deepEqual(summary.good.nodes, ['n0', 'n1', 'n2', 'n5']);
  t.deepEqual([...new Set(summary.flagged.map((f) => f.node))].sort(), ['n3', 'n4']);
});

test("simulate reproduces the seed's vector: adjustments +45, +15, -15, -45 ms", async (t) => {
  const r = await cli(['simulate', '--nodes', '4', '--offsets=-90ms,-60ms,-30ms,0', '--master', 'n3', '--delay', '0', '--jitter', '0', '--drift', '0', '--tolerance', '1s', '--rounds', '3', '--json']);
  t.is(r.code, 0, r.text);
  const lines = r.stdout.trimEnd().split('\n');
  const summary = JSON.parse(lines[lines.length - 1]!) as { firstRoundAdjustmentsNs: Record<string, number>; masters: string[] };
  t.deepEqual(summary.firstRoundAdjustmentsNs, { n0: 45_000_000, n1: 15_000_000, n2: -15_000_000, n3: -45_000_000 });
  t.deepEqual(summary.masters, ['n3']);
  // The human report: round 1's table, the seed's numbers.
  t.regex(r.stdout, /^round 1: epoch 1, round 1, master n3$/m, r.text);
  t.regex(r.stdout, /^\s+node\s+offset\s+adjustment$/m, r.text);
  t.regex(r.stdout, /^\s+n0\s+-90\.000 ms\s+\+45\.000 ms$/m, r.text);
  t.regex(r.stdout, /^\s+n1\s+-60\.000 ms\s+\+15\.000 ms$/m, r.text);
  t.regex(r.stdout, /^\s+n2\s+-30\.000 ms\s+-15\.000 ms$/m, r.text);
  t.regex(r.stdout, /^\s+n3\s+0 ns\s+-45\.000 ms\s+master$/m, r.text);
  t.regex(r.stdout, /^\s+average -45\.000 ms/m, r.text);
});
