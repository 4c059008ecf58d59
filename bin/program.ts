/**
 * The command tree, without parsing anything: bin/berkeleyd.ts runs it, and
 * scripts/ generates the man page and the shell completion from it, so that
 * neither can drift from --help.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { demoCommand } from './demo.js';
import { keygenCommand } from './keygen.js';
import { runCommand } from './run.js';
import { simulateCommand } from './simulate.js';
import { nowCommand, statusCommand } from './status.js';

export const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; description: string };

export function buildProgram(): Command {
  const program = new Command('berkeleyd')
    .description('Keeps the clocks of LAN hosts in agreement with the Berkeley algorithm over UDP multicast.\nDebug logs: DEBUG=berkeleyd:* (namespaces round, wire, clock, election, net, control).')
    .version(pkg.version)
    .exitOverride();
  for (const c of [runCommand(), demoCommand(), simulateCommand(), statusCommand(), nowCommand(), keygenCommand()]) {
    program.addCommand(c.exitOverride().showHelpAfterError('(run with --help for usage)'));
  }
  return program;
}
