/**
 * The demo: a group of real `berkeleyd run` processes on loopback multicast
 * (a free port, a random group in 239.255.0.0/16), each with a random
 * starting clock seconds off and a random drift, like the seed's random
 * logical clocks. It reports every round the master completes: each node's
 * offset, the average, each adjustment, the synchronized time, and the
 * group's spread measured from outside (ground truth on the shared
 * monotonic clock). The library never prints: lines go to `print`.
 */
import { freeUdpPort } from '../net/transport.js';
import { magnitude, roundTableLines } from '../table.js';
import { formatDurationNs } from '../units.js';
import { Cluster } from './cluster.js';
import { isoNs } from './format.js';
import type { StatusJson } from './status.js';
import { readingOf, spreadNs } from './truth.js';

export interface DemoOptions {
  nodes: number;
  rounds: number;
  intervalNs: bigint;
  /** Starting clocks are drawn within ±this of the system clock. */
  offsetSpreadNs: bigint;
  driftPpm: number;
  /** Extra environment for the daemons (DEBUG, for instance). */
  env?: NodeJS.ProcessEnv;
}

export interface DemoResult {
  rounds: number;
  finalSpreadNs: bigint | null;
}

export async function runDemo(o: DemoOptions, print: (line: string) => void, signal: AbortSignal): Promise<DemoResult> {
  const port = await freeUdpPort();
  const group = `239.255.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const cluster = new Cluster(o.env);
  let printed = 0;
  let finalSpreadNs: bigint | null = null;
  const starts: bigint[] = [];
  try {
    const common = ['--group', group, '--port', String(port), '--interface', '127.0.0.1', '--interval', `${o.intervalNs}ns`];
    print(`starting ${o.nodes} daemons on ${group}:${port} (loopback), interval ${magnitude(o.intervalNs)}`);
    // Peers first, the master last (like the seed's daemon connecting to
    // processes already waiting): round 1 then finds every clock ready.
    for (const i of [...Array(o.nodes).keys()].slice(1).concat(0)) {
      const offsetNs = BigInt(Math.round((Math.random() * 2 - 1) * Number(o.offsetSpreadNs)));
      starts.push(offsetNs);
      const drift = (Math.random() * 2 - 1) * o.driftPpm;
      const name = `n${i}`;
      const args = [...common, '--sim-offset', `${offsetNs}ns`, '--sim-drift', drift.toFixed(3), ...(i === 0 ? ['--master'] : ['--priority', '0'])];
      print(`  ${name}${i === 0 ? ' (master)' : ''}: clock ${formatDurationNs(offsetNs)} off, drifting ${drift >= 0 ? '+' : ''}${drift.toFixed(1)} ppm`);
      await cluster.add({ name, args });
      if (signal.aborted) return { rounds: 0, finalSpreadNs: null };
    }
    print(`the starting clocks span ${magnitude(max(starts) - min(starts))}`);
    let lastSeen = '';
    const deadline = () => Date.now() + Number(o.intervalNs / 1_000_000n) * 10 + 5000;
    let giveUpAt = deadline();
    while (printed < o.rounds && !signal.aborted) {
      await sleep(Math.max(20, Number(o.intervalNs / 20_000_000n)), signal);
      const master = await cluster.status('n0').catch(() => null);
      const last = master?.lastRound;
      if (!master || !last) {
        if (Date.now() > giveUpAt) throw new Error(`no round completed within ${Date.now() - giveUpAt + 10 * Number(o.intervalNs / 1_000_000n)} ms`);
        continue;
      }
      const key = `${last.epoch}/${last.round}`;
      if (key === lastSeen) continue;
      lastSeen = key;
      giveUpAt = deadline();
      printed += 1;
      const spread = spreadOf(await cluster.statusAll());
      finalSpreadNs = spread;
      const rows = last.table.map((r) => ({ name: r.nodeId, offsetNs: BigInt(r.offsetNs), adjustmentNs: BigInt(r.adjustmentNs), outlier: r.outlier }));
      print('');
      print(`round ${last.round} (epoch ${last.epoch}): ${rows.length} of ${o.nodes} clocks reported${last.quorum ? '' : '; no majority within the tolerance: all follow the master'}`);
      for (const line of roundTableLines(rows, master.nodeId)) print(line);
      const average = last.averageNs === null ? 0n : BigInt(last.averageNs);
      print(`  average ${formatDurationNs(average)}   synchronized time ${isoNs(BigInt(master.groupTimeNs))}   spread now ${spread === null ? 'n/a' : magnitude(spread)}`);
    }
    if (finalSpreadNs !== null) print(`\n${printed} rounds: all ${o.nodes} clocks agree within ${magnitude(finalSpreadNs)}`);
    return { rounds: printed, finalSpreadNs };
  } catch (err) {
    const dead = cluster.members.filter((m) => m.exitCode !== null && m.exitCode !== 0);
    for (const m of dead) print(`${m.name} exited with ${m.exitCode}: ${m.stderr.trim()}`);
    throw err;
  } finally {
    await cluster.stop();
  }
}

const max = (xs: bigint[]): bigint => xs.reduce((a, b) => (b > a ? b : a));
const min = (xs: bigint[]): bigint => xs.reduce((a, b) => (b < a ? b : a));

function spreadOf(statuses: (StatusJson | null)[]): bigint | null {
  const live = statuses.filter((s): s is StatusJson => s !== null);
  return live.length < 2 ? null : spreadNs(live.map(readingOf));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
