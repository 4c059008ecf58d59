/**
 * The service started the way systemd starts it: the unit's ExecStart,
 * expanded with the environment systemd would give it (its EnvironmentFile,
 * here a copy of systemd/berkeleyd.default with a few settings uncommented,
 * and RUNTIME_DIRECTORY for RuntimeDirectory=), `berkeleyd` found on PATH as
 * `npm install -g` puts it there. Then: the control socket in the runtime
 * directory, the settings in effect, debug logs on stderr (the journal), and
 * a clean stop on SIGTERM.
 */
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../lib/daemon/control.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { cleanEnv, cli, Proc, ROOT, STACK_LINE, testGroup, waitFor } from './helpers/group.js';
import { readUnit, resolveExec, serviceEnvironment } from './helpers/unit.js';

const unitPath = join(ROOT, 'systemd', 'berkeleyd.service');
const defaultsPath = join(ROOT, 'systemd', 'berkeleyd.default');
const cliPath = join(ROOT, 'dist', 'bin', 'berkeleyd.js');

/** systemd's PATH for services (after our shim directory). */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

test('ExecStart with the shipped environment file runs the daemon as systemd would, and SIGTERM stops it cleanly', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'berkeleyd-svc-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

  // berkeleyd on PATH, as `npm install -g` puts it there: an executable that execs the CLI (same pid).
  const binDir = join(tmp, 'bin');
  mkdirSync(binDir);
  const shim = join(binDir, 'berkeleyd');
  writeFileSync(shim, `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' "$@"\n`);
  chmodSync(shim, 0o755);

  // RuntimeDirectory=berkeleyd: systemd creates it and passes RUNTIME_DIRECTORY.
  const runtimeDir = join(tmp, 'run', 'berkeleyd');
  mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });

  // /etc/default/berkeleyd: the shipped file with some settings uncommented, as an operator edits it.
  const g = await testGroup(200);
  const settings: Record<string, string> = {
    BERKELEYD_GROUP: g.group,
    BERKELEYD_PORT: String(g.port),
    BERKELEYD_INTERFACE: '127.0.0.1',
    BERKELEYD_MASTER: '1',
    BERKELEYD_INTERVAL: `${g.intervalMs}ms`,
    BERKELEYD_NODE_ID: 'svc',
    DEBUG: 'berkeleyd:*',
    DEBUG_HIDE_DATE: 'yes',
  };
  let defaults = readFileSync(defaultsPath, 'utf8');
  for (const [k, v] of Object.entries(settings)) {
    const commented = new RegExp(`^#${k}=.*$`, 'm');
    t.regex(defaults, commented, `the shipped file offers ${k} (commented out)`);
    defaults = defaults.replace(commented, `${k}=${v}`);
  }
  // The shipped file selects the system clock; this test runs on the host, whose clock must never be touched.
  t.regex(defaults, /^BERKELEYD_CLOCK=system$/m, 'the shipped file selects the system clock');
  defaults = defaults.replace(/^BERKELEYD_CLOCK=system$/m, 'BERKELEYD_CLOCK=virtual');
  const envFile = join(tmp, 'etc-default-berkeleyd');
  writeFileSync(envFile, defaults);

  const unit = readUnit(unitPath);
  t.deepEqual(unit.environmentFiles, [{ path: '/etc/default/berkeleyd', optional: true }]);
  const env = serviceEnvironment(unit, {
    base: { PATH: `${binDir}:${SYSTEMD_PATH}`, RUNTIME_DIRECTORY: runtimeDir },
    mapPath: (p) => {
      if (p !== '/etc/default/berkeleyd') throw new Error(`unexpected EnvironmentFile ${p}`);
      return envFile;
    },
  });
  for (const [k, v] of Object.entries(settings)) t.is(env[k], v, `${k} as systemd reads the file`);
  t.is(env['BERKELEYD_CLOCK'], 'virtual');
  const exec = resolveExec(unit.execStart, env);
  t.deepEqual(exec.argv, ['/usr/bin/env', 'berkeleyd', 'run', '--reload-env-file', '/etc/default/berkeleyd']);

  const proc = new Proc(exec.file, exec.argv.slice(1), env);
  t.teardown(() => proc.stop());
  t.teardown(() => {
    if (!t.passed) t.log(`daemon exit ${proc.code ?? proc.signal ?? 'none (running)'}; stderr:\n${proc.stderr.slice(-4000)}`);
  });

  const socket = join(runtimeDir, 'berkeleyd.sock');
  await waitFor(
    `the control socket ${socket}`,
    async () => (!proc.running ? true : existsSync(socket) ? query(socket, 'now', 1000).then(() => true, () => undefined) : undefined),
    10_000,
  );
  t.true(proc.running, `the service exited at start (${proc.code ?? proc.signal})`);
  const st = statSync(socket);
  t.true(st.isSocket(), `${socket} is a socket`);
  t.is(st.mode & 0o777, 0o600, `socket mode ${(st.mode & 0o777).toString(8)}`);

  const r = await cli(['status', '--json'], { env: cleanEnv({ BERKELEYD_CONTROL: socket }) });
  t.is(r.code, 0, r.text);
  const s = JSON.parse(r.stdout) as StatusJson;
  t.is(s.nodeId, 'svc');
  t.is(s.role, 'master');
  t.is(s.masterId, 'svc');
  t.like(s.config, { group: g.group, port: g.port, interface: '127.0.0.1', intervalMs: g.intervalMs, collectTimeoutMs: g.intervalMs / 2, pinnedMaster: true, authenticated: false });
  // systemd's main PID is the daemon itself (env and the shim exec): SIGTERM reaches node, not a shell.
  t.is(s.pid, proc.child.pid!);

  // The journal: debug lines without debug's own date (DEBUG_HIDE_DATE), from the round namespace.
  await waitFor('berkeleyd:round lines on stderr', async () => (/^berkeleyd:round round \d+\/\d+/m.test(proc.stderr) ? true : undefined), 20 * g.intervalMs);
  t.regex(proc.stderr, /^berkeleyd:net joined /m);
  t.notRegex(proc.stderr, STACK_LINE);

  // systemctl stop: SIGTERM to the main process.
  t.true(await proc.signalAndWait('SIGTERM', 3000), 'exits within 3 s of SIGTERM');
  t.is(proc.code, 0, `exit ${proc.code ?? proc.signal}`);
  t.false(existsSync(socket), 'control socket removed');
  t.regex(proc.stderr, /SIGTERM, leaving the group/);
});
