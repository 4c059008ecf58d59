/**
 * An attacker on the LAN, for the security tests: a replayer that captures
 * the group's datagrams and sends them again later, and a flooder that sends
 * malformed and random datagrams to an address and port.
 *
 * It runs as its own process inside a host of the LAN (Host.spawn: `ip netns
 * exec`), so that its datagrams come from another "machine", and it holds no
 * key: it captures and replays bytes, signed or not, exactly as they were.
 * This file is both the library the tests call and the script they run:
 *
 *     node attacker.js replay <group> <port> <types,...>   (stdin: stop, replay, replay-reverse, exit)
 *     node attacker.js flood <json FloodPlan>
 *
 * Each prints JSON lines on stdout: {"ready":true} once bound, then one line
 * per command (replayer) or one result line (flooder).
 */
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decode, encode } from '../../lib/wire/codec.js';
import { createKeyring } from '../../lib/wire/keys.js';
import { MessageType, PROTOCOL_VERSION, type Message } from '../../lib/wire/messages.js';
import { mulberry32, type Prng } from './prng.js';
import type { Host } from './netns.js';

export const ATTACKER_JS = fileURLToPath(import.meta.url);

// ------------------------------------------------------------ replayer

/** What the replayer captured: datagrams per message type, and their (epoch, round) range. */
export interface Capture {
  count: number;
  byType: Record<string, number>;
  /** Every captured datagram's header: type, sender (16 hex digits), epoch, round, key id, length. */
  headers: { type: number; sender: string; epoch: number; round: number; keyId: number; bytes: number }[];
}

export interface Replayer {
  /** Stops capturing; what was captured. */
  stopCapture(): Promise<Capture>;
  /** Sends every captured datagram to the group again, in capture order (or newest first); how many were sent. */
  replay(order?: 'oldest-first' | 'newest-first'): Promise<{ sent: number; errors: number }>;
  /** Ends the process. */
  close(): Promise<void>;
}

/**
 * Starts a replayer in `host`: joins `group`, binds `port` (shared with
 * nothing else in that host), and captures every datagram whose message
 * type (header byte 3) is in `types`, from the moment this resolves.
 */
export async function startReplayer(host: Host, group: string, port: number, types: MessageType[]): Promise<Replayer> {
  const child = host.spawn(process.execPath, [ATTACKER_JS, 'replay', group, String(port), types.join(',')]);
  const lines = new JsonLines(child, `replayer in ${host.name}`);
  await lines.next();
  const ask = async <T>(cmd: string): Promise<T> => {
    child.stdin!.write(`${cmd}\n`);
    return (await lines.next()) as T;
  };
  return {
    stopCapture: () => ask<Capture>('stop'),
    replay: (order = 'oldest-first') => ask<{ sent: number; errors: number }>(order === 'oldest-first' ? 'replay' : 'replay-reverse'),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end('exit\n');
      await exited;
    },
  };
}

function replayerMain(group: string, port: number, types: Set<number>): void {
  const captured: Buffer[] = [];
  let capturing = true;
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  s.on('message', (msg) => {
    if (capturing && msg.length >= 4 && types.has(msg[3]!)) captured.push(Buffer.from(msg));
  });
  s.bind(port, () => {
    s.addMembership(group); // no interface given: the host's route 224.0.0.0/4 picks eth0
    out({ ready: true });
  });
  onLines(async (cmd) => {
    if (cmd === 'stop') {
      capturing = false;
      const byType: Record<string, number> = {};
      for (const b of captured) byType[MessageType[b[3]!] ?? String(b[3])] = (byType[MessageType[b[3]!] ?? String(b[3])] ?? 0) + 1;
      const headers = captured.map((b) => ({
        type: b[3]!,
        sender: b.length >= 16 ? b.subarray(8, 16).toString('hex') : '',
        epoch: b.length >= 24 ? b.readUInt32BE(16) : -1,
        round: b.length >= 24 ? b.readUInt32BE(20) : -1,
        keyId: b.length >= 7 ? b[6]! : -1,
        bytes: b.length,
      }));
      out({ count: captured.length, byType, headers } satisfies Capture);
    } else if (cmd === 'replay' || cmd === 'replay-reverse') {
      let errors = 0;
      for (const b of cmd === 'replay' ? captured : [...captured].reverse()) {
        await new Promise<void>((r) => s.send(b, port, group, (err) => ((errors += err ? 1 : 0), r())));
      }
      out({ sent: captured.length - errors, errors });
    } else if (cmd === 'exit') {
      s.close();
      process.exit(0);
    }
  });
}

// ------------------------------------------------------------ flooder

/** The kinds of junk the flooder sends; each is malformed for the receiving group. */
export const FLOOD_KINDS = [
  'random-bytes', // random length 0..1472, random content
  'garbage-body', // a well-formed header (magic, version 1, type 1..7, domain, lengths that add up) over a random body
  'truncated', // a valid datagram cut short
  'wrong-domain', // a valid datagram of another domain
  'wrong-version', // a valid datagram with another protocol version
  'bad-magic', // a valid datagram with a changed magic
  'unknown-type', // a valid datagram with message type 0 or 8..255
  'forged-tag', // a valid datagram with key id 1 and a random tag
  'unsigned', // a valid datagram without a tag (only when the group has keys: an unsigned group would accept it)
] as const;
export type FloodKind = (typeof FLOOD_KINDS)[number];

export interface FloodTarget {
  address: string;
  port: number;
  /** Datagrams to send there. */
  count: number;
}

export interface FloodPlan {
  targets: FloodTarget[];
  seed: number;
  /** The group's domain. */
  domain: number;
  /** The key ids of the group's key file ([] when it runs without keys). */
  keyIds: number[];
  /** Datagrams per second, over all targets. */
  ratePerSecond: number;
}

export interface FloodResult {
  sent: number;
  errors: number;
  durationMs: number;
  byKind: Record<string, number>;
  /** Per target (same order as the plan): what the receiver's decoder says of what was sent there, by reason. */
  expectedReasons: Record<string, number>[];
}

/** Runs the flooder in `host` to completion. */
export async function flood(host: Host, plan: FloodPlan, timeoutMs = 60_000): Promise<FloodResult> {
  const r = await host.exec(process.execPath, [ATTACKER_JS, 'flood', JSON.stringify(plan)], { timeoutMs });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !last.startsWith('{')) throw new Error(`flooder in ${host.name} failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`);
  return JSON.parse(last) as FloodResult;
}

/** A valid message of a random type with random fields (header from the plan). */
function validMessage(rnd: Prng, domain: number): Message {
  const h = { domain, sender: rnd.u64(), epoch: rnd.int(2 ** 32), round: rnd.int(2 ** 32) };
  const name = `n${rnd.int(1e6)}`;
  switch (rnd.int(7)) {
    case 0:
      return { ...h, type: MessageType.Sync, masterTimeNs: rnd.i64(), priority: rnd.int(256), pinned: rnd.bool(), intervalMs: 1000, collectMs: 500, unicastAddress: '0.0.0.0', unicastPort: 1 + rnd.int(65535), probes: 1 + rnd.int(64), steps: rnd.int(256), reference: rnd.bool(), name };
    case 1:
      return { ...h, type: MessageType.TimeRequest, nonce: rnd.u64(), originNs: rnd.i64() };
    case 2:
      return { ...h, type: MessageType.TimeReply, nonce: rnd.u64(), originNs: rnd.i64(), receiveNs: rnd.i64(), transmitNs: rnd.i64() };
    case 3:
      return { ...h, type: MessageType.Report, offsetNs: rnd.i64(), delayNs: BigInt(rnd.int(1e9)), frequencyPpb: null, name };
    case 4:
      return { ...h, type: MessageType.Adjust, part: 0, parts: 1, averageNs: rnd.i64(), commonPpb: 0, rangeFirst: 0n, rangeLast: 0xffff_ffff_ffff_ffffn, full: rnd.bool(), entries: [{ node: rnd.u64(), adjustmentNs: rnd.i64(), outlier: false, faulty: false }] };
    case 5:
      return { ...h, type: MessageType.Claim, priority: 1 + rnd.int(255), name };
    default:
      return { ...h, type: MessageType.Leave, name };
  }
}

/** One datagram of `kind`, or null when this kind does not apply to the group (unsigned junk to a group without keys). */
function junk(rnd: Prng, kind: FloodKind, plan: FloodPlan): Buffer | null {
  const valid = (): Buffer => encode(validMessage(rnd, plan.domain), rnd.bool() ? { keyId: 1, key: rnd.bytes(32) } : undefined);
  switch (kind) {
    case 'random-bytes':
      return rnd.bytes(rnd.int(8) === 0 ? rnd.int(1473) : rnd.int(120));
    case 'garbage-body': {
      const bodyBytes = rnd.int(200);
      const keyId = plan.keyIds.length > 0 ? rnd.pick([0, 1, 2, 7, 255]) : rnd.int(4) === 0 ? 1 : 0;
      const b = Buffer.concat([Buffer.alloc(26), rnd.bytes(bodyBytes), keyId ? rnd.bytes(32) : Buffer.alloc(0)]);
      b.writeUInt16BE(0x4244, 0);
      b[2] = PROTOCOL_VERSION;
      b[3] = 1 + rnd.int(7);
      b.writeUInt16BE(plan.domain, 4);
      b[6] = keyId;
      b[7] = rnd.int(8) === 0 ? 1 + rnd.int(255) : 0;
      rnd.bytes(16).copy(b, 8);
      b.writeUInt16BE(bodyBytes, 24);
      return b;
    }
    case 'truncated': {
      const b = valid();
      return b.subarray(0, rnd.int(b.length));
    }
    case 'wrong-domain': {
      const b = encode(validMessage(rnd, (plan.domain + 1 + rnd.int(0xfffe)) % 0x10000));
      return b;
    }
    case 'wrong-version': {
      const b = valid();
      b[2] = (PROTOCOL_VERSION + 1 + rnd.int(255)) % 256;
      return b;
    }
    case 'bad-magic': {
      const b = valid();
      b[rnd.int(2)]! ^= 1 + rnd.int(255);
      return b;
    }
    case 'unknown-type': {
      const b = valid();
      b[3] = rnd.bool() ? 0 : 8 + rnd.int(248);
      return b;
    }
    case 'forged-tag':
      return encode(validMessage(rnd, plan.domain), { keyId: plan.keyIds[0] ?? 1, key: rnd.bytes(32) });
    case 'unsigned':
      return plan.keyIds.length > 0 ? encode(validMessage(rnd, plan.domain)) : null;
  }
}

/** A pool of distinct malformed datagrams, each checked against the receiver's decoder. */
function junkPool(plan: FloodPlan, size: number): { data: Buffer; kind: FloodKind; reason: string }[] {
  const rnd = mulberry32(plan.seed);
  // Keys with the group's ids but other secrets: a forged tag fails against either, with the same reason.
  const keys = plan.keyIds.length > 0 ? createKeyring(plan.keyIds.map((id) => [id, rnd.bytes(32)] as const)) : undefined;
  const pool: { data: Buffer; kind: FloodKind; reason: string }[] = [];
  for (let i = 0; pool.length < size; i++) {
    const kind = FLOOD_KINDS[i % FLOOD_KINDS.length]!;
    const data = junk(rnd, kind, plan);
    if (data === null) continue;
    const r = decode(data, { domain: plan.domain, keys });
    if (r.ok) continue; // by chance well-formed: not junk, leave it out
    pool.push({ data, kind, reason: r.reason });
  }
  return pool;
}

async function floodMain(plan: FloodPlan): Promise<void> {
  const pool = junkPool(plan, 4096);
  // IPv6 targets: a udp6 socket, its multicast sent on the host's link (a link-local group needs one).
  const v6 = plan.targets.some((t) => t.address.includes(':'));
  const s = createSocket(v6 ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, r));
  if (v6) s.setMulticastInterface('::%eth0');
  s.setSendBufferSize(4 * 1024 * 1024);
  const byKind: Record<string, number> = {};
  const expectedReasons = plan.targets.map(() => ({}) as Record<string, number>);
  const total = plan.targets.reduce((n, t) => n + t.count, 0);
  const left = plan.targets.map((t) => t.count);
  let sent = 0;
  let errors = 0;
  let next = 0;
  const batch = 100;
  const started = process.hrtime.bigint();
  while (sent + errors < total) {
    const sends: Promise<void>[] = [];
    for (let i = 0; i < batch && left.some((n) => n > 0); i++) {
      // Interleave the targets in proportion to what each has left.
      const ti = left.indexOf(Math.max(...left));
      left[ti]! -= 1;
      const j = next++ % pool.length;
      const item = pool[j]!;
      const t = plan.targets[ti]!;
      byKind[item.kind] = (byKind[item.kind] ?? 0) + 1;
      expectedReasons[ti]![item.reason] = (expectedReasons[ti]![item.reason] ?? 0) + 1;
      sends.push(new Promise((r) => s.send(item.data, t.port, t.address, (err) => ((err ? errors++ : sent++), r()))));
    }
    await Promise.all(sends);
    // Pace: stay on the planned rate.
    const dueNs = BigInt(Math.round(((sent + errors) / plan.ratePerSecond) * 1e9));
    const aheadMs = Number(dueNs - (process.hrtime.bigint() - started)) / 1e6;
    if (aheadMs > 0) await new Promise((r) => setTimeout(r, aheadMs));
    else await new Promise((r) => setImmediate(r));
  }
  const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
  s.close();
  out({ sent, errors, durationMs, byKind, expectedReasons } satisfies FloodResult);
}

// ------------------------------------------------------------ plumbing

function out(x: unknown): void {
  process.stdout.write(`${JSON.stringify(x)}\n`);
}

function onLines(fn: (line: string) => Promise<void>): void {
  let buf = '';
  let chain = Promise.resolve();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      chain = chain.then(() => fn(line));
    }
  });
  process.stdin.on('end', () => void chain.then(() => process.exit(0)));
}

/** A child's stdout as JSON lines, one at a time; rejects if it exits first. */
class JsonLines {
  private readonly items: unknown[] = [];
  private waiting: { resolve: (x: unknown) => void; reject: (e: Error) => void } | null = null;
  private stderr = '';
  private ended: string | null = null;

  constructor(child: ChildProcess, label: string) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.push(JSON.parse(line));
        } catch {
          this.stderr += `(not JSON on stdout) ${line}\n`;
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    child.stdin!.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      this.ended = `${label} exited (${code ?? signal}): ${this.stderr}`;
      this.waiting?.reject(new Error(this.ended));
      this.waiting = null;
    });
  }

  private push(x: unknown): void {
    if (this.waiting) {
      this.waiting.resolve(x);
      this.waiting = null;
    } else this.items.push(x);
  }

  next(timeoutMs = 10_000): Promise<unknown> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.ended) return Promise.reject(new Error(this.ended));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (x) => (clearTimeout(timer), resolve(x)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }
}

// ------------------------------------------------------------ entry point

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'replay') {
    replayerMain(rest[0]!, Number(rest[1]), new Set(rest[2]!.split(',').map(Number)));
  } else if (mode === 'flood') {
    floodMain(JSON.parse(rest[0]!) as FloodPlan).catch((err: Error) => {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exit(1);
    });
  } else {
    process.stderr.write('usage: attacker.js replay <group> <port> <types> | flood <json>\n');
    process.exit(2);
  }
}
