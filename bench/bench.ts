/**
 * npm run bench: how closely real daemons hold their clocks together.
 *
 * Starts --nodes real `berkeleyd run` processes on loopback multicast (one
 * master), each with a random starting offset within ±--offset-spread and a
 * random drift within ±--drift. Several times a second it reads every
 * daemon's (monotonic, group) pair through its control socket and brings
 * them to one monotonic instant: all processes share CLOCK_MONOTONIC, so
 * this ground truth is exact, untouched by the network. It reports the
 * group's precision (largest disagreement between two clocks) after
 * convergence, the rounds it took to come within 1 ms and within 100 µs,
 * each daemon's peak RSS and CPU share, and the measured round trips (to
 * set the simulator's delay and jitter). Ends by itself; leaves no process.
 *
 * Precision is reported for the steady state: from the round after which
 * the group stays within 100 µs, but not before the fast start (rounds
 * 1-12, in which the frequencies are acquired) is over; and, beside it,
 * from the 100 µs round on, acquisition included.
 */
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Cluster } from '../lib/daemon/cluster.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { freeUdpPort } from '../lib/net/transport.js';
import { percentiles } from '../lib/sim/stats.js';
import { int, positiveDuration, ppm, duration } from '../bin/parse.js';
import { ChronyGroup, findChrony } from './chrony.js';
import { procStat } from './proc.js';
import { boundFigures, boundPairs, precisionOf, sampleOf, type BoundPair, type Sample } from './truth.js';

/** chrony's measurements from this many seconds after its start count (iburst and the first filter fills are over). */
const CHRONY_SKIP_S = 15;

async function main(): Promise<void> {
  const o = new Command('bench')
    .description('measure the precision, convergence and cost of a group of real daemons on loopback')
    .option('--nodes <n>', 'daemons (n0 is the master)', int(2, 64, 'nodes'), 8)
    .addOption(new Option('--interval <duration>', 'round interval').argParser(positiveDuration).default(1_000_000_000n, '1s'))
    .option('--duration <duration>', 'how long to sample after the master starts (default: 80 intervals: fast start, convergence, then more than 60 rounds)', positiveDuration)
    .option('--drift <ppm>', 'each clock drifts by a random rate within ± this', ppm, 100)
    .addOption(new Option('--offset-spread <duration>', 'starting clocks within ± this').argParser(duration).default(1_000_000_000n, '1s'))
    .option('--rate <n>', 'ground-truth samples per second', int(1, 50, 'rate'), 5)
    .addOption(new Option('--idle <duration>', 'then measure CPU for this long without polling the daemons (their idle cost)').argParser(positiveDuration).default(20_000_000_000n, '20s'))
    .option('--trace <file>', 'write every ground-truth sample as CSV: ms since start, rounds completed, spread (ns), then each daemon\'s clock minus the master\'s (ns) and its rate error after frequency correction (ppm)')
    .option('--metrics', 'every daemon serves /metrics (--metrics 127.0.0.1:0), scraped every --scrape, in the idle window too, as Prometheus would')
    .addOption(new Option('--scrape <duration>', 'with --metrics: scrape period').argParser(positiveDuration).default(15_000_000_000n, '15s'))
    .addOption(new Option('--anchor <name>', 'run chrony\'s loopback group (1 server + one client per daemon, -x: no clock touched) in the same run, and state berkeleyd\'s figures as ratios to its own; skipped with a message where chrony cannot be had').choices(['chrony']))
    .option('--json', 'one JSON object as the last line of standard output')
    .parse(process.argv)
    .opts();
  const intervalMs = Number(o.interval / 1_000_000n);
  const durationMs = o.duration ? Number(o.duration / 1_000_000n) : intervalMs * 80;
  const port = await freeUdpPort();
  const group = `239.255.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const cluster = new Cluster();
  let chrony: ChronyGroup | null = null;
  const stop = (): void => void Promise.all([cluster.stop(), chrony?.stop()]).then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const log = (s: string): void => void process.stderr.write(s + '\n');
  let chronyVersion = '';
  if (o.anchor === 'chrony') {
    const found = findChrony();
    if (!found.ok) log(`bench: no chrony anchor: ${found.why}`);
    else {
      chronyVersion = found.version;
      chrony = new ChronyGroup({ chronyd: found.chronyd, clients: o.nodes, port: await freeUdpPort(), poll: 0 });
    }
  }
  try {
    const common = ['--group', group, '--port', String(port), '--interface', '127.0.0.1', '--interval', `${o.interval}ns`];
    const drifts: number[] = [];
    for (const i of [...Array(o.nodes).keys()].slice(1).concat(0)) {
      const offset = BigInt(Math.round((Math.random() * 2 - 1) * Number(o.offsetSpread)));
      const drift = (Math.random() * 2 - 1) * o.drift;
      drifts.push(drift);
      await cluster.add({ name: `n${i}`, args: [...common, ...(o.metrics ? ['--metrics', '127.0.0.1:0'] : []), '--sim-offset', `${offset}ns`, '--sim-drift', drift.toFixed(3), ...(i === 0 ? ['--master'] : ['--priority', '0'])] });
    }
    // The anchor runs beside the daemons for the whole sampling, under the same load.
    chrony?.start();
    log(`bench: ${o.nodes} daemons on ${group}:${port}, interval ${intervalMs} ms, drift within ±${o.drift} ppm, running ${(durationMs / 1000).toFixed(0)} s${chrony ? `; chrony ${chronyVersion}: 1 server + ${o.nodes} clients on 127.0.0.1 beside them` : ''}`);
    const names = [...Array(o.nodes).keys()].map((i) => `n${i}`);
    const t0 = Date.now();
    // With --metrics: a scraper that fetches every daemon's /metrics every --scrape, until the end.
    let scrapes = 0;
    let scrapeBytes = 0;
    let scraping: NodeJS.Timeout | undefined;
    if (o.metrics) {
      const addresses = (await cluster.statusAll()).map((s) => s?.config.metrics).filter((a): a is string => !!a);
      const scrapeAll = (): void => {
        for (const a of addresses) {
          fetch(`http://${a}/metrics`).then((r) => r.text()).then((t) => {
            scrapes += 1;
            scrapeBytes = t.length;
          }, () => undefined);
        }
      };
      scrapeAll();
      scraping = setInterval(scrapeAll, Number(o.scrape / 1_000_000n));
    }
    const samples: Sample[] = [];
    // Every daemon's error bound against the ground truth, at every sample.
    const pairs: BoundPair[] = [];
    const rtts: number[] = [];
    const cpuStart = new Map<string, { cpuS: number; atMs: number }>();
    const hwm = new Map<string, number>();
    const cpuShare = new Map<string, number>();
    let lastRound = -1;
    let lastLive: StatusJson[] = [];
    while (Date.now() - t0 < durationMs) {
      await new Promise((r) => setTimeout(r, 1000 / o.rate));
      const all = await cluster.statusAll();
      const live = all.filter((s): s is StatusJson => s !== null);
      if (live.length !== o.nodes) throw new Error(`only ${live.length} of ${o.nodes} daemons answered`);
      lastLive = live;
      const master = live.find((s) => s.nodeId === 'n0')!;
      const label = master.lastRound?.round ?? 0;
      samples.push(sampleOf(names.map((n) => live.find((s) => s.nodeId === n)!), label, Date.now() - t0));
      pairs.push(...boundPairs(live).map((x) => ({ ...x, node: `${x.node}@${label}` })));
      if (label !== lastRound) {
        lastRound = label;
        for (const s of live) if (s.lastDelayNs !== null && s.role === 'peer') rtts.push(Number(s.lastDelayNs));
      }
      for (const m of cluster.members) {
        const st = m.proc?.pid ? procStat(m.proc.pid) : null;
        if (!st) continue;
        hwm.set(m.name, Math.max(hwm.get(m.name) ?? 0, st.hwmMb));
        // CPU share over the steady part: from the 10th second on.
        const now = Date.now();
        if (now - t0 >= 10_000 && !cpuStart.has(m.name)) cpuStart.set(m.name, { cpuS: st.cpuS, atMs: now });
        const start = cpuStart.get(m.name);
        if (start && now - start.atMs > 1000) cpuShare.set(m.name, (100 * (st.cpuS - start.cpuS)) / ((now - start.atMs) / 1000));
      }
    }
    const chronyFailures = chrony?.failures() ?? [];
    const chronyMeasurements = chrony?.measurements(CHRONY_SKIP_S) ?? [];
    const chronyTracking = chrony?.trackingOffsetsNs(CHRONY_SKIP_S) ?? [];
    await chrony?.stop();
    chrony = null;
    // Idle cost: CPU over a window in which nobody polls the daemons.
    const idleMs = Number(o.idle / 1_000_000n);
    const before = new Map(cluster.members.map((m) => [m.name, m.proc?.pid ? procStat(m.proc.pid) : null]));
    const idleStart = Date.now();
    await new Promise((r) => setTimeout(r, idleMs));
    const idleS = (Date.now() - idleStart) / 1000;
    clearInterval(scraping);
    const idleCpu = cluster.members.map((m) => {
      const a = before.get(m.name);
      const b = m.proc?.pid ? procStat(m.proc.pid) : null;
      if (b) hwm.set(m.name, Math.max(hwm.get(m.name) ?? 0, b.hwmMb));
      return a && b ? (100 * (b.cpuS - a.cpuS)) / idleS : 0;
    });
    if (o.trace) {
      const head = ['ms', 'round', 'spread_ns', ...names.map((n) => `${n}_offset_ns`), ...names.map((n) => `${n}_rate_ppm`)];
      const rows = samples.map((x) => [x.atMs, x.label, x.spreadNs, ...x.offsetsNs, ...x.ratesPpm.map((r) => r.toFixed(3))].join(','));
      writeFileSync(o.trace, head.join(',') + '\n' + rows.join('\n') + '\n');
    }
    // Precision in the steady state (from the 100 µs round, after the fast start), and from the 100 µs round on;
    // each peer's clock error against the master: the figure that compares with a chrony client's against its server.
    const p = precisionOf(samples, lastRound);
    const { ms1, us100 } = p.convergeRounds;
    const from = p.steadyFromRound;
    const roundsAfter = p.roundsAfterConvergence;
    const precision = { p50: p.precisionUs.p50 * 1000, p99: p.precisionUs.p99 * 1000 };
    const clockErr = { p50: p.clockErrorUs.p50 * 1000, p99: p.clockErrorUs.p99 * 1000 };
    const rtt = percentiles(rtts);
    // Coverage: the share of datagrams received with kernel timestamps, from the daemons' status counters.
    const share = (via: 'unicast' | 'group'): { kernel: number; total: number; percent: number } => {
      const kernel = lastLive.reduce((n, x) => n + x.counters.net.rxStamps[via].kernel, 0);
      const total = kernel + lastLive.reduce((n, x) => n + x.counters.net.rxStamps[via].user, 0);
      return { kernel, total, percent: total ? (100 * kernel) / total : 0 };
    };
    const rttMin = rtts.length ? Math.min(...rtts) : 0;
    const result = {
      nodes: o.nodes,
      intervalMs,
      driftPpm: o.drift,
      durationS: Math.round((Date.now() - t0) / 1000),
      rounds: lastRound,
      roundsAfterConvergence: roundsAfter,
      samples: samples.length,
      precisionUs: p.precisionUs,
      steadyFromRound: from,
      precisionFromConvergenceUs: p.precisionFromConvergenceUs,
      convergeRounds: p.convergeRounds,
      rssMb: { max: Math.max(...hwm.values()) },
      cpuPercent: { max: Math.max(...idleCpu), master: idleCpu[cluster.members.findIndex((m) => m.name === 'n0')]!, whilePolledMax: Math.max(...cpuShare.values()), idleWindowS: Math.round(idleS) },
      rttUs: { min: rttMin / 1000, p50: rtt.p50 / 1000, p99: rtt.p99 / 1000 },
      metrics: o.metrics ? { scrapes, scrapeBytes, scrapePeriodS: Number(o.scrape) / 1e9 } : null,
      kernelStamps: { unicast: share('unicast'), group: share('group') },
      clockErrorUs: p.clockErrorUs,
      bound: boundFigures(pairs),
      anchor: anchorResult(o.anchor, chronyVersion, chronyMeasurements, chronyTracking, chronyFailures, precision, clockErr),
      machine: { cpus: cpus().length, loadavg1: Number(loadavg()[0]!.toFixed(2)), node: process.version },
    };
    const f = (x: number): string => x.toFixed(1);
    log(`rounds: ${result.rounds} (fast start: rounds 1-4 at a quarter interval, 5-12 at half); samples: ${samples.length}`);
    log(`converged within 1 ms after round ${ms1 ?? 'never'}, within 100 µs after round ${us100 ?? 'never'}`);
    log(`precision over ${roundsAfter} rounds of steady state (from round ${from ?? 'never'}): p50 ${f(result.precisionUs.p50)} µs, p99 ${f(result.precisionUs.p99)} µs, max ${f(result.precisionUs.max)} µs`);
    const w = result.precisionFromConvergenceUs;
    log(`  from round ${us100 ?? 'never'}, acquisition included: p50 ${f(w.p50)} µs, p99 ${f(w.p99)} µs, max ${f(w.max)} µs`);
    const bf = result.bound;
    log(
      `error bound: ${bf.violations} of ${bf.samples} (daemon, instant) pairs over their bound (${bf.freeRunning} free-running), ${bf.none} without a bound; ` +
        `median bound ${bf.medianBoundUs?.toFixed(1) ?? '-'} µs, median |error| ${bf.medianErrorUs?.toFixed(2) ?? '-'} µs (ratio ${bf.ratio?.toFixed(1) ?? '-'}, the error reached ${bf.worstFraction?.toFixed(2) ?? '-'} of the bound at most${bf.worst ? `, by ${bf.worst.node} (${bf.worst.role}, node@round)` : ''}); bound p50 ${f(bf.boundUs.p50)} µs, p99 ${f(bf.boundUs.p99)} µs`,
    );
    log(`per daemon: peak RSS ${f(result.rssMb.max)} MB max; CPU idle ${result.cpuPercent.max.toFixed(2)}% max (master ${result.cpuPercent.master.toFixed(2)}%) over ${result.cpuPercent.idleWindowS} s unpolled, ${result.cpuPercent.whilePolledMax.toFixed(2)}% max while polled ${o.rate}/s`);
    if (o.metrics) log(`metrics on: ${scrapes} scrapes of /metrics, every ${Number(o.scrape) / 1e9} s to each daemon, ${scrapeBytes} bytes each`);
    const ks = result.kernelStamps;
    log(`kernel receive timestamps (status counters, all daemons): exchanges and reports ${ks.unicast.percent.toFixed(2)}% (${ks.unicast.kernel} of ${ks.unicast.total}), group ${ks.group.percent.toFixed(2)}% (${ks.group.kernel} of ${ks.group.total})`);
    log(`clock error against the master (each peer, steady state): p50 ${f(result.clockErrorUs.p50)} µs, p99 ${f(result.clockErrorUs.p99)} µs, max ${f(result.clockErrorUs.max)} µs`);
    const a = result.anchor;
    if (a && 'chronyUs' in a) {
      const r = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)}×` : '-');
      log(`chrony ${a.version} (${a.measurements} measurements from ${CHRONY_SKIP_S} s on; |offset| of each client against its server): p50 ${a.chronyUs.p50.toFixed(2)} µs, p99 ${a.chronyUs.p99.toFixed(2)} µs, max ${a.chronyUs.max.toFixed(2)} µs`);
      const tk = a.chronyTrackingUs;
      log(`  chrony's filtered estimates (tracking.log, ${tk.n} clock updates): p50 ${tk.p50.toFixed(2)} µs, p99 ${tk.p99.toFixed(2)} µs, max ${tk.max.toFixed(2)} µs`);
      log(`  chrony's round trips: min ${f(a.chronyRttUs.min)} µs, p50 ${f(a.chronyRttUs.p50)} µs, p99 ${f(a.chronyRttUs.p99)} µs`);
      log(`  ratio to chrony, precision (largest disagreement): p50 ${r(a.ratio.precision.p50)}, p99 ${r(a.ratio.precision.p99)}; clock error: p50 ${r(a.ratio.clockError.p50)}, p99 ${r(a.ratio.clockError.p99)}`);
    } else if (a) log(`chrony: ${a.skipped}`);
    log(`round trips: min ${f(result.rttUs.min)} µs, p50 ${f(result.rttUs.p50)} µs, p99 ${f(result.rttUs.p99)} µs`);
    // The simulator draws each datagram's jitter on its own, so a best of 12 nearly always finds a quiet pair. Its
    // per-datagram jitter is set to the typical excess of the *best* round trip (median - least), not half of it:
    // with user-space stamps (scheduling lateness shared by a burst) that reproduced the bench's median within
    // 1.2-1.6x; with kernel stamps (the lag from the transmit stamp to the kernel's, per datagram) within 1.0-1.5x,
    // with the bench's tail 2-4x worse (single descheduling episodes; see docs/performance.md).
    log(`simulate the same: berkeleyd simulate --nodes ${o.nodes} --drift ${o.drift} --delay ${Math.round(rttMin / 2000)}us --jitter ${Math.max(1, Math.round((rtt.p50 - rttMin) / 1000))}us --rounds ${result.rounds}`);
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await cluster.stop();
    await chrony?.stop();
  }
}

type Anchor = { version: string; measurements: number; chronyUs: { p50: number; p99: number; max: number }; chronyRttUs: { min: number; p50: number; p99: number }; chronyTrackingUs: { n: number; p50: number; p99: number; max: number }; ratio: { precision: { p50: number; p99: number }; clockError: { p50: number; p99: number } } } | { skipped: string };

function anchorResult(anchor: string | undefined, version: string, ms: { offsetNs: number; delayNs: number }[], tracking: number[], failures: string[], precision: { p50: number; p99: number }, clockErr: { p50: number; p99: number }): Anchor | undefined {
  if (anchor !== 'chrony') return undefined;
  if (version === '') return { skipped: 'chrony could not be had (see above)' };
  if (ms.length === 0) return { skipped: `no measurements logged${failures.length ? `: ${failures.join('; ')}` : ''}` };
  const c = percentiles(ms.map((m) => Math.abs(m.offsetNs)));
  const d = percentiles(ms.map((m) => m.delayNs));
  const tr = percentiles(tracking.map((x) => Math.abs(x)));
  return {
    version,
    measurements: ms.length,
    chronyUs: { p50: c.p50 / 1000, p99: c.p99 / 1000, max: c.max / 1000 },
    chronyRttUs: { min: Math.min(...ms.map((m) => m.delayNs)) / 1000, p50: d.p50 / 1000, p99: d.p99 / 1000 },
    chronyTrackingUs: { n: tracking.length, p50: tr.p50 / 1000, p99: tr.p99 / 1000, max: tr.max / 1000 },
    ratio: {
      precision: { p50: precision.p50 / c.p50, p99: precision.p99 / c.p99 },
      clockError: { p50: clockErr.p50 / c.p50, p99: clockErr.p99 / c.p99 },
    },
  };
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
