/**
 * A lying member, for real-process tests and the fault benchmark: the real
 * daemon (real engine, real sockets, the group's key if it is given one),
 * except that every REPORT it sends says its offset is LIE_NS more than it
 * measured. A buggy or malicious member that holds the key looks like this;
 * no authentication can tell. Only the fault-tolerant average can.
 *
 *     node liar.js <lieNs> run --node-id ... (any `berkeleyd run` options)
 *
 * It keeps its own clock right, as a careful liar would: the master's entry
 * for it answers the offset it claimed, so it adds its lie back before its
 * engine sees the entry (which checks that the entry answers what it
 * reported, and would otherwise refuse it).
 */
import { fileURLToPath } from 'node:url';
import { Daemon } from '../../lib/daemon/daemon.js';
import { MessageType, type Message } from '../../lib/wire/messages.js';

export const LIAR_JS = fileURLToPath(import.meta.url);

/** Cluster MemberSpec.wrap for a liar: runs this script instead of berkeleyd.js, with the same arguments. */
export const lying =
  (lieNs: bigint) =>
  (cmd: string, args: string[]): [string, string[]] => [cmd, [LIAR_JS, String(lieNs), ...args.slice(1)]];

if (process.argv[1] === LIAR_JS) {
  const lieNs = BigInt(process.argv[2]!);
  process.argv.splice(2, 1);
  // The daemon's one send path, wrapped; TypeScript's private is a compile-time word.
  const proto = Daemon.prototype as unknown as { send(to: unknown, msg: Message): void; feed(ev: { type: string; msg?: Message }): void };
  const send = proto.send;
  proto.send = function (this: unknown, to: unknown, msg: Message): void {
    const out = msg.type === MessageType.Report ? { ...msg, offsetNs: msg.offsetNs + lieNs } : msg;
    send.call(this, to, out);
  };
  const feed = proto.feed;
  proto.feed = function (this: { node: { id: bigint } }, ev: { type: string; msg?: Message }): void {
    const msg = ev.msg;
    if (ev.type === 'datagram' && msg?.type === MessageType.Adjust) {
      const entries = msg.entries.map((e) => (e.node === this.node.id ? { ...e, adjustmentNs: e.adjustmentNs + lieNs } : e));
      ev = { ...ev, msg: { ...msg, entries } };
    }
    feed.call(this, ev);
  };
  await import('../../bin/berkeleyd.js');
}
