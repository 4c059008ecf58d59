#!/usr/bin/env node
/**
 * berkeleyd: the command line. Thin: parse, validate, call the library, format.
 * Bad usage exits with status 2 and a message naming the option; never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { simulateCommand } from './simulate.js';

const program = new Command('berkeleyd')
  .description('keeps the clocks of LAN hosts in agreement with the Berkeley algorithm over UDP multicast')
  .version(process.env.npm_package_version ?? '0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program.addCommand(simulateCommand());
for (const c of program.commands) c.exitOverride().showHelpAfterError('(run with --help for usage)');

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`berkeleyd: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
