/**
 * For test/deb.test.ts: building the package in a fresh clone with no
 * network, and a stand-in for the nodejs package that a container with no
 * network can install.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOTFS, run, type ShResult } from './container.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why the package test cannot run here (beyond containerSkipReason), or null. */
export function debSkipReason(): string | null {
  for (const [tool, pkg] of [['dpkg-deb', 'dpkg'], ['dpkg-shlibdeps', 'dpkg-dev'], ['unshare', 'util-linux']]) if (!has(tool!)) return `${tool} not found (apt-get install ${pkg})`;
  if (!existsSync(`${ROOTFS}/usr/bin/man`)) return `the container rootfs at ${ROOTFS} has no man-db (run .ci/container-rootfs: it rebuilds a rootfs whose package list changed)`;
  return null;
}

/** The environment of this process without npm's own variables (a test run under `npm test` has many). */
export function cleanNpmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** `sh -ec script` in dir, niced, in a network namespace of its own: no network at all. */
export function offline(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<ShResult> {
  return run('nice', ['-n', '19', 'unshare', '--net', '--', 'sh', '-ec', script], { cwd, env, timeoutMs });
}

/**
 * A nodejs .deb holding this machine's own node binary (version >= 20), to
 * satisfy the package's `Depends: nodejs (>= 20)` in a container with no
 * network: the real packages (Debian trixie's, NodeSource's) cannot be
 * fetched there, and this machine's node is not from a .deb we could copy.
 */
export function nodejsStandIn(dir: string): string {
  const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
  const version = `${process.versions.node}-0berkeleydtest1`;
  const root = join(dir, 'nodejs-root');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'DEBIAN'));
  copyFileSync(process.execPath, join(root, 'usr/bin/node'));
  chmodSync(join(root, 'usr/bin/node'), 0o755);
  writeFileSync(
    join(root, 'DEBIAN/control'),
    [
      'Package: nodejs',
      `Version: ${version}`,
      `Architecture: ${arch}`,
      'Maintainer: berkeleyd tests <root@localhost>',
      'Depends: libc6, libstdc++6, libgcc-s1',
      'Description: stand-in for nodejs in berkeleyd\'s package test',
      ' This machine\'s node binary, packaged so that a container with no network can',
      ' satisfy berkeleyd\'s dependency on nodejs (>= 20).',
      '',
    ].join('\n'),
  );
  const deb = join(dir, `nodejs_${version}_${arch}.deb`);
  // Uncompressed: packing 100 MB with xz would take most of a minute.
  const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', root, deb], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dpkg-deb (nodejs stand-in): ${r.stderr}`);
  rmSync(root, { recursive: true, force: true });
  return deb;
}

/** A field of a .deb's control file. */
export const debField = (deb: string, field: string): string => spawnSync('dpkg-deb', ['-f', deb, field], { encoding: 'utf8' }).stdout.trim();
