/**
 * Logs: `debug` namespaces under berkeleyd: (round, wire, clock, election,
 * net, control), enabled with DEBUG=berkeleyd:*. Warnings and errors print
 * to standard error whatever DEBUG says.
 */
import createDebug from 'debug';

export const log = {
  round: createDebug('berkeleyd:round'),
  wire: createDebug('berkeleyd:wire'),
  clock: createDebug('berkeleyd:clock'),
  election: createDebug('berkeleyd:election'),
  net: createDebug('berkeleyd:net'),
  control: createDebug('berkeleyd:control'),
};

export type Warn = (message: string) => void;

/** Warnings and errors (and the few lines an operator must see, info): always printed, one line each, with the node's name. */
export function warner(name: string, stream: NodeJS.WritableStream = process.stderr): { warn: Warn; error: Warn; info: Warn } {
  return {
    info: (m) => stream.write(`berkeleyd[${name}]: ${m}\n`),
    warn: (m) => stream.write(`berkeleyd[${name}]: warning: ${m}\n`),
    error: (m) => stream.write(`berkeleyd[${name}]: error: ${m}\n`),
  };
}
