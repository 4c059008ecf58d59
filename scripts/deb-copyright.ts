#!/usr/bin/env node
/**
 * debian/copyright (machine-readable format 1.0) for the .deb: berkeleyd's
 * own stanza, then one stanza per bundled production dependency, with its
 * copyright lines taken from its own license file, and the license texts.
 * Usage: node dist/scripts/deb-copyright.js MODULE_DIR... > copyright
 * (MODULE_DIR as installed: usr/lib/berkeleyd/node_modules/NAME, run from the package root).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const EXPAT = `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`;

/** SPDX (package.json) to the names Debian's copyright format uses. */
const DEBIAN_NAME: Record<string, string> = { MIT: 'Expat', 'Apache-2.0': 'Apache-2.0' };

/** A DEP-5 field body: continuation lines indented, empty lines as " .". */
const body = (text: string): string => text.trim().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');

function holders(dir: string, pkg: { name: string; author?: string | { name: string } }): string[] {
  const file = readdirSync(dir).find((f) => /^licen[cs]e(\.md|\.txt)?$/i.test(f));
  const text = file ? readFileSync(join(dir, file), 'utf8') : '';
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => /^copyright\s*(\(c\)|©|\d)/i.test(l));
  if (lines.length) return lines.map((l) => l.replace(/^copyright\s*(\(c\)|©)?\s*(by\s+)?/i, '').replace(/\s+/g, ' '));
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  return [author ?? `the ${pkg.name} authors`];
}

export function copyright(header: string, moduleDirs: string[]): string {
  const used = new Set<string>();
  const stanzas = moduleDirs.map((dir) => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license: string; author?: string | { name: string } };
    const license = DEBIAN_NAME[pkg.license];
    if (!license) throw new Error(`${pkg.name}: license ${pkg.license} has no text here; add it to scripts/deb-copyright.ts`);
    used.add(license);
    return `Files: ${dir}/*\nCopyright: ${holders(dir, pkg).join('\n ')}\nComment: ${pkg.name} ${pkg.version}, bundled from npm\nLicense: ${license}`;
  });
  used.add('Expat'); // berkeleyd's own
  const texts = [...used].sort().map((l) =>
    l === 'Expat'
      ? `License: Expat\n${body(EXPAT)}`
      : `License: Apache-2.0\n On Debian systems, the full text of the Apache License, Version 2.0 is in\n /usr/share/common-licenses/Apache-2.0.`,
  );
  return [header.trim(), ...stanzas, ...texts].join('\n\n') + '\n';
}

if (process.argv[1]?.endsWith('deb-copyright.js')) {
  const header = readFileSync(new URL('../../pkg/deb/copyright', import.meta.url), 'utf8');
  const dirs = process.argv.slice(2).filter((d) => existsSync(join(d, 'package.json')));
  process.stdout.write(copyright(header, dirs));
}
