/**
 * bench:scale --real N: N real `berkeleyd run` peers inside the emulated
 * group, measured as bench measures its daemons (bench/truth.ts): random
 * starting offsets within ±1 s and drifts within ±100 ppm, the group clock of
 * every daemon read several times a second and brought to one monotonic
 * instant, the master's clock the reference.
 *
 * The master of a big group is read with the control socket's `reading`
 * (its clock, the monotonic clock at one instant, its frequency and the
 * slew it still runs: a few hundred bytes), not `status`, whose member
 * table runs to megabytes at thousands of members and would load the
 * master being measured: building one blocks its event loop for long
 * enough to turn a round's requests stale.
 */
import { Cluster } from '../lib/daemon/cluster.js';
import { query } from '../lib/daemon/control.js';
import { procStat } from './proc.js';
import { precisionOf, sampleOf, type ClockStatus, type Precision, type Sample } from './truth.js';

const OFFSET_SPREAD_NS = 1_000_000_000;
const DRIFT_PPM = 100;

export interface RealResult extends Precision {
  daemons: number;
  /** Each real peer's CPU while sampled (it answers a status 5 times a second meanwhile), % of a core. */
  cpuPct: number[];
  samples: number;
  /** Samples that failed (a daemon did not answer in time). */
  failures: number;
}

export class RealPeers {
  private readonly samples: Sample[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private failures = 0;
  private cpuMark: { atMs: number; cpuS: number[] } | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly count: number,
    private readonly common: string[],
    /** Their --priority: 0 (never claim) while a pinned master is measured; null: the default, candidates for a failover. */
    private readonly priority: number | null = 0,
  ) {}

  get names(): string[] {
    return [...Array(this.count).keys()].map((i) => `real-${i}`);
  }

  /** Starts the peers (before the master, as bench does). */
  async start(): Promise<void> {
    for (const name of this.names) {
      const offset = Math.round((Math.random() * 2 - 1) * OFFSET_SPREAD_NS);
      const drift = (Math.random() * 2 - 1) * DRIFT_PPM;
      await this.cluster.add({ name, args: [...this.common, '--sim-offset', `${offset}ns`, '--sim-drift', drift.toFixed(3), ...(this.priority === null ? [] : ['--priority', String(this.priority)])] });
    }
  }

  /** Samples every 1000 / rate ms until stop(), and at most for maxMs. label(): rounds the master has completed. */
  sample(masterControl: string, label: () => number, rate: number, maxMs: number): void {
    this.running = true;
    this.cpuMark = { atMs: performance.now(), cpuS: this.cpuS() };
    const t0 = performance.now();
    this.loop = (async () => {
      while (this.running && performance.now() - t0 < maxMs) {
        await new Promise((r) => setTimeout(r, 1000 / rate));
        try {
          const master = await this.readMaster(masterControl);
          const peers = await Promise.all(this.names.map((n) => this.cluster.status(n)));
          this.samples.push(sampleOf([master, ...peers], label(), performance.now() - t0));
        } catch {
          this.failures += 1;
        }
      }
    })();
  }

  private async readMaster(control: string): Promise<ClockStatus> {
    return (await query(control, 'reading', 5000)) as ClockStatus;
  }

  /** Each real peer's utime + stime so far, s (NaN once gone). */
  private cpuS(): number[] {
    return this.names.map((n) => {
      const pid = this.cluster.member(n).proc?.pid;
      return (pid !== undefined ? procStat(pid)?.cpuS : undefined) ?? NaN;
    });
  }

  async stop(lastRound: number, fastStartRounds: number): Promise<RealResult> {
    this.running = false;
    await this.loop;
    const now = this.cpuS();
    const mark = this.cpuMark;
    const cpuPct = mark ? now.map((c, i) => (100 * (c - mark.cpuS[i]!)) / ((performance.now() - mark.atMs) / 1000)) : [];
    return { daemons: this.count, cpuPct, samples: this.samples.length, failures: this.failures, ...precisionOf(this.samples, lastRound, fastStartRounds) };
  }
}
