/**
 * `berkeleyd simulate`: a group in virtual time under chosen conditions.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './usage.js';
import { formatReport, summarize } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS, type SimOptions } from '../lib/sim/simulator.js';
import { durationList, fraction, int, positiveDuration, ppm, duration } from './parse.js';

export function simulateCommand(): Command {
  const d = SIM_DEFAULTS;
  return new Command('simulate')
    .description('run a group of nodes in virtual time (real protocol engine, simulated clocks and network) and report its precision')
    .option('--nodes <n>', 'number of nodes, named n0, n1, ...', int(1, 10000, 'nodes'), d.nodes)
    .option('--rounds <n>', 'rounds to run', int(1, 100000, 'rounds'), d.rounds)
    .addOption(new Option('--interval <duration>', 'round interval').argParser(positiveDuration).default(d.intervalNs, '1s'))
    .option('--collect-timeout <duration>', 'collection timeout after SYNC (default: half the interval)', positiveDuration)
    .option('--offsets <list>', 'starting offsets of n0, n1, ... in that order, e.g. -90ms,-60ms,-30ms,0 (others: random within ±--offset-spread)', durationList)
    .addOption(new Option('--offset-spread <duration>', 'range of random starting offsets').argParser(duration).default(d.offsetSpreadNs, '1s'))
    .option('--master <node>', 'pin this node as master (default n0); "none": the nodes elect one', d.master ?? 'none')
    .option('--drift <ppm>', 'each node drifts by a random rate within ±this', ppm, d.driftPpm)
    .addOption(new Option('--delay <duration>', 'one-way network delay').argParser(duration).default(d.delayNs, '100us'))
    .addOption(new Option('--jitter <duration>', 'mean of the exponential jitter added to each datagram').argParser(duration).default(d.jitterNs, '10us'))
    .addOption(new Option('--asymmetry <duration>', 'towards-master delay minus from-master delay').argParser(duration).default(d.asymmetryNs, '0'))
    .option('--loss <fraction>', 'probability a datagram is lost (0.2 or 20%)', fraction, d.loss)
    .addOption(new Option('--tolerance <duration>', 'fault-tolerant average keeps clocks within this of the median; also the convergence criterion').argParser(duration).default(d.toleranceNs, '20ms'))
    .option('--probes <n>', 'exchanges per burst', int(1, 64, 'probes'), d.probes)
    .option('--max-slew <ppm>', 'largest slew rate', ppm, d.maxSlewPpm)
    .addOption(new Option('--step-threshold <duration>', 'step corrections larger than this when stepping is allowed').argParser(duration).default(d.stepThresholdNs, '100us'))
    .option('--crash-master <round>', 'crash the master at the start of this round (use with --master none to see an election)', int(1, 100000, 'crash round'))
    .addOption(new Option('--partition <spec>', 'cut the first K nodes off from the rest from the A-th to the B-th round completed in the group (by any master): K@A-B, e.g. 2@5-10').argParser(partitionSpec))
    .option('--seed <n>', 'seed of the random choices (same seed, same run)', int(0, 2 ** 32 - 1, 'seed'), d.seed)
    .option('--json', 'print one JSON object as the last line of standard output')
    .option('--quiet', 'no per-round report: only the heading and the summary')
    .action((opts) => {
      const nodes: number = opts.nodes;
      const master: string | null = opts.master === 'none' ? null : opts.master;
      if (master !== null && !/^n\d+$/.test(master)) throw new UsageError(`--master: "${master}" is not a node name (n0 .. n${nodes - 1}, or none)`);
      if (master !== null && Number(master.slice(1)) >= nodes) throw new UsageError(`--master: there is no node ${master} among ${nodes} nodes (n0 .. n${nodes - 1})`);
      const offsets: bigint[] = opts.offsets ?? [];
      if (offsets.length > nodes) throw new UsageError(`--offsets: ${offsets.length} offsets given for ${nodes} nodes`);
      const collect: bigint = opts.collectTimeout ?? opts.interval / 2n;
      if (collect >= opts.interval) throw new UsageError('--collect-timeout must be shorter than --interval');
      const o: SimOptions = {
        ...SIM_DEFAULTS,
        nodes,
        rounds: opts.rounds,
        intervalNs: opts.interval,
        collectTimeoutNs: collect,
        offsetsNs: offsets,
        offsetSpreadNs: opts.offsetSpread,
        master,
        driftPpm: opts.drift,
        delayNs: opts.delay,
        jitterNs: opts.jitter,
        asymmetryNs: opts.asymmetry,
        loss: opts.loss,
        toleranceNs: opts.tolerance,
        probes: opts.probes,
        maxSlewPpm: opts.maxSlew,
        stepThresholdNs: opts.stepThreshold,
        crashMasterAtRound: opts.crashMaster ?? null,
        partition: opts.partition ?? null,
        seed: opts.seed,
      };
      const result = runSimulation(o);
      const summary = summarize(result);
      process.stdout.write(formatReport(result, summary, { rounds: !opts.quiet }) + '\n');
      if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
    });
}

function partitionSpec(text: string): SimOptions['partition'] {
  const m = /^(\d+)@(\d+)-(\d+)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a partition: expected K@A-B, e.g. 2@5-10`);
  const [size, fromRound, toRound] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (size < 1 || fromRound < 1 || toRound <= fromRound) throw new InvalidArgumentError(`"${text}": need K >= 1 and 1 <= A < B`);
  return { size, fromRound, toRound };
}
