/**
 * `berkeleyd keygen`: write a key file for --key-file (mode 0600).
 */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { generateKeyFile } from '../lib/wire/keys.js';
import { int } from './parse.js';
import { UsageError } from './usage.js';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description('write a new HMAC-SHA256 key file for --key-file (to standard output, or to a file created with mode 0600)')
    .argument('[file]', 'file to create (refuses to overwrite); omit for standard output')
    .option('--id <n>', 'key id, 1 to 255', int(1, 255, 'key id'), 1)
    .action((file: string | undefined, o: { id: number }) => {
      const text = generateKeyFile(o.id);
      if (!file) return void process.stdout.write(text);
      try {
        writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new UsageError(`cannot create ${file}: ${e.code === 'EEXIST' ? 'it exists (remove it first, or choose another name)' : e.message}`);
      }
      process.stderr.write(`wrote key ${o.id} to ${file} (mode 0600); copy it to every host of the group\n`);
    });
}
