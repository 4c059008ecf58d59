/**
 * npm run bench:elect: an election in a large group, in the simulator. The
 * nodes elect a master, it crashes (--crash-master), and the report gives,
 * per group size, the CLAIMs sent from the crash on, the new masters (one
 * is right) and how many intervals after the crash the first took over.
 * The simulator runs the real engine (lib/core), so its elections are the
 * daemon's; the network is the simulator's (100 µs one way, 10 µs jitter).
 */
import { Command } from 'commander';
import { int } from '../bin/parse.js';
import { electionAfterCrash } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS } from '../lib/sim/simulator.js';

const CRASH_ROUND = 16;

const program = new Command('bench:elect')
  .description('a simulated election after the master of N nodes crashes: CLAIMs sent and the time to a new master')
  .option('--nodes <list>', 'group sizes, comma-separated', '50,1000,10000')
  .option('--seed <n>', 'seed of the simulation', int(0, 2 ** 32 - 1, 'seed'), 1)
  .option('--json', 'one JSON object as the last line')
  .action((o: { nodes: string; seed: number; json?: boolean }) => {
    const sizes = o.nodes.split(',').map((x) => Number(x.trim()));
    if (sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 10_000)) throw new Error(`--nodes: sizes from 2 to 10000, got ${o.nodes}`);
    const rows = [];
    console.log(`bench:elect: the master crashes at round ${CRASH_ROUND}, seed ${o.seed}`);
    console.log('nodes   CLAIMs after the crash   new masters   new master after (intervals)   wall s');
    for (const nodes of sizes) {
      const started = Date.now();
      const e = electionAfterCrash(runSimulation({ ...SIM_DEFAULTS, nodes, rounds: CRASH_ROUND + 5, master: null, crashMasterAtRound: CRASH_ROUND, seed: o.seed }));
      const wallS = (Date.now() - started) / 1000;
      rows.push({ nodes, ...e, wallS });
      console.log(`${String(nodes).padEnd(8)}${String(e?.claims ?? '-').padEnd(25)}${String(e?.masters.length ?? '-').padEnd(14)}${(e?.takeoverIntervals?.toFixed(2) ?? 'never').padEnd(31)}${wallS.toFixed(1)}`);
    }
    if (o.json) console.log(JSON.stringify({ seed: o.seed, crashRound: CRASH_ROUND, rows }));
  });
program.parse();
