#!/usr/bin/env node
/**
 * Writes the generated documentation into a directory:
 *   berkeleyd.8, berkeleyd.default.5   the man pages (scripts/man.ts, scripts/man-default.ts)
 *   berkeleyd.bash                     bash completion (scripts/completion.ts)
 * Usage: node dist/scripts/docs-gen.js OUTDIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bashCompletion } from './completion.js';
import { defaultsPage } from './man-default.js';
import { manPage } from './man.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: docs-gen OUTDIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'berkeleyd.8'), manPage());
writeFileSync(join(out, 'berkeleyd.default.5'), defaultsPage());
writeFileSync(join(out, 'berkeleyd.bash'), bashCompletion());
