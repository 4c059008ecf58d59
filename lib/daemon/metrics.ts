/**
 * Prometheus metrics: the text exposition of one daemon's status, served by
 * `--metrics ADDR:PORT` and printed by `berkeleyd status --format prometheus`
 * (through the control socket: the same text, no port).
 *
 * Every value is read from one status snapshot (buildStatus) at scrape time:
 * nothing is counted twice, and the metrics can never disagree with
 * `berkeleyd status --json`. Names carry the berkeleyd_ prefix and base
 * units (seconds, ratios); counters end in _total. process_* follow the
 * names every Prometheus client library uses. Per-member series are on the
 * master only and bounded by MAX_MEMBER_SERIES.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Registry } from 'prom-client';
import type { StatusJson } from './status.js';
import { BOUND_STATES } from './bound.js';

/** Default TCP port of --metrics: beside the group's UDP 7737, outside the 9100-9999 exporter range (full). */
export const DEFAULT_METRICS_PORT = 7738;
/** At most this many members get per-member series (sorted by node id); berkeleyd_members counts them all. */
export const MAX_MEMBER_SERIES = 128;

const LAG_RESOLUTION_MS = 50;

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const ns = (s: string | null | undefined): number | null => (s === null || s === undefined ? null : Number(BigInt(s)) / 1e9);

type Snapshot = () => StatusJson;

/** Status counters exported under names of their own below. */
const KNOWN_COUNTERS = new Set(['received', 'sent', 'sendErrors', 'rejected', 'dropped', 'elections', 'claims', 'corrections', 'reloads']);

export class Metrics {
  readonly registry = new Registry();
  private readonly loop: IntervalHistogram;
  private snap: StatusJson | null = null;
  private lag: { p50: number; p99: number; max: number } | null = null;
  private readonly adopted = new Set<string>();

  /**
   * watchLoop: time the event loop (a libuv timer every LAG_RESOLUTION_MS,
   * about 0.1 % of a CPU at 50 ms, 0.25 % at 20 ms, measured by the bench);
   * the daemon turns it on with --metrics only, so the lag gauges are absent
   * otherwise.
   */
  constructor(private readonly source: Snapshot, watchLoop = true) {
    this.loop = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    if (watchLoop) this.loop.enable();
    this.define();
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async text(): Promise<string> {
    this.snap = this.source();
    this.adoptCounters(this.snap);
    // The histogram times a libuv timer of LAG_RESOLUTION_MS: what exceeds that is lag.
    const l = this.loop;
    const lag = (v: number): number => Math.max(0, v / 1e9 - LAG_RESOLUTION_MS / 1e3);
    this.lag = l.count > 0 ? { p50: lag(l.percentile(50)), p99: lag(l.percentile(99)), max: lag(l.max) } : null;
    l.reset();
    try {
      const text = await this.registry.metrics();
      // The format ends every line, the last one too, with a line feed.
      return text.endsWith('\n') ? text : text + '\n';
    } finally {
      this.snap = null;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    this.loop.disable();
  }

  /**
   * Counters that this module does not know by name (added to the status
   * later, e.g. by the core's fault detection) are exported all the same:
   * a number as berkeleyd_<snake_name>_total, a map of numbers as
   * berkeleyd_<snake_name>_total{reason}. Registered on first sight.
   */
  private adoptCounters(s: StatusJson): void {
    for (const [key, value] of Object.entries(s.counters as unknown as Record<string, unknown>)) {
      if (KNOWN_COUNTERS.has(key) || this.adopted.has(key)) continue;
      const isMap = value !== null && typeof value === 'object' && Object.values(value).every((v) => typeof v === 'number');
      if (typeof value !== 'number' && !isMap) continue;
      const name = `berkeleyd_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/[^a-z0-9_]/g, '_')}_total`;
      this.adopted.add(key);
      if (this.registry.getSingleMetric(name)) continue; // a name taken already (steps ...): the known one wins
      const self = this;
      new Counter({
        name, help: `Status counter ${key}${isMap ? ', by reason' : ''}.`, labelNames: isMap ? ['reason'] : [], registers: [this.registry],
        collect() {
          this.reset();
          const v = (self.s.counters as unknown as Record<string, unknown>)[key];
          if (typeof v === 'number') this.inc(v);
          else if (v && typeof v === 'object') for (const [reason, n] of Object.entries(v)) if (typeof n === 'number') this.inc({ reason }, n);
        },
      });
    }
  }

  private get s(): StatusJson {
    return this.snap ?? this.source();
  }

  private define(): void {
    const r = [this.registry];
    const self = this;
    /** A gauge whose value (or absence: null) comes from the snapshot. */
    const gauge = (name: string, help: string, value: (s: StatusJson) => number | boolean | null): void => {
      // labelNames (never used): without any, prom-client prints 0 for a gauge never set; absent is the truth.
      new Gauge({
        name, help, registers: r, labelNames: ['unused'],
        collect() {
          this.reset();
          const v = value(self.s);
          if (v !== null) this.set({}, typeof v === 'boolean' ? Number(v) : v);
        },
      });
    };
    /** A labelled gauge: one series per entry. */
    const gauges = (name: string, help: string, labelNames: string[], series: (s: StatusJson) => Array<[Record<string, string>, number]>): void => {
      new Gauge({
        name, help, labelNames, registers: r,
        collect() {
          this.reset();
          for (const [labels, v] of series(self.s)) this.set(labels, v);
        },
      });
    };
    /** A counter read from the status (monotonic while the process lives). */
    const counter = (name: string, help: string, labelNames: string[], series: (s: StatusJson) => Array<[Record<string, string>, number]>): void => {
      new Counter({
        name, help, labelNames, registers: r,
        collect() {
          this.reset();
          for (const [labels, v] of series(self.s)) this.inc(labels, v);
        },
      });
    };
    const byReason = (m: Record<string, number> | undefined): Array<[Record<string, string>, number]> =>
      Object.entries(m ?? {}).map(([reason, v]) => [{ reason }, v]);

    gauges('berkeleyd_build_info', 'Build information: always 1.', ['version', 'nodejs'], () => [[{ version: VERSION, nodejs: process.version }, 1]]);
    gauges('berkeleyd_role', 'This node\'s role: 1 for the current one of master, peer, candidate.', ['role'], (s) =>
      (['master', 'peer', 'candidate'] as const).map((role) => [{ role }, Number(s.role === role)]));
    gauges('berkeleyd_master_info', 'The master this node follows (or is): 1, labelled with its node id; absent while there is none.', ['master'], (s) =>
      s.masterId === null ? [] : [[{ master: s.masterId }, 1]]);
    gauge('berkeleyd_master_known', '1 while this node follows a master or is the master, 0 without one.', (s) => s.masterId !== null);
    gauge('berkeleyd_epoch', 'Current election epoch.', (s) => s.epoch);
    gauge('berkeleyd_round', 'Current round of the epoch.', (s) => s.round);
    gauge('berkeleyd_synchronized', '1 once the first corrections are done (the fast start), else 0.', (s) => s.synced);
    gauges('berkeleyd_clock_state', 'Clock state: 1 for the current one. free_running: never corrected; locked: corrected within the last 3 intervals; holdover: corrected before, not lately.', ['state'], (s) =>
      (['free_running', 'locked', 'holdover'] as const).map((state) => [{ state }, Number(s.clock.state === state.replace('_', '-'))]));
    gauge('berkeleyd_error_bound_seconds', 'How far this clock may be from the group\'s time now (docs/protocol.md, "Error bound"); absent when there is no bound (berkeleyd_error_bound_state).', (s) => ns(s.errorBoundNs));
    gauges('berkeleyd_error_bound_state', 'The error bound\'s state: 1 for the current one. synchronized: the bound holds; free_running: the group is lost, the bound holds and grows; none: no bound (why: status).', ['state'], (s) =>
      BOUND_STATES.map((state) => [{ state: state.replace('-', '_') }, Number(s.boundState === state)]));
    gauge('berkeleyd_error_bound_drift_ratio', 'How fast the error bound grows from the reading on (the drift assumed), as a ratio.', (s) => s.boundDriftPpb * 1e-9);
    gauge('berkeleyd_last_correction_age_seconds', 'Time since this node last applied a correction (absent before the first).', (s) => s.lastCorrectionAgeS);
    gauge('berkeleyd_offset_seconds', 'This node\'s clock minus the master\'s at its last measurement (positive: ahead). Absent on the master.', (s) => ns(s.lastOffsetNs));
    gauge('berkeleyd_round_trip_seconds', 'Round trip of this node\'s last measurement.', (s) => ns(s.lastDelayNs));
    gauge('berkeleyd_last_adjustment_seconds', 'This node\'s last adjustment from the master\'s table.', (s) => ns(s.lastAdjustmentNs));
    gauge('berkeleyd_kernel_synchronized', 'The kernel clock (CLOCK_REALTIME) as adjtimex shows it, whatever the clock kind: 1 with STA_UNSYNC clear, 0 with it set; absent where unreadable.', (s) => s.clock.kernel?.synchronized ?? null);
    gauge('berkeleyd_kernel_maxerror_seconds', 'The kernel clock\'s maximum error (adjtimex maxerror).', (s) => (s.clock.kernel ? s.clock.kernel.maxErrorUs / 1e6 : null));
    gauge('berkeleyd_kernel_frequency_ratio', 'The kernel clock\'s frequency correction (adjtimex freq and tick), as a ratio.', (s) => (s.clock.kernel ? s.clock.kernel.frequencyPpm * 1e-6 : null));
    gauge('berkeleyd_frequency_ratio', 'Frequency correction applied to this node\'s clock, as a ratio (1e-6 is 1 ppm).', (s) => s.frequencyPpm * 1e-6);
    gauge('berkeleyd_clock_slew_remaining_seconds', 'Correction still being slewed.', (s) => ns(s.clock.pendingNs));
    gauge('berkeleyd_group_spread_seconds', 'Master only: largest minus smallest offset in its last round\'s table (outliers included).', (s) => {
      const t = s.lastRound?.table;
      if (!t || t.length === 0) return null;
      const offs = t.map((row) => BigInt(row.offsetNs));
      const max = offs.reduce((a, b) => (b > a ? b : a));
      const min = offs.reduce((a, b) => (b < a ? b : a));
      return Number(max - min) / 1e9;
    });
    gauge('berkeleyd_group_quorum', 'Master only: 1 if a majority agreed within the tolerance in the last round, 0 if all followed the master.', (s) => (s.lastRound ? s.lastRound.quorum : null));
    gauge('berkeleyd_members', 'Master only: members in the member table (0 on a peer).', (s) => s.members.length);
    const members = (s: StatusJson) => [...s.members].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)).slice(0, MAX_MEMBER_SERIES);
    gauges('berkeleyd_member_offset_seconds', `Master only: member clock minus master clock at its last report (first ${MAX_MEMBER_SERIES} members by node id).`, ['node'], (s) =>
      members(s).map((m) => [{ node: m.nodeId }, Number(BigInt(m.offsetNs)) / 1e9]));
    gauges('berkeleyd_member_round_trip_seconds', 'Master only: round trip of the member\'s last report.', ['node'], (s) =>
      members(s).map((m) => [{ node: m.nodeId }, Number(BigInt(m.delayNs)) / 1e9]));
    gauges('berkeleyd_member_last_round', 'Master only: the last round the member reported in.', ['node'], (s) => members(s).map((m) => [{ node: m.nodeId }, m.lastRound]));
    gauges('berkeleyd_member_faulty', 'Master only: 1 if the member is named faulty (label reason), 0 if not.', ['node', 'reason'], (s) =>
      members(s).map((m) => [{ node: m.nodeId, reason: m.faulty ?? '' }, Number(m.faulty !== null && m.faulty !== undefined)]));
    gauge('berkeleyd_faulty_members', 'Master only: members named faulty.', (s) => s.members.filter((m) => m.faulty !== null && m.faulty !== undefined).length);
    counter('berkeleyd_faults_named_total', 'Master only: times a member was named faulty (a recovery and a new naming count again).', [], (s) => [[{}, s.faults.named]]);
    gauge('berkeleyd_named_faulty', '1 while the master\'s table names this node faulty, else 0.', (s) => s.faults.thisNode);
    counter('berkeleyd_members_refused_total', 'Master only: nodes refused beyond the member limit (--max-members), each counted once per round.', [], (s) => [[{}, s.membership.refused]]);
    gauge('berkeleyd_max_members', 'The member limit (--max-members).', (s) => s.membership.maxMembers);
    gauge('berkeleyd_table_full', 'Master only: 1 while its last round refused nodes beyond --max-members, else 0.', (s) => (s.role === 'master' ? s.membership.full : null));
    gauge('berkeleyd_in_table', 'Peer only: 1 while its reports reach the master\'s table, 0 when left out (not synchronized).', (s) => s.membership.inTable);
    gauge('berkeleyd_burst_probes', 'Exchanges per burst this round: asked by the master (on the master) or run (on a peer).', (s) => s.membership.probes);
    gauges('berkeleyd_own_clock_faulty', 'Own clock judged as master (runaway.ts): 1 while named faulty (labels: reason own-clock-faulty, fault, action serving or stood-down), else 0.', ['reason', 'fault', 'action'], (s) => {
      const o = s.faults.ownClock;
      return [[o ? { reason: o.reason, fault: o.fault, action: o.action } : { reason: '', fault: '', action: '' }, Number(o !== null)]];
    });
    gauge('berkeleyd_frequency_limit', '1 while this clock\'s own estimate needs more frequency correction than the limit (it cannot follow its corrections), else 0.', (s) => s.faults.cannotFollow);
    gauge('berkeleyd_group_common_frequency_ratio', 'Master only: the common frequency of its last table (the mean estimate of the kept clocks), as a ratio.', (s) => (s.lastRound ? s.lastRound.commonPpm * 1e-6 : null));
    gauge('berkeleyd_selection_margin_seconds', 'Master only: the margin of its last selection (3 median absolute deviations of the offsets, at least 10 us).', (s) => ns(s.lastRound?.marginNs ?? null));
    gauges('berkeleyd_reference_state', '--reference only: 1 for the current state of the external reference: following (the group keeps its time), returning (slewing back to it), lost (the group runs on the Berkeley average).', ['state'], (s) =>
      s.reference ? (['following', 'returning', 'lost'] as const).map((st) => [{ state: st }, Number(s.reference!.state === st)]) : []);
    gauge('berkeleyd_reference_offset_seconds', '--reference only: the group clock minus the reference at the last round (positive: the group is ahead).', (s) => ns(s.reference?.offsetNs ?? null));
    counter('berkeleyd_reference_losses_total', '--reference only: times the reference was lost (STA_UNSYNC, maxerror beyond --reference-max-error, or unreadable).', [], (s) => (s.reference ? [[{}, s.reference.losses]] : []));
    counter('berkeleyd_datagrams_received_total', 'Datagrams received.', [], (s) => [[{}, s.counters.received]]);
    counter('berkeleyd_datagrams_sent_total', 'Datagrams sent.', [], (s) => [[{}, s.counters.sent]]);
    counter('berkeleyd_send_errors_total', 'Datagrams that could not be sent.', [], (s) => [[{}, s.counters.sendErrors]]);
    counter('berkeleyd_datagrams_rejected_total', 'Datagrams rejected before the engine, by reason (bad-tag, truncated, foreign-domain, refused-adjust ...).', ['reason'], (s) => byReason(s.counters.rejected));
    counter('berkeleyd_datagrams_ignored_total', 'Well-formed datagrams the engine ignored, by reason (stale-round, stale-epoch ...).', ['reason'], (s) => byReason(s.counters.dropped));
    counter('berkeleyd_elections_total', 'Changes of the followed master\'s epoch after the first master (each a failover election).', [], (s) => [[{}, s.counters.elections]]);
    counter('berkeleyd_claims_total', 'Times this node claimed mastership.', [], (s) => [[{}, s.counters.claims]]);
    counter('berkeleyd_steps_total', 'Steps of this node\'s clock.', [], (s) => [[{}, s.clock.steps]]);
    counter('berkeleyd_foreign_steps_total', 'Steps of the system clock made by another program, noticed within 10 s (0 with a virtual clock).', [], (s) => [[{}, s.clock.foreignSteps ?? 0]]);
    counter('berkeleyd_corrections_total', 'Corrections applied (steps and slews).', [], (s) => [[{}, s.counters.corrections]]);
    counter('berkeleyd_reloads_total', 'Reloads (SIGHUP), by result: ok, or refused (the old configuration stays).', ['result'], (s) =>
      [[{ result: 'ok' }, s.counters.reloads.ok], [{ result: 'refused' }, s.counters.reloads.refused]]);
    gauge('berkeleyd_send_key_id', 'Id of the key that signs outgoing datagrams (absent without --key-file).', (s) => s.config.keyIds?.[0] ?? null);
    gauge('berkeleyd_keys', 'Keys accepted on receive (0 without --key-file).', (s) => s.config.keyIds?.length ?? 0);
    gauge('berkeleyd_interval_seconds', 'Configured time between rounds.', (s) => s.config.intervalMs / 1000);
    gauge('berkeleyd_event_loop_lag_p50_seconds', 'Event-loop delay since the previous scrape, median.', () => self.lag?.p50 ?? null);
    gauge('berkeleyd_event_loop_lag_p99_seconds', 'Event-loop delay since the previous scrape, 99th percentile.', () => self.lag?.p99 ?? null);
    gauge('berkeleyd_event_loop_lag_max_seconds', 'Event-loop delay since the previous scrape, largest.', () => self.lag?.max ?? null);
    counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [], () => {
      const u = process.cpuUsage();
      return [[{}, (u.user + u.system) / 1e6]];
    });
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => Math.round(Date.now() / 1000 - process.uptime()));
  }
}

export class MetricsError extends Error {}

/** `[ADDR:]PORT`, `ADDR` or `:PORT` -> host and port; a bare port listens on every address, like an exporter's `:9100`. */
export function parseListen(text: string): { host: string; port: number } {
  const t = text.trim();
  const m = /^(?:\[([^\]]+)\]|([^:]*))?(?::(\d+))?$/.exec(t);
  if (/^\d+$/.test(t)) return { host: '0.0.0.0', port: checkPort(t) };
  if (!m || t === '') throw new RangeError(`"${text}" is not ADDR:PORT, ADDR or PORT`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port: m[3] === undefined ? DEFAULT_METRICS_PORT : checkPort(m[3]) };
}

function checkPort(p: string): number {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`port ${p} is not 0 to 65535 (0: any free port)`);
  return n;
}

/** GET /metrics (and /) over HTTP; anything else 404. */
export class MetricsServer {
  private server: Server | null = null;
  port = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly listen: { host: string; port: number },
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics' && path !== '/') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.metrics.text().then(
        (body) => res.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.listen.port, this.listen.host, () => resolve());
      });
    } catch (err) {
      throw new MetricsError(`cannot listen on ${this.listen.host}:${this.listen.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    this.server = server;
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : this.listen.port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
