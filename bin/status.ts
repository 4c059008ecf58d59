/**
 * `berkeleyd status` and `berkeleyd now`: ask a running daemon through its
 * control socket.
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { defaultControlPath, query } from '../lib/daemon/control.js';
import { formatStatus, formatNow } from '../lib/daemon/format.js';
import type { StatusJson } from '../lib/daemon/status.js';
import type { BoundJson } from '../lib/daemon/bound.js';
import { UsageError } from './usage.js';

/** The service's socket (RuntimeDirectory=berkeleyd): asked when no daemon of one's own answers at the default path. */
const SERVICE_SOCKET = '/run/berkeleyd/berkeleyd.sock';
const clientDefault = (): string => (!existsSync(defaultControlPath()) && existsSync(SERVICE_SOCKET) ? SERVICE_SOCKET : defaultControlPath());

const controlOption = (): Option =>
  new Option('--control <path>', `control socket of the daemon (default: ${defaultControlPath()} if it exists, else the service's ${SERVICE_SOCKET})`).env('BERKELEYD_CONTROL');

async function ask(path: string | undefined, command: string): Promise<any> {
  try {
    const reply = (await query(path ?? clientDefault(), command)) as { error?: string };
    if (reply && typeof reply === 'object' && 'error' in reply) throw new UsageError(`the daemon said: ${reply.error}`);
    return reply;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

export function statusCommand(): Command {
  return new Command('status')
    .description('show what a running daemon knows: role, master, offset, frequency, counters; on the master, the member table')
    .addOption(controlOption())
    .option('--json', 'one JSON object (times as decimal strings of nanoseconds); the same as --format json')
    .addOption(new Option('--format <format>', 'text, json (the status contract, see README) or prometheus (the text exposition that --metrics serves)').choices(['text', 'json', 'prometheus']).default('text'))
    .action(async (o) => {
      const format: string = o.json ? 'json' : o.format;
      if (format === 'prometheus') {
        const r = (await ask(o.control, 'metrics')) as { text: string };
        process.stdout.write(r.text);
        return;
      }
      const s = (await ask(o.control, 'status')) as StatusJson;
      process.stdout.write(format === 'json' ? JSON.stringify(s) + '\n' : formatStatus(s) + '\n');
    });
}

export function nowCommand(): Command {
  return new Command('now')
    .description("print the group clock of a running daemon, with the interval the group's time lies in: earliest, latest and the error bound (see docs/protocol.md, \"Error bound\")")
    .addOption(controlOption())
    .option('--json', 'one JSON object: groupTimeNs, monotonicNs, earliestNs, latestNs and errorBoundNs as decimal strings (the last three null without a bound), boundState (synchronized, free-running or none), boundWhy, boundDriftPpb')
    .action(async (o) => {
      const r = (await ask(o.control, 'now')) as { groupTimeNs: string; monotonicNs: string } & Partial<BoundJson>;
      process.stdout.write(o.json ? JSON.stringify(r) + '\n' : formatNow(BigInt(r.groupTimeNs), r.boundState === undefined ? undefined : (r as BoundJson)) + '\n');
    });
}
