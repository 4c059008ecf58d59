/**
 * The unit under a real systemd: two Debian containers (systemd-nspawn -b)
 * on a bridge. In a fresh clone of this repository the README's build block
 * runs verbatim; in container A, cut off from any network, the README's
 * install block runs verbatim. Then, as an administrator would: both hosts
 * configured and restarted, a group of two with a key file, `systemctl
 * reload` rotating the keys, a bad key file refused, a SIGKILLed daemon
 * restarted, `systemctl stop` leaving nothing behind, and a configuration
 * error failing the unit instead of looping.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusJson } from '../lib/daemon/status.js';
import { atExit, blockAfter, Bridge, Container, containerSkipReason, run } from './helpers/container.js';
import { ROOT } from './helpers/group.js';

const skip = containerSkipReason();
const maybe = skip ? test.skip : test.serial;

const keyLine = (id: number, key: Buffer): string => `${id} HMAC-SHA256 HEX:${key.toString('hex')}`;

maybe(`the README's service blocks, reload, restart, stop and a group of two under systemd in Debian containers${skip ? ` (skipped: ${skip})` : ''}`, async (t) => {
  t.timeout(300_000);
  const started = Date.now();
  const step = (what: string): void => t.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  const work = mkdtempSync(join(tmpdir(), 'berkeleyd-container-'));
  const bridge = new Bridge();
  const suffix = randomBytes(2).toString('hex');
  const a = new Container(`bkda${suffix}`, { bridge: bridge.name, binds: [[join(work, 'clone'), '/mnt/pkg']] });
  const b = new Container(`bkdb${suffix}`, { bridge: bridge.name, binds: [[join(work, 'clone'), '/mnt/pkg']] });
  const dropWork = atExit(() => rmSync(work, { recursive: true, force: true }));
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await bridge.remove();
    rmSync(work, { recursive: true, force: true });
    dropWork();
  });

  // 1. The build block, verbatim, in a fresh clone (of this checkout's HEAD).
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const build = blockAfter(readme, 'test/container.test.ts runs this block verbatim in a fresh clone');
  const install = blockAfter(readme, 'test/container.test.ts runs this block verbatim, as root, in a Debian container');
  const clone = await run('git', ['clone', '-q', ROOT, join(work, 'clone')]);
  t.is(clone.code, 0, clone.stderr);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  // Niced: npm ci, tsc and packing 90 MB must not starve the timing-sensitive tests that ava runs beside this one.
  const built = await run('nice', ['-n', '19', 'sh', '-ec', build], { cwd: join(work, 'clone'), env, timeoutMs: 240_000 });
  t.is(built.code, 0, `build block:\n${build}\n${built.stdout}\n${built.stderr}`);
  step('fresh clone built and packed by the README build block');

  // 2. Two containers on a bridge.
  await bridge.create();
  await Promise.all([a.boot(), b.boot()]);
  step(`containers ${a.name} and ${b.name} booted (systemd ${(await a.ok('systemctl --version')).split(/\s/)[1]})`);

  // 3. The install block, verbatim, on both hosts; on A with no network at all (its link is down, no route).
  t.is((await a.ok('ip -4 route; ip -4 -o addr show scope global')).trim(), '', 'A has no route and no address: offline');
  const results = await Promise.all([a, b].map((c) => c.sh(`set -e; cp /mnt/pkg/berkeleyd-*.tgz /root/; cd /root\n${install}`, 120_000)));
  for (const [i, c] of [a, b].entries()) {
    const r = results[i]!;
    t.is(r.code, 0, `install block on ${c.name}:\n${r.stdout}\n${r.stderr}`);
    if (c === a) {
      t.regex(r.stdout, /Active: active \(running\)/);
      t.regex(r.stdout, /^Node ID\s+: berkeleyd-test$/m, 'berkeleyd status through /run/berkeleyd answered right after enable --now');
      // journald: the warning, tagged berkeleyd, with a warning priority.
      t.regex(await a.ok('journalctl -t berkeleyd -p warning --no-pager -o cat'), /warning: no IPv4 interface besides loopback/);
    }
  }
  // ClockBound's default path leads into the runtime directory (BERKELEYD_CLOCKBOUND=auto); with the container's virtual clock nothing is written there, and the journal says why.
  t.is((await a.ok('readlink /run/clockbound')).trim(), 'berkeleyd');
  t.regex(await a.ok('journalctl -t berkeleyd --no-pager -o cat'), /--clockbound auto: not publishing the error bound: .*virtual clock/);
  t.is((await a.ok('test -x /usr/bin/berkeleyd && readlink -f /usr/bin/berkeleyd')).trim(), '/usr/lib/node_modules/berkeleyd/dist/bin/berkeleyd.js');
  const installed = (await a.ok('cd /usr/lib/node_modules/berkeleyd && ls; ls dist; ls node_modules')).split(/\s+/);
  t.false(installed.includes('test') || installed.includes('bench') || installed.includes('typescript') || installed.includes('ava'), `installed: ${installed}`);
  step('README install block ran on both (A offline)');

  // 4. Configure a group of two, as the admin edits /etc/default/berkeleyd; keys in /etc/berkeleyd/key.
  //    The containers share this machine's clock: the shipped default (the system clock) is switched to the
  //    virtual clock, and the containers hold no CAP_SYS_TIME anyway (see Container.boot).
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const net = `10.77.${1 + (parseInt(suffix, 16) % 250)}`;
  const configure = async (c: Container, host: number, extra: string): Promise<void> => {
    await c.ok(`ip link set host0 up && ip addr add ${net}.${host}/24 dev host0 &&
      mkdir -p /etc/berkeleyd && printf '%s\\n' '${keyLine(1, k1)}' > /etc/berkeleyd/key && chmod 600 /etc/berkeleyd/key &&
      cat >> /etc/default/berkeleyd <<'EOF'
BERKELEYD_CLOCK=virtual
BERKELEYD_INTERFACE=host0
BERKELEYD_INTERVAL=250ms
BERKELEYD_KEY_FILE=/run/berkeleyd/key
BERKELEYD_METRICS=127.0.0.1:7738
${extra}
EOF
      systemctl restart berkeleyd`);
  };
  await configure(b, 2, 'BERKELEYD_NODE_ID=b');
  await configure(a, 1, 'BERKELEYD_NODE_ID=a\nBERKELEYD_MASTER=yes\nDEBUG=berkeleyd:round');
  const status = async (c: Container): Promise<StatusJson> => JSON.parse(await c.ok('berkeleyd status --json --control /run/berkeleyd/berkeleyd.sock')) as StatusJson;
  const until = async (what: string, probe: () => Promise<boolean>, ms = 30_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!(await probe().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  await until('a group of two', async () => {
    const [sa, sb] = [await status(a), await status(b)];
    return sa.members.some((m) => m.nodeId === 'b') && sb.masterId === 'a' && sb.synced;
  });
  const sa0 = await status(a);
  t.like(sa0.config, { authenticated: true, keyIds: [1], interface: `${net}.1`, metrics: '127.0.0.1:7738' });
  const scrape = await a.ok(`node -e "fetch('http://127.0.0.1:7738/metrics').then(r => r.text()).then(t => process.stdout.write(t))"`);
  t.regex(scrape, /^berkeleyd_members 1$/m);
  // One timestamp per line: the journal's, not debug's date as well.
  const debugLine = (await a.ok('journalctl -t berkeleyd -o cat --no-pager | grep -m1 "berkeleyd:round" || true')).trim();
  t.regex(debugLine, /^berkeleyd:round /, 'debug lines carry no date of their own under journald');
  step('group of two formed over the bridge, authenticated');

  // 5. systemctl reload rotates the keys: new key second, then first, then alone.
  const rotate = async (lines: string[], expect: number[]): Promise<void> => {
    for (const c of [a, b]) await c.ok(`printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')} > /etc/berkeleyd/key && systemctl reload berkeleyd`);
    await until(`keys ${expect}`, async () => (await status(a)).config.keyIds.join() === expect.join() && (await status(b)).config.keyIds.join() === expect.join(), 10_000);
    const r0 = (await status(a)).round;
    await until('2 more rounds', async () => (await status(a)).round >= r0 + 2, 10_000);
  };
  const rb0 = await status(b);
  await rotate([keyLine(1, k1), keyLine(2, k2)], [1, 2]);
  await rotate([keyLine(2, k2), keyLine(1, k1)], [2, 1]);
  await rotate([keyLine(2, k2)], [2]);
  const [sa1, sb1] = [await status(a), await status(b)];
  t.deepEqual([sa1.counters.rejected, sb1.counters.rejected], [{}, {}], 'no datagram rejected through the rotation');
  t.is(sb1.epoch, rb0.epoch, 'no election');
  t.true(sb1.counters.corrections > rb0.counters.corrections + 4);
  t.regex(await b.ok('journalctl -t berkeleyd --no-pager -o cat'), /reloaded: keys 2 \(signing with 2\)/);
  step(`keys rotated by systemctl reload: rejected ${JSON.stringify(sb1.counters.rejected)}, B corrected ${sb1.counters.corrections - rb0.counters.corrections} times`);

  // A bad key file: the reload is refused whole, with a warning; the keys in force stay.
  await b.ok(`echo '3 HMAC-SHA256 HEX:00' > /etc/berkeleyd/key && systemctl reload berkeleyd`);
  await until('the refusal', async () => (await status(b)).counters.reloads.refused === 1, 10_000);
  t.regex(await b.ok('journalctl -t berkeleyd -p warning --no-pager -o cat'), /reload refused, the running configuration stays in force: --key-file: \/run\/berkeleyd\/key/);
  t.deepEqual((await status(b)).config.keyIds, [2]);
  await b.ok(`printf '%s\\n' '${keyLine(2, k2)}' > /etc/berkeleyd/key`);

  // 6. A SIGKILLed daemon is restarted.
  const pid0 = (await b.ok('systemctl show -P MainPID berkeleyd')).trim();
  await b.ok('kill -KILL "$(systemctl show -P MainPID berkeleyd)"');
  await until('a restart', async () => {
    const pid = (await b.ok('systemctl show -P MainPID berkeleyd')).trim();
    return pid !== '0' && pid !== pid0 && (await b.ok('systemctl is-active berkeleyd || true')).trim() === 'active';
  });
  t.is((await b.ok('systemctl show -P NRestarts berkeleyd')).trim(), '1');
  await until('B back in the group', async () => (await status(b)).masterId === 'a');
  step('SIGKILLed daemon restarted by systemd');

  // 7. systemctl stop leaves nothing behind; the master hears the LEAVE.
  await b.ok('systemctl stop berkeleyd');
  t.is((await b.ok('systemctl show -P ExecMainStatus berkeleyd')).trim(), '0');
  t.is((await b.ok('ls /run/berkeleyd 2>&1 || true')).trim(), 'ls: cannot access \'/run/berkeleyd\': No such file or directory');
  t.is((await b.ok('ls -d /run/clockbound 2>&1 || true')).trim(), 'ls: cannot access \'/run/clockbound\': No such file or directory', 'the link to it too');
  t.is((await b.ok('ps -eo args | grep -c "[b]erkeleyd run" || true')).trim(), '0');
  await until('the master drops b', async () => (await status(a)).members.length === 0, 10_000);
  step('stop: exit 0, runtime directory and process gone');

  // 8. A configuration error: the unit fails once, with a clear line, and does not loop.
  await b.ok(`echo BERKELEYD_PORT=99999 >> /etc/default/berkeleyd`);
  await b.sh('systemctl start berkeleyd');
  await new Promise((r) => setTimeout(r, 4500)); // more than twice RestartSec=2s
  t.is((await b.ok('systemctl is-failed berkeleyd || true')).trim(), 'failed');
  t.is((await b.ok('systemctl show -P NRestarts berkeleyd')).trim(), '0');
  t.is((await b.ok('systemctl show -P ExecMainStatus berkeleyd')).trim(), '2');
  t.regex(await b.ok('journalctl -t berkeleyd --no-pager -o cat -n 5'), /--port.*99999/);
  step('configuration error: failed, exit 2, no restart');
  t.log(`container test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
