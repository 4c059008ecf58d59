/**
 * The shipped unit (systemd/berkeleyd.service) and its example environment
 * file (systemd/berkeleyd.default): systemd accepts them as they are, they
 * say what the design asks, and the parsers in helpers/unit.ts read them the
 * way systemd does.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  expandWord,
  parseEnvironmentFile,
  parseUnit,
  readEnvironmentFile,
  readUnit,
  resolveExec,
  serviceEnvironment,
  splitWords,
} from './helpers/unit.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const unitPath = join(root, 'systemd', 'berkeleyd.service');
const defaultsPath = join(root, 'systemd', 'berkeleyd.default');
const cliPath = join(root, 'dist', 'bin', 'berkeleyd.js');

/** systemd's major version, or null without systemd-analyze. */
function systemdVersion(): number | null {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  const m = /^systemd (\d+)/m.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}
const version = systemdVersion();
const withAnalyze = version !== null ? test : test.skip;
const noAnalyze = version === null ? ' (skipped: systemd-analyze not found; apt-get install systemd)' : '';
// `security --offline` came with systemd 250.
const withOfflineSecurity = version !== null && version >= 250 ? test : test.skip;
/** `berkeleyd run --help`, or null while the CLI or its `run` command is not built. */
function runHelp(): string | null {
  if (!existsSync(cliPath)) return null;
  const r = spawnSync(process.execPath, [cliPath, 'run', '--help'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && /^Usage: berkeleyd run\b/m.test(r.stdout) ? r.stdout : null;
}
const help = runHelp();
const withRunCommand = help !== null ? test : test.skip;
const noRunCommand = help === null ? ' (skipped: `berkeleyd run` not built; npm run build)' : '';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------- the unit

withAnalyze(`systemd-analyze verify accepts the unit as shipped${noAnalyze}`, async (t) => {
  const r = await run('systemd-analyze', ['verify', unitPath]);
  t.log(`systemd ${version}: verify exit ${r.code}`);
  // Other units on the machine may draw warnings; ours must draw none.
  const ours = r.stderr.split('\n').filter((l) => l.includes('berkeleyd'));
  t.deepEqual(ours, [], r.stderr);
  t.is(r.code, 0, r.stderr);
});

withAnalyze(`systemd-analyze verify rejects a unit whose ExecStart is missing (the check has teeth)${noAnalyze}`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const broken = join(dir, 'berkeleyd.service');
  writeFileSync(broken, readFileSync(unitPath, 'utf8').replace(/^ExecStart=.*$/m, `ExecStart=${dir}/missing/berkeleyd run`));
  const r = await run('systemd-analyze', ['verify', broken]);
  t.not(r.code, 0);
  t.regex(r.stderr, /berkeleyd\.service.*missing\/berkeleyd/);
});

withOfflineSecurity(`systemd-analyze security rates the unit's exposure OK or better${noAnalyze}`, async (t) => {
  const r = await run('systemd-analyze', ['security', '--offline=yes', unitPath]);
  const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
  t.truthy(m, r.stdout + r.stderr);
  const score = Number(m![1]);
  t.log(`exposure ${score} (0 = locked down, 10 = unprotected)`);
  t.true(score <= 2.0, `exposure ${score}; the shipped unit scores 2.0 (1.2 before it was given the system clock)`);
});

test('the unit runs `berkeleyd run` configured from /etc/default/berkeleyd', (t) => {
  const unit = readUnit(unitPath);
  t.is(unit.file, '/usr/bin/env');
  t.deepEqual(unit.argv, ['/usr/bin/env', 'berkeleyd', 'run', '--reload-env-file', '/etc/default/berkeleyd']);
  t.deepEqual(unit.environmentFiles, [{ path: '/etc/default/berkeleyd', optional: true }]);
  const service = unit.sections['Service']!;
  const one = (key: string): string | undefined => service[key]?.at(-1);
  t.true(['simple', 'exec'].includes(one('Type')!));
  t.is(one('Restart'), 'on-failure');
  // A configuration error (exit 2) fails the unit instead of restarting it forever.
  t.is(one('RestartPreventExitStatus'), '2');
  // The journal names the daemon, not the env it is started through.
  t.is(one('SyslogIdentifier'), 'berkeleyd');
  t.regex(one('ExecReload')!, /^\+\/bin\/sh -c '.*\/etc\/berkeleyd\/key .*&& \/bin\/kill -HUP \$\{MAINPID\}'$/);
  t.is(one('RuntimeDirectory'), 'berkeleyd');
  t.is(one('DynamicUser'), 'yes');
  t.is(one('CapabilityBoundingSet'), 'CAP_SYS_TIME');
  t.is(one('NoNewPrivileges'), 'yes');
  t.is(one('ProtectSystem'), 'strict');
  t.deepEqual(one('RestrictAddressFamilies')!.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  // V8's JIT needs writable-then-executable memory.
  t.false('MemoryDenyWriteExecute' in service);
  const unitSection = unit.sections['Unit']!;
  t.true(unitSection['After']!.join(' ').split(/\s+/).includes('network-online.target'));
  t.true(unitSection['Wants']!.join(' ').split(/\s+/).includes('network-online.target'));
  t.deepEqual(unit.sections['Install']!['WantedBy'], ['multi-user.target']);
});

test('the unit may set the system clock and nothing more, and conflicts with the other time services', (t) => {
  const unit = readUnit(unitPath);
  const service = unit.sections['Service']!;
  // CAP_SYS_TIME alone, bounding and ambient (the dynamic user has no other way to get it).
  t.deepEqual(service['CapabilityBoundingSet'], ['CAP_SYS_TIME']);
  t.deepEqual(service['AmbientCapabilities'], ['CAP_SYS_TIME']);
  // What blocks clock_adjtime is gone: ProtectClock, and PrivateUsers (capabilities in a user namespace do not reach the host clock).
  t.false('ProtectClock' in service);
  t.false('PrivateUsers' in service);
  // @clock allowed after @privileged was taken away (systemd applies the lines in order).
  const filters = service['SystemCallFilter']!;
  t.deepEqual(filters, ['@system-service', '~@privileged', '@clock']);
  t.deepEqual(service['StateDirectory'], ['berkeleyd']);
  const conflicts = unit.sections['Unit']!['Conflicts']!.join(' ').split(/\s+/).sort();
  t.deepEqual(conflicts, ['chrony.service', 'ntp.service', 'ntpsec.service', 'openntpd.service', 'systemd-timesyncd.service']);
  // timedatectl finds the service through an ntp-units.d entry.
  const list = readFileSync(join(root, 'systemd', 'ntp-units.d', '80-berkeleyd.list'), 'utf8');
  t.deepEqual(list.split('\n').filter((l) => l.trim() && !l.startsWith('#')), ['berkeleyd.service']);
});

// ------------------------------------------------------ the example defaults

/** The example file with every `#NAME=value` line uncommented. */
function uncommentedDefaults(): string {
  return readFileSync(defaultsPath, 'utf8').replace(/^#([A-Z_][A-Z0-9_]*=)/gm, '$1');
}

test('the example /etc/default/berkeleyd sets only the system clock and its error bound in ClockBound\'s segment as shipped', (t) => {
  t.deepEqual(readEnvironmentFile(defaultsPath), { BERKELEYD_CLOCK: 'system', BERKELEYD_CLOCKBOUND: 'auto' });
});

test('the example /etc/default/berkeleyd documents BERKELEYD_* variables and DEBUG', (t) => {
  const env = parseEnvironmentFile(uncommentedDefaults());
  const names = Object.keys(env);
  for (const name of ['GROUP', 'PORT', 'INTERFACE', 'INTERVAL', 'MASTER', 'PRIORITY', 'NODE_ID', 'DOMAIN', 'KEY_FILE', 'CONTROL', 'CLOCK', 'FORCE', 'STATE_FILE']) {
    t.true(names.includes(`BERKELEYD_${name}`), `BERKELEYD_${name} is documented`);
  }
  t.is(env['DEBUG'], 'berkeleyd:*');
  t.deepEqual(names.filter((n) => !n.startsWith('BERKELEYD_') && !n.startsWith('DEBUG')), []);
  // What the service would see with every line uncommented.
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'berkeleyd'), uncommentedDefaults());
  const serviceEnv = serviceEnvironment(readUnit(unitPath), {
    base: { PATH: '/usr/local/bin:/usr/bin' },
    mapPath: (p) => (p === '/etc/default/berkeleyd' ? join(dir, 'berkeleyd') : p),
  });
  t.is(serviceEnv['PATH'], '/usr/local/bin:/usr/bin');
  t.is(serviceEnv['BERKELEYD_INTERVAL'], env['BERKELEYD_INTERVAL']);
});

withRunCommand(`every \`berkeleyd run\` variable is documented in the example, and nothing else${noRunCommand}`, (t) => {
  // commander prints "(env: NAME)" for options declared with .env(); flags
  // parsed by hand say "(env NAME=1)". Help text wraps at spaces.
  const fromHelp = [...new Set([...help!.matchAll(/\benv:?\s+(BERKELEYD_[A-Z0-9_]+)/g)].map((m) => m[1]!))].sort();
  t.not(fromHelp.length, 0, `no "(env: BERKELEYD_...)" in \`berkeleyd run --help\`:\n${help}`);
  const documented = Object.keys(parseEnvironmentFile(uncommentedDefaults()))
    .filter((n) => n.startsWith('BERKELEYD_'))
    .sort();
  t.deepEqual(documented, fromHelp);
});

// ------------------------------------------------------------- the parsers

test('splitWords splits like systemd: quotes, quotes inside words, C escapes', (t) => {
  t.deepEqual(splitWords('  /bin/x  run --a=1\t"b c" \'d "e"\' f"g h"i '), ['/bin/x', 'run', '--a=1', 'b c', 'd "e"', 'fg hi']);
  t.deepEqual(splitWords('a\\ b "c\\"d" \\x41\\n \\101'), ['a b', 'c"d', 'A\n', 'A']);
  t.deepEqual(splitWords('""'), ['']);
  t.deepEqual(splitWords('   '), []);
  t.throws(() => splitWords('"open'), { message: /unterminated quote/ });
});

test('expandWord: $NAME as a word splits, ${NAME} is exact, $$ is $', (t) => {
  const env = { OPTS: '--port 1 "--name=a b"', EMPTY: '', P: '7 8' };
  t.deepEqual(expandWord('$OPTS', env), ['--port', '1', '--name=a b']);
  t.deepEqual(expandWord('$MISSING', env), []);
  t.deepEqual(expandWord('$EMPTY', env), []);
  t.deepEqual(expandWord('${P}', env), ['7 8']);
  t.deepEqual(expandWord('--port=${P}x', env), ['--port=7 8x']);
  t.deepEqual(expandWord('--port=${MISSING}', env), ['--port=']);
  t.deepEqual(expandWord('${MISSING:-dflt} ${P:-dflt} ${P:+alt} ${MISSING:+alt}', env), ['dflt 7 8 alt ']);
  t.deepEqual(expandWord('--cost=$$5', env), ['--cost=$5']);
  t.deepEqual(expandWord('--port=$P', env), ['--port=$P'], 'braceless inside a word stays, as in systemd');
});

test('parseUnit: sections, continuations, comments, resets, prefixes, specifiers', (t) => {
  const unit = parseUnit(
    [
      '# comment',
      '[Unit]',
      'Description=x',
      '[Service]',
      'Environment=A=1 "B=two words"',
      'Environment=A=3 bad-name=4',
      'EnvironmentFile=/etc/one',
      'EnvironmentFile=',
      'EnvironmentFile=-/etc/default/%N',
      'EnvironmentFile=%t/%n.env',
      'ExecStart=-@/usr/bin/prog argv0 \\',
      '  ; a comment inside a continuation',
      '  --flag "$A" ${B} 100%%',
    ].join('\n'),
    'demo.service',
  );
  t.deepEqual(unit.sections['Unit'], { Description: ['x'] });
  t.deepEqual(unit.environment, { A: '3', B: 'two words' });
  t.deepEqual(unit.environmentFiles, [
    { path: '/etc/default/demo', optional: true },
    { path: '/run/demo.service.env', optional: false },
  ]);
  t.deepEqual(unit.execStart, { prefixes: '-@', words: ['/usr/bin/prog', 'argv0', '--flag', '$A', '${B}', '100%'] });
  t.deepEqual(resolveExec(unit.execStart, unit.environment), {
    file: '/usr/bin/prog',
    argv: ['argv0', '--flag', '3', 'two words', '100%'],
  });
  t.deepEqual(resolveExec({ prefixes: ':', words: ['/bin/x', '$A'] }, { A: '1' }).argv, ['/bin/x', '$A']);
  t.throws(() => parseUnit('[Service]\nExecStart=/bin/x %q', 'x.service'), { message: /unsupported specifier %q/ });
  t.throws(() => parseUnit('[Service]\nType=simple', 'x.service'), { message: /exactly one ExecStart/ });
  t.throws(() => parseUnit('ExecStart=/bin/x', 'x.service'), { message: /outside a section/ });
});

test('readUnit expands ExecStart with the given environment', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.service');
  writeFileSync(path, '[Service]\nExecStart=/usr/bin/env berkeleyd run $EXTRA --port=${PORT}\n');
  t.deepEqual(readUnit(path, { EXTRA: '--master  -v', PORT: '1234' }).argv, [
    '/usr/bin/env',
    'berkeleyd',
    'run',
    '--master',
    '-v',
    '--port=1234',
  ]);
  t.deepEqual(readUnit(path).argv, ['/usr/bin/env', 'berkeleyd', 'run', '--port=']);
});

test('parseEnvironmentFile follows systemd EnvironmentFile syntax', (t) => {
  const text = [
    '# comment',
    '; also a comment \\',
    'CONTINUED_COMMENT=not a variable',
    '',
    '  PLAIN = value with spaces   ',
    'EMPTY=',
    'SINGLE=\'a "b" \\n $c\'',
    'DOUBLE="a \\"b\\" \\\\ \\$c \\n"',
    'MIXED="a b"\'c\'',
    'ESCAPED=a\\ b\\#c\\',
    'NEXT=x',
    'HASH=a#b ;c',
    'noequals',
    '1BAD=x',
    'BAD-NAME=x',
    'DUP=1',
    'DUP=2',
    'MULTI="line1',
    'line2"',
    'CRLF=v\r',
    'LAST=no newline',
  ].join('\n');
  t.deepEqual(parseEnvironmentFile(text), {
    PLAIN: 'value with spaces',
    EMPTY: '',
    SINGLE: 'a "b" \\n $c',
    DOUBLE: 'a "b" \\ $c \\n',
    MIXED: 'a bc',
    ESCAPED: 'a b#cNEXT=x',
    HASH: 'a#b ;c',
    DUP: '2',
    MULTI: 'line1\nline2',
    CRLF: 'v',
    LAST: 'no newline',
  });
});

test('serviceEnvironment: files override Environment=, optional files may be missing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a'), 'X=from-file\nY=y\n');
  const unit = parseUnit(
    `[Service]\nEnvironment=X=inline Z=z\nEnvironmentFile=-${dir}/missing\nEnvironmentFile=${dir}/a\nExecStart=/bin/true\n`,
    'x.service',
  );
  t.deepEqual(serviceEnvironment(unit, { base: { Z: 'base', PATH: '/bin' } }), { PATH: '/bin', X: 'from-file', Y: 'y', Z: 'z' });
  const required = parseUnit(`[Service]\nEnvironmentFile=${dir}/missing\nExecStart=/bin/true\n`, 'x.service');
  t.throws(() => serviceEnvironment(required), { code: 'ENOENT' });
});
