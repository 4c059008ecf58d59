/**
 * Logs: `debug` namespaces under berkeleyd: (round, wire, clock, election,
 * net, control), enabled with DEBUG=berkeleyd:*. Warnings and errors print
 * to standard error whatever DEBUG says.
 */
import createDebug from 'debug';

// Under systemd the journal stamps every line (JOURNAL_STREAM is set when
// stderr is connected to it): one timestamp, not debug's date as well.
if (process.env.JOURNAL_STREAM) (createDebug as unknown as { inspectOpts: { hideDate?: boolean } }).inspectOpts.hideDate = true;

export const log = {
  round: createDebug('berkeleyd:round'),
  wire: createDebug('berkeleyd:wire'),
  clock: createDebug('berkeleyd:clock'),
  election: createDebug('berkeleyd:election'),
  net: createDebug('berkeleyd:net'),
  control: createDebug('berkeleyd:control'),
};

export type Warn = (message: string) => void;

/** Warnings and errors: always printed, one line each, with the node's name. */
export function warner(name: string, stream: NodeJS.WritableStream = process.stderr): { warn: Warn; error: Warn } {
  return {
    warn: (m) => stream.write(`berkeleyd[${name}]: warning: ${m}\n`),
    error: (m) => stream.write(`berkeleyd[${name}]: error: ${m}\n`),
  };
}
