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

/**
 * Under journald, a line may start with its syslog priority (<3> error,
 * <4> warning, <6> info): `journalctl -p warning` then finds ours.
 */
const PRIORITY = { error: '<3>', warning: '<4>', info: '<6>' } as const;

/** One line to standard error: `berkeleyd[name]: warning: message`. */
export function logLine(level: 'error' | 'warning' | 'info', name: string, m: string, stream: NodeJS.WritableStream = process.stderr): void {
  const prefix = process.env.JOURNAL_STREAM ? PRIORITY[level] : '';
  stream.write(`${prefix}berkeleyd[${name}]: ${level === 'info' ? '' : `${level}: `}${m}\n`);
}

/** Warnings and errors (and the few lines an operator must see, info): always printed, one line each, with the node's name. */
export function warner(name: string, stream: NodeJS.WritableStream = process.stderr): { warn: Warn; error: Warn; info: Warn } {
  return {
    info: (m) => logLine('info', name, m, stream),
    warn: (m) => logLine('warning', name, m, stream),
    error: (m) => logLine('error', name, m, stream),
  };
}
