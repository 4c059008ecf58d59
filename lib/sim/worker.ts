/**
 * `berkeleyd simulate` runs the simulation in a worker thread, for one
 * reason: the size of V8's young generation. A simulated group allocates a
 * great many short-lived objects (every datagram, action and bigint), and
 * with thousands of nodes the default young generation (16 MB semi-spaces)
 * promotes them to the old one before they die: at 10,000 nodes a quarter
 * of the run went to the garbage collector. A worker takes the size as a
 * resource limit; the daemon, in the main thread, keeps Node's default.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { formatReport, summarize } from './report.js';
import { runSimulation, type SimOptions } from './simulator.js';

/** Young generation for the simulation, MB (V8 splits it into two 64 MB semi-spaces and room for large objects). */
export const SIM_YOUNG_GENERATION_MB = 192;

interface Job {
  options: SimOptions;
  rounds: boolean;
  json: boolean;
}

/** The report as `berkeleyd simulate` prints it: the text, and with json the summary as one more line. */
export function reportOf(job: Job): string {
  // The report reads no event log: at thousands of nodes it would be millions of records.
  const result = runSimulation(job.options, { keepEvents: false });
  const summary = summarize(result);
  return formatReport(result, summary, { rounds: job.rounds }) + '\n' + (job.json ? JSON.stringify(summary) + '\n' : '');
}

/** reportOf in a worker thread with a larger young generation. */
export function reportInWorker(job: Job): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: job, resourceLimits: { maxYoungGenerationSizeMb: SIM_YOUNG_GENERATION_MB } });
    worker.once('message', (text: string) => resolve(text));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`simulation worker exited with status ${code}`)));
  });
}

if (!isMainThread && parentPort !== null && (workerData as { options?: unknown } | null)?.options !== undefined) {
  parentPort.postMessage(reportOf(workerData as Job));
}
