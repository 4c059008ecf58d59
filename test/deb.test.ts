/**
 * The Debian package under a real systemd. In a fresh clone, with no network
 * (npm ci from npm's cache), the README's build block makes the .deb, and a
 * second build with a higher version; lintian finds no error. In a Debian
 * container (systemd-nspawn -b) with no network, as an administrator would:
 * the README's `apt install`, the service active with a virtual clock (a
 * container), `systemctl status`, `berkeleyd status` and `man berkeleyd`; an
 * edited /etc/default/berkeleyd kept across an upgrade; `apt remove` stops
 * the service; `apt purge` leaves no file of the package. The nodejs
 * dependency is met by a stand-in .deb holding this machine's node (see
 * test/helpers/deb.ts). Logs each step's time, and the time from `apt
 * install` to the first SYNC.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusJson } from '../lib/daemon/status.js';
import { atExit, blockAfter, Container, containerSkipReason, run } from './helpers/container.js';
import { cleanNpmEnv, debField, debSkipReason, nodejsStandIn, offline } from './helpers/deb.js';
import { ROOT } from './helpers/group.js';

const skip = containerSkipReason() ?? debSkipReason();
const maybe = skip ? test.skip : test.serial;

maybe(`the .deb: built offline, lintian, apt install, upgrade, remove and purge under systemd${skip ? ` (skipped: ${skip})` : ''}`, async (t) => {
  t.timeout(300_000);
  const started = Date.now();
  const step = (what: string): void => t.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  const work = mkdtempSync(join(tmpdir(), 'berkeleyd-deb-'));
  const clone = join(work, 'clone');
  const debs = join(work, 'debs');
  mkdirSync(join(debs, 'first'), { recursive: true });
  mkdirSync(join(debs, 'second'));
  const c = new Container(`bkdd${randomBytes(2).toString('hex')}`, { hostNode: false, binds: [[debs, '/mnt/debs']] });
  const dropWork = atExit(() => rmSync(work, { recursive: true, force: true }));
  t.teardown(async () => {
    await c.stop();
    rmSync(work, { recursive: true, force: true });
    dropWork();
  });

  // 1. The README's build block, verbatim, in a fresh clone, with no network: npm ci from npm's cache.
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const build = blockAfter(readme, 'test/deb.test.ts runs this block verbatim in a fresh clone');
  const install = blockAfter(readme, 'test/deb.test.ts runs this block verbatim, as root, in a Debian container');
  t.is((await run('git', ['clone', '-q', ROOT, clone])).code, 0);
  const env = cleanNpmEnv({ npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' });
  let built = await offline(build, clone, env);
  if (built.code !== 0 && /ENOTCACHED/.test(built.stderr)) {
    // npm's cache lacks a module: npm ci with the network, and only the package build offline.
    t.log('npm cache incomplete: npm ci with the network, npm run deb without');
    t.is((await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: clone, env: cleanNpmEnv(), timeoutMs: 180_000 })).code, 0);
    built = await offline('npm run deb', clone, env);
  }
  t.is(built.code, 0, `build block:\n${build}\n${built.stdout}\n${built.stderr}`);
  const first = readdirSync(clone).find((f) => /^berkeleyd_.*\.deb$/.test(f))!;
  t.truthy(first, 'a .deb in the clone');
  copyFileSync(join(clone, first), join(debs, 'first', first));
  step('README build block (git clone, npm ci from the cache, npm run deb) with no network');
  const again = await offline('bash pkg/deb/build.sh', clone, { ...env, BERKELEYD_DEB_VERSION_SUFFIX: '+test2', BERKELEYD_DEB_OUTDIR: join(debs, 'second') });
  t.is(again.code, 0, again.stderr);
  const second = readdirSync(join(debs, 'second'))[0]!;
  const deb = join(debs, 'first', first);
  const installedKiB = Number(debField(deb, 'Installed-Size'));
  t.true(installedKiB <= 10 * 1024, `Installed-Size ${installedKiB} KiB`);
  t.regex(debField(deb, 'Depends'), /^nodejs \(>= 20\)/);
  step(`second build (npm run deb alone), version suffix +test2: ${first} (${(statSync(deb).size / 1e6).toFixed(2)} MB, Installed-Size ${installedKiB} KiB) and ${second}`);

  // 2. lintian: no error (warnings and notes are logged; docs/packaging.md explains each).
  const lint = await run('lintian', ['--display-info', deb], { timeoutMs: 120_000 });
  if (lint.code === null && /ENOENT/.test(lint.stderr)) t.log('lintian not found (apt-get install lintian): not run');
  else {
    const tags = lint.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l));
    t.deepEqual(tags.filter((l) => l.startsWith('E: ')), [], lint.stdout);
    step(`lintian: ${tags.filter((l) => l.startsWith('E: ')).length} errors, ${tags.filter((l) => l.startsWith('W: ')).length} warnings${tags.length ? `\n${tags.join('\n')}` : ''}`);
  }

  // 3. A container with no network, and nodejs (>= 20) from the stand-in .deb.
  nodejsStandIn(debs);
  await c.boot();
  t.is((await c.ok('ip -4 route; ip -4 -o addr show scope global')).trim(), '', 'no route and no address: offline');
  await c.ok('DEBIAN_FRONTEND=noninteractive apt-get install -y -q /mnt/debs/nodejs_*.deb >/dev/null 2>&1 && node --version');
  // To time the first SYNC, the election's debug line (the master sends SYNC as it takes office) goes to the journal.
  await c.ok(`mkdir -p /etc/systemd/system/berkeleyd.service.d && printf '[Service]\\nEnvironment=DEBUG=berkeleyd:election\\n' > /etc/systemd/system/berkeleyd.service.d/90-test-debug.conf`);
  step(`container booted, nodejs ${(await c.ok('dpkg-query -W -f="\\${Version}" nodejs')).trim()} installed from the stand-in`);

  // 4. The README's install block, verbatim.
  const t0 = Number(await c.ok('date +%s%N')) / 1e6;
  const inst = await c.sh(`set -e; cd /mnt/debs/first\n${install}`, 120_000);
  t.is(inst.code, 0, `install block:\n${install}\n${inst.stdout}\n${inst.stderr}`);
  const installMs = Number(await c.ok('date +%s%N')) / 1e6 - t0;
  let syncAt = 0;
  for (let i = 0; i < 100 && !syncAt; i++) {
    const line = (await c.ok("journalctl -u berkeleyd -o short-unix --no-pager | grep -m1 'master in epoch' || true")).trim();
    if (line) syncAt = Number(line.split(' ')[0]) * 1000;
    else await new Promise((r) => setTimeout(r, 200));
  }
  t.true(syncAt > 0, 'the daemon became master and sent SYNC');
  step(`apt install: ${(installMs / 1000).toFixed(1)} s; first SYNC sent ${((syncAt - t0) / 1000).toFixed(1)} s after apt install started`);

  t.is((await c.ok('systemctl is-enabled berkeleyd; systemctl is-active berkeleyd')).trim(), 'enabled\nactive');
  const sysStatus = await c.ok('systemctl status berkeleyd --no-pager');
  t.regex(sysStatus, /Active: active \(running\)/);
  t.regex(sysStatus, /Docs: man:berkeleyd\(8\)/);
  const status = JSON.parse(await c.ok('berkeleyd status --json')) as StatusJson;
  t.like(status, { nodeId: 'berkeleyd-test', role: 'master', clock: { kind: 'virtual' } });
  t.regex(await c.ok('berkeleyd status'), /^Node ID\s+: berkeleyd-test$/m, 'berkeleyd status finds the service\'s socket by itself');
  t.regex(await c.ok('test -e /etc/systemd/system/berkeleyd.service.d/50-container-virtual-clock.conf && echo yes'), /yes/);
  t.regex(await c.ok('MANWIDTH=80 man berkeleyd 2>&1 | head -5'), /berkeleyd - keep the clocks of LAN hosts/);
  t.regex(await c.ok('MANWIDTH=80 man 5 berkeleyd.default 2>&1 | head -5'), /settings of the berkeleyd service/);
  t.is((await c.ok('berkeleyd --version')).trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  // Now that the man pages are installed, systemd's own check of the unit (Documentation= included).
  await c.ok('systemd-analyze verify /lib/systemd/system/berkeleyd.service');
  await c.ok('dpkg -L berkeleyd > /root/berkeleyd.files');
  t.is((await c.ok("dpkg-query -W -f='${Conffiles}' berkeleyd")).trim().split(' ')[0], '/etc/default/berkeleyd');
  const du = (await c.ok('du -sk --apparent-size /usr/lib/berkeleyd | cut -f1')).trim();
  step(`service active (virtual clock in a container), systemctl status, berkeleyd status, man berkeleyd; /usr/lib/berkeleyd ${du} KiB`);

  // 5. An edited /etc/default/berkeleyd survives an upgrade; the service runs the new build.
  await c.ok("sed -i 's/^#BERKELEYD_INTERVAL=1s$/BERKELEYD_INTERVAL=500ms/' /etc/default/berkeleyd && echo '# edited by the administrator' >> /etc/default/berkeleyd && systemctl restart berkeleyd");
  t.is((JSON.parse(await c.ok('berkeleyd status --json')) as StatusJson).config.intervalMs, 500);
  const pid0 = (await c.ok('systemctl show -P MainPID berkeleyd')).trim();
  await c.ok(`cd /mnt/debs/second && DEBIAN_FRONTEND=noninteractive apt install -y ./${second}`, 120_000);
  t.is((await c.ok("dpkg-query -W -f='${Version}' berkeleyd")).trim(), second.split('_')[1]);
  t.regex(await c.ok('cat /etc/default/berkeleyd'), /^BERKELEYD_INTERVAL=500ms$[\s\S]*# edited by the administrator/m);
  t.is((await c.ok('ls /etc/default/ | grep -c dpkg || true')).trim(), '0', 'no .dpkg-dist or .dpkg-old beside it');
  t.is((await c.ok('systemctl is-active berkeleyd')).trim(), 'active');
  t.not((await c.ok('systemctl show -P MainPID berkeleyd')).trim(), pid0, 'restarted: the new build runs');
  t.is((JSON.parse(await c.ok('berkeleyd status --json')) as StatusJson).config.intervalMs, 500);
  step(`upgraded to ${second}: the edited defaults file kept, the service restarted with it`);

  // 6. apt remove stops the service; apt purge leaves nothing of the package.
  await c.ok('DEBIAN_FRONTEND=noninteractive apt-get remove -y -q berkeleyd', 120_000);
  t.is((await c.ok('systemctl is-active berkeleyd || true')).trim(), 'inactive');
  t.is((await c.ok('ps -eo args | grep -c "[b]erkeleyd run" || true')).trim(), '0');
  t.regex(await c.ok('ls /etc/default/berkeleyd'), /berkeleyd/, 'remove keeps the configuration');
  step('apt remove: service stopped, configuration kept');
  await c.ok('rm /etc/systemd/system/berkeleyd.service.d/90-test-debug.conf');
  await c.ok('DEBIAN_FRONTEND=noninteractive apt-get purge -y -q berkeleyd', 120_000);
  // Every path of the package's file list is gone, but directories other packages own too.
  const left = await c.ok(`while read -r p; do
      [ "$p" = /. ] && continue
      { [ -e "$p" ] || [ -L "$p" ]; } || continue
      [ -d "$p" ] && dpkg -S "$p" >/dev/null 2>&1 && continue
      echo "$p"
    done < /root/berkeleyd.files
    for p in /var/lib/private/berkeleyd /var/lib/berkeleyd /run/berkeleyd /etc/systemd/system/berkeleyd.service.d /etc/systemd/system/multi-user.target.wants/berkeleyd.service; do
      if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi
    done`);
  t.is(left.trim(), '', `left after purge:\n${left}`);
  t.regex(await c.ok('dpkg -s berkeleyd 2>&1 || true'), /is not installed/);
  step(`apt purge: none of the ${(await c.ok('wc -l < /root/berkeleyd.files')).trim()} paths of the package left, nor its state, runtime or drop-in directories`);
  t.log(`deb test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
