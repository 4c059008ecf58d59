/**
 * `berkeleyd simulate`: a group in virtual time under chosen conditions.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './usage.js';
import { SIM_DEFAULTS, type Fault, type SimOptions } from '../lib/sim/simulator.js';
import { reportInWorker } from '../lib/sim/worker.js';
import { durationList, fraction, int, positiveDuration, ppm, duration, signedDuration } from './parse.js';

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
    .addOption(new Option('--tolerance <duration>', 'outer bound of the selection (a clock farther than this from the median never counts in the average); also the convergence criterion').argParser(duration).default(d.toleranceNs, '20ms'))
    .option('--probes <n>', 'exchanges per burst', int(1, 64, 'probes'), d.probes)
    .option('--max-slew <ppm>', 'largest slew rate', ppm, d.maxSlewPpm)
    .addOption(new Option('--step-threshold <duration>', 'step corrections larger than this when stepping is allowed').argParser(duration).default(d.stepThresholdNs, '100us'))
    .option('--crash-master <round>', 'crash the master at the start of this round (use with --master none to see an election)', int(1, 100000, 'crash round'))
    .addOption(new Option('--partition <spec>', 'cut the first K nodes off from the rest from the A-th to the B-th round completed in the group (by any master): K@A-B, e.g. 2@5-10').argParser(partitionSpec))
    .option('--fault <spec>', 'a fault of one node, repeatable: NODE:drift=PPM, NODE:jump=DURATION@ROUND, NODE:lie=DURATION, NODE:mute@ROUND (e.g. n3:drift=2000, n3:jump=5ms@20, n3:lie=3ms, n3:mute@10); the master too (n0:drift=2000: pinned, it serves the good clocks\' time in place of its own; elected, it steps down)', (v: string, prev: Fault[] = []) => [...prev, faultSpec(v)])
    .addOption(new Option('--receive-cost <duration>', 'model a busy receiver: each unicast datagram a node receives (on the master: every request and report) occupies it this long, one after another (a real master: about 13us; default 0, off)').argParser(duration))
    .addOption(new Option('--receive-queue <duration>', 'with --receive-cost: a datagram that would wait longer than this is dropped, as a full receive buffer drops it').argParser(positiveDuration).default(35_000_000n, '35ms'))
    .option('--seed <n>', 'seed of the random choices (same seed, same run)', int(0, 2 ** 32 - 1, 'seed'), d.seed)
    .option('--json', 'print one JSON object as the last line of standard output')
    .option('--quiet', 'no per-round report: only the heading and the summary')
    .action(async (opts) => {
      const nodes: number = opts.nodes;
      const master: string | null = opts.master === 'none' ? null : opts.master;
      if (master !== null && !/^n\d+$/.test(master)) throw new UsageError(`--master: "${master}" is not a node name (n0 .. n${nodes - 1}, or none)`);
      if (master !== null && Number(master.slice(1)) >= nodes) throw new UsageError(`--master: there is no node ${master} among ${nodes} nodes (n0 .. n${nodes - 1})`);
      const offsets: bigint[] = opts.offsets ?? [];
      if (offsets.length > nodes) throw new UsageError(`--offsets: ${offsets.length} offsets given for ${nodes} nodes`);
      const faults: Fault[] = opts.fault ?? [];
      for (const f of faults) {
        if (Number(f.node.slice(1)) >= nodes) throw new UsageError(`--fault ${f.node}: there is no node ${f.node} among ${nodes} nodes (n0 .. n${nodes - 1})`);
      }
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
        faults,
        receiveCostNs: opts.receiveCost ?? 0n,
        receiveQueueNs: opts.receiveQueue,
      };
      process.stdout.write(await reportInWorker({ options: o, rounds: !opts.quiet, json: opts.json === true }));
    });
}

function partitionSpec(text: string): SimOptions['partition'] {
  const m = /^(\d+)@(\d+)-(\d+)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a partition: expected K@A-B, e.g. 2@5-10`);
  const [size, fromRound, toRound] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (size < 1 || fromRound < 1 || toRound <= fromRound) throw new InvalidArgumentError(`"${text}": need K >= 1 and 1 <= A < B`);
  return { size, fromRound, toRound };
}

/** NODE:drift=PPM, NODE:jump=DURATION@ROUND, NODE:lie=DURATION, NODE:mute@ROUND. */
export function faultSpec(text: string): Fault {
  const m = /^(n\d+):(?:(drift|jump|lie)=([^@]+))?(?:@(\d+))?$|^(n\d+):mute@(\d+)$/.exec(text.trim());
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`"${text}": ${why}; expected NODE:drift=PPM, NODE:jump=DURATION@ROUND, NODE:lie=DURATION or NODE:mute@ROUND (e.g. n3:jump=5ms@20)`);
  };
  if (!m) return bad('not a fault');
  if (m[5] !== undefined) {
    const round = Number(m[6]);
    if (round < 1) bad('the round must be at least 1');
    return { node: m[5], kind: 'mute', round };
  }
  const [node, kind, value, at] = [m[1]!, m[2], m[3], m[4]];
  if (kind === undefined || value === undefined) return bad('no fault named');
  const parse = <T>(f: (v: string) => T): T => {
    try {
      return f(value);
    } catch (err) {
      return bad((err as Error).message);
    }
  };
  switch (kind) {
    case 'drift': {
      if (at !== undefined) bad('drift takes no round');
      const v = parse(ppm);
      if (Math.abs(v) > 100_000) bad('a drift of at most ±100000 ppm');
      return { node, kind, ppm: v };
    }
    case 'jump': {
      if (at === undefined || Number(at) < 1) bad('jump needs @ROUND, at least 1');
      return { node, kind, ns: parse(signedDuration), round: Number(at) };
    }
    default: {
      if (at !== undefined) bad('lie takes no round');
      return { node, kind: 'lie', ns: parse(signedDuration) };
    }
  }
}
