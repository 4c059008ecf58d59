/**
 * `--upstream`: a boundary host (BSD timed's submaster, PTP's boundary
 * clock). Two engines in one process, one clock:
 *
 * - the upper engine, a peer of the upper group (never its master:
 *   priority 0), disciplines the clock as any peer does; its own control
 *   socket is the lower one's path plus ".upstream";
 * - the lower engine, the pinned master of this host's own group, whose
 *   time follows that clock (lib/core/reference.ts with a distance of 0:
 *   its own adjustment 0, each peer's minus its offset) and which never
 *   corrects the clock itself (DaemonOptions.shared).
 *
 * While the upper group has no master for this host, the clock keeps its
 * last frequency (holdover) and the lower group follows it. The lower
 * group's SYNC carries steps = the upper master's steps + 1. A loop (two
 * boundary hosts upstream of each other, directly or through others)
 * makes the steps count up by one a round: at MAX_STEPS this host refuses
 * the upstream, says so, stops its upper engine, and its group runs on in
 * holdover. The lower engine starts once the upper one has synchronized
 * (or after START_WAIT_INTERVALS), so that a restarted boundary host brings
 * its group the upper group's time, not its own starting clock.
 */
import type { NodeOptions } from '../core/options.js';
import { ReferenceTracker } from '../core/reference.js';
import { Daemon } from './daemon.js';
import { warner } from './log.js';
import type { DaemonOptions, Reloadable } from './daemon.js';

/** The longest hierarchy taken: a master this many steps from the top is refused (a loop counts up to it). */
export const MAX_STEPS = 16;
/** How long the lower engine waits for the upper one's first synchronization, in upper intervals. */
export const START_WAIT_INTERVALS = 20;

export interface UpstreamOptions {
  group: string;
  port: number;
  interfaceAddress: string;
}

/** Why the upstream is refused when its master is `steps` from the top, or null. */
export function loopRefusal(masterSteps: number | null): string | null {
  if (masterSteps === null || masterSteps + 1 < MAX_STEPS) return null;
  return `the upper group's master is ${masterSteps} steps from the top: this host would be ${masterSteps + 1}, the limit is ${MAX_STEPS - 1}. A hierarchy that deep is a loop (this group's time comes back to it through the upstream)`;
}

export class Boundary {
  readonly upper: Daemon;
  readonly lower: Daemon;
  state: 'starting' | 'following' | 'refused' = 'starting';
  why: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly say: ReturnType<typeof warner>;

  constructor(
    opts: DaemonOptions,
    private readonly up: UpstreamOptions,
  ) {
    this.say = warner(opts.node.name);
    this.upper = new Daemon({
      ...opts,
      node: { ...opts.node, priority: 0, pinnedMaster: false },
      net: { ...opts.net, group: up.group, port: up.port, interfaceAddress: up.interfaceAddress, unicastPort: 0 },
      controlPath: `${opts.controlPath}.upstream`,
      metrics: null,
      reference: null,
    });
    this.lower = new Daemon({ ...opts, node: { ...opts.node, pinnedMaster: true }, shared: { clock: this.upper.clock }, reference: null });
    // The lower group's time is this clock: a distance of 0, always (holdover while the upper group is away).
    // A clock its upper group names faulty, or that cannot follow its corrections, is no reference: the lower group then
    // runs on its average and judges this host's clock as any master's (runaway.ts).
    this.lower.node.ctx.reference = new ReferenceTracker(() => {
      const s = this.upper.node.status();
      return { offsetNs: 0n, unsync: s.namedFaulty || s.cannotFollow, maxErrorNs: 0n };
    }, 1n);
  }

  get node(): Daemon['node'] {
    return this.lower.node;
  }

  async start(): Promise<void> {
    await this.upper.start();
    const o = this.upper.node.ctx.opts;
    this.say.info(`boundary host: a peer of the upper group ${this.upstreamName()}, and the master of its own group, which follows this clock`);
    const deadline = Date.now() + (START_WAIT_INTERVALS * Number(o.intervalNs)) / 1e6;
    while (!this.upper.node.status().synced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!this.upper.node.status().synced) this.say.warn(`the upper group ${this.upstreamName()} has not synchronized this clock yet: starting this group anyway`);
    try {
      await this.lower.start();
    } catch (err) {
      await this.upper.stop();
      throw err;
    }
    this.state = 'following';
    this.timer = setInterval(() => this.check(), Number(o.intervalNs) / 1e6);
    this.check();
  }

  private upstreamName(): string {
    return `${this.up.group}:${this.up.port} on ${this.up.interfaceAddress}`;
  }

  /** Every interval: the steps our SYNC carries, and the loop check. */
  private check(): void {
    if (this.state !== 'following') return;
    const st = this.upper.node.status();
    const masterSteps = st.role === 'peer' && st.masterName !== null ? st.masterSteps : null;
    const refusal = loopRefusal(masterSteps);
    if (refusal !== null) {
      this.state = 'refused';
      this.why = refusal;
      this.say.error(`refusing the upstream: ${refusal}. This group runs on this clock's last frequency (holdover); fix the --upstream settings and restart`);
      void this.upper.stop();
      return;
    }
    if (masterSteps !== null) (this.lower.node.ctx.opts as NodeOptions).steps = masterSteps + 1;
  }

  reload(r: Reloadable): void {
    this.lower.reload(r);
    this.upper.reload({ ...r, priority: 0 });
  }

  reloadRefused(): void {
    this.lower.reloadRefused();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.lower.stop();
    await this.upper.stop();
  }
}
