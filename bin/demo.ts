/**
 * `berkeleyd demo`: a group of real daemons on loopback, converging.
 */
import { Command, Option } from 'commander';
import { runDemo } from '../lib/daemon/demo.js';
import { int, positiveDuration, ppm, duration } from './parse.js';
import { UsageError } from './usage.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('start a group of real daemons on loopback multicast with random clocks seconds apart, show the rounds converge, then exit')
    .option('--nodes <n>', 'number of daemons (n0 is the master)', int(2, 32, 'nodes'), 4)
    .option('--rounds <n>', 'rounds to show', int(1, 10000, 'rounds'), 10)
    .addOption(new Option('--interval <duration>', 'time between rounds (rounds 1-4 run at a quarter of it, 5-12 at half: the fast start)').argParser(positiveDuration).default(1_000_000_000n, '1s'))
    .addOption(new Option('--offset-spread <duration>', 'starting clocks are drawn within ± this').argParser(duration).default(3_000_000_000n, '3s'))
    .option('--drift <ppm>', 'each clock drifts by a random rate within ± this', ppm, 100)
    .action(async (o) => {
      if (o.interval < 40_000_000n) throw new UsageError('--interval must be at least 40ms');
      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await runDemo({ nodes: o.nodes, rounds: o.rounds, intervalNs: o.interval, offsetSpreadNs: o.offsetSpread, driftPpm: o.drift }, (line) => process.stdout.write(line + '\n'), abort.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
