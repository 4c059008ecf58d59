/**
 * npm run bench:clockbound: the cost of berkeleyd/client's now(), per call.
 * A segment in tmpfs, rewritten once a second as the daemon does (by this
 * process, between batches), read by now() N times; each call timed on its
 * own (CLOCK_MONOTONIC around it: the two readings' own cost, about 30 ns
 * here, is in the figure) and the whole run's mean besides.
 */
import { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { int } from '../bin/parse.js';
import { ClockStatus } from '../lib/clock/clockbound-layout.js';
import { ClockBoundWriter, coarseMonotonicNs } from '../lib/clock/clockbound.js';
import { now } from '../lib/client.js';

const program = new Command('bench:clockbound')
  .description("the cost of berkeleyd/client's now() per call: median, p99, mean")
  .option('--calls <n>', 'calls to time', int(1000, 10_000_000, 'calls'), 100_000)
  .option('--json', 'one JSON object as the last line')
  .action((o: { calls: number; json?: boolean }) => {
    const dir = mkdtempSync('/dev/shm/berkeleyd-bench-cb-');
    const path = join(dir, 'shm0');
    const record = () => {
      const c = coarseMonotonicNs();
      return { asOfNs: c, voidAfterNs: c + 5_000_000_000n, boundNs: 25_000n, disruptionMarker: 0n, maxDriftPpb: 5000, status: ClockStatus.Synchronized, disruptionSupport: false };
    };
    const w = ClockBoundWriter.open(path, record());
    try {
      for (let i = 0; i < 10_000; i++) now(path); // warm up: JIT, the mapping
      const ns = new Float64Array(o.calls);
      let lastWrite = process.hrtime.bigint();
      const started = process.hrtime.bigint();
      for (let i = 0; i < o.calls; i++) {
        const a = process.hrtime.bigint();
        now(path);
        ns[i] = Number(process.hrtime.bigint() - a);
        if (a - lastWrite > 1_000_000_000n) {
          w.write(record());
          lastWrite = a;
        }
      }
      const meanNs = Number(process.hrtime.bigint() - started) / o.calls;
      ns.sort();
      const at = (p: number): number => ns[Math.min(ns.length - 1, Math.floor((p / 100) * ns.length))]!;
      const r = { calls: o.calls, p50Ns: at(50), p99Ns: at(99), maxNs: ns[ns.length - 1]!, meanNs: Math.round(meanNs), cpu: cpus()[0]?.model ?? '?', node: process.version };
      console.log(`now(): ${r.calls} calls, p50 ${(r.p50Ns / 1000).toFixed(2)} µs, p99 ${(r.p99Ns / 1000).toFixed(2)} µs, max ${(r.maxNs / 1000).toFixed(1)} µs, mean ${(r.meanNs / 1000).toFixed(2)} µs (${r.cpu}, Node ${r.node})`);
      if (o.json) console.log(JSON.stringify(r));
    } finally {
      w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

program.parse();
