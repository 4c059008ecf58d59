#!/usr/bin/env node
/**
 * berkeleyd: the command line. Thin: parse, validate, call the library, format.
 * Bad usage exits with status 2 and a message naming the option; never a stack trace.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { UsageError } from './usage.js';

const program = buildProgram();

// An empty BERKELEYD_* variable (KEY= in an environment file) counts as not set.
for (const [k, v] of Object.entries(process.env)) if (k.startsWith('BERKELEYD_') && v === '') delete process.env[k];

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof UsageError) {
    // <3>: an error for journald (`journalctl -p err`), where the unit then stops (RestartPreventExitStatus=2).
    process.stderr.write(`${process.env.JOURNAL_STREAM ? '<3>' : ''}berkeleyd: error: ${err.message}\n`);
    process.exitCode = 2;
  } else if (err instanceof CommanderError) {
    // commander has printed its message; help and --version are not errors.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`berkeleyd: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
