/**
 * The multi-host harness (helpers/netns.ts): hosts in network namespaces on
 * one bridge reach each other by unicast and multicast, a pulled cable and a
 * partition cut a host off, and nothing survives the LAN: not after
 * destroy(), not after an error inside withLan, not after the test process
 * dies.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createLan, netnsAvailable, processAlive, withLan, type Host, type Lan } from './helpers/netns.js';

const avail = netnsAvailable();
const nstest = avail.ok ? test : test.skip;
const skipped = avail.ok ? '' : ` (skipped: ${avail.why})`;

const PORT = 5353 + randomInt(1000);
const GROUP = `239.255.${randomInt(256)}.${randomInt(1, 255)}`;
const WAIT_MS = 5_000;

/** Prints {"ready":true} once bound (and joined), then {"from","text"} per datagram. */
const RECEIVER = `
const s = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true });
const [port, group] = process.argv.slice(1);
s.on('message', (m, r) => console.log(JSON.stringify({ from: r.address, text: m.toString() })));
s.bind(Number(port), () => {
  if (group) s.addMembership(group); // no interface given: the route 224.0.0.0/4 picks eth0
  console.log(JSON.stringify({ ready: true }));
});`;

/** Reads "address port text" lines; sends text; prints {"sent","error"}. */
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
s.bind(() => console.log(JSON.stringify({ ready: true })));
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [address, port, text] = line.split(' ');
  s.send(text, Number(port), address, (err) => console.log(JSON.stringify({ sent: text, error: err ? err.code : null })));
});`;

interface Item {
  ready?: boolean;
  from?: string;
  text?: string;
  sent?: string;
  error?: string | null;
}

/** Every line of every Lines, as it arrives. */
const arrivals = new EventEmitter();
arrivals.setMaxListeners(0);

/** A process's stdout as JSON lines. */
class Lines {
  readonly items: Item[] = [];
  private stderr = '';
  private exit: string | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        this.items.push(JSON.parse(buffer.slice(0, nl)) as Item);
        buffer = buffer.slice(nl + 1);
        arrivals.emit('line');
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    child.once('exit', (code, signal) => {
      this.exit = `${label} exited (${code ?? signal}): ${this.stderr}`;
      arrivals.emit('line');
    });
  }

  texts(): string[] {
    return this.items.flatMap((i) => (i.text === undefined ? [] : [i.text]));
  }

  got(text: string, from?: string): boolean {
    return this.items.some((i) => i.text === text && (from === undefined || i.from === from));
  }

  /** Throws if the process has exited (a script error shows up here). */
  check(): void {
    if (this.exit !== undefined) throw new Error(this.exit);
  }
}

/** Resolves true when cond() holds, false after ms; rechecks on every arriving line. */
async function until(cond: () => boolean, ms: number, watch: readonly Lines[]): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    for (const l of watch) l.check();
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), left);
    try {
      await once(arrivals, 'line', { signal: ac.signal });
    } catch {
      // timed out: the loop decides
    } finally {
      clearTimeout(timer);
    }
  }
  return true;
}

async function startReceiver(h: Host, group?: string): Promise<Lines> {
  const lines = new Lines(h.spawn(process.execPath, ['-e', RECEIVER, String(PORT), ...(group ? [group] : [])]), `receiver on ${h.name}`);
  if (!(await until(() => lines.items.some((i) => i.ready), WAIT_MS, [lines]))) throw new Error(`${lines.label} not ready`);
  return lines;
}

async function startSender(h: Host): Promise<Lines> {
  const lines = new Lines(h.spawn(process.execPath, ['-e', SENDER]), `sender on ${h.name}`);
  if (!(await until(() => lines.items.some((i) => i.ready), WAIT_MS, [lines]))) throw new Error(`${lines.label} not ready`);
  return lines;
}

/**
 * Sends text to address until every receiver has it from the sender's host
 * (UDP may drop a datagram; a dropped one is sent again every 200 ms).
 */
async function deliver(t: ExecutionContext, sender: Lines, from: Host, address: string, text: string, receivers: Lines[]): Promise<void> {
  const done = (): boolean => receivers.every((r) => r.got(text, from.address));
  const deadline = Date.now() + WAIT_MS;
  let sends = 0;
  while (!done() && Date.now() < deadline) {
    sender.child.stdin!.write(`${address} ${PORT} ${text}\n`);
    sends++;
    await until(done, Math.min(200, deadline - Date.now()), [sender, ...receivers]);
  }
  const failed = sender.items.find((i) => i.sent === text && i.error);
  t.true(done(), `"${text}" from ${from.name} to ${address} did not reach ${receivers.filter((r) => !r.got(text)).map((r) => r.label).join(', ')}${failed ? ` (send error ${failed.error})` : ''}`);
  if (sends > 1) t.log(`"${text}" needed ${sends} sends`);
}

function listNamespaces(): string[] {
  // stderr piped: `ip netns list` complains about namespaces deleted under it.
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

function assertGone(t: ExecutionContext, namespaces: readonly string[], pids: readonly number[]): void {
  const left = listNamespaces().filter((n) => namespaces.includes(n));
  t.deepEqual(left, [], 'namespaces left behind');
  t.deepEqual(
    pids.filter((p) => processAlive(p)),
    [],
    'processes left alive',
  );
}

// ---------------------------------------------------------------- traffic

nstest(`unicast: a host reaches another by its address${skipped}`, async (t) => {
  await withLan(t, { hosts: 3 }, async (lan) => {
    const [a, b] = lan.hosts as [Host, Host, Host];
    t.regex(a.address, /^10\.77\.\d+\.1$/);
    t.regex(b.address, /^10\.77\.\d+\.2$/);
    const rb = await startReceiver(b);
    await deliver(t, await startSender(a), a, b.address, 'unicast', [rb]);
  });
});

nstest(`multicast: a datagram from A to the group reaches B and C${skipped}`, async (t) => {
  await withLan(t, { hosts: 3 }, async (lan) => {
    const [a, b, c] = lan.hosts as [Host, Host, Host];
    const receivers = [await startReceiver(b, GROUP), await startReceiver(c, GROUP)];
    await deliver(t, await startSender(a), a, GROUP, 'multicast', receivers);
  });
});

nstest(`linkDown cuts C off while A reaches B; linkUp restores C${skipped}`, async (t) => {
  await withLan(t, { hosts: 3 }, async (lan) => {
    const [a, b, c] = lan.hosts as [Host, Host, Host];
    const [rb, rc] = [await startReceiver(b, GROUP), await startReceiver(c, GROUP)];
    const sender = await startSender(a);
    await deliver(t, sender, a, GROUP, 'before', [rb, rc]);
    await lan.linkDown(c);
    await deliver(t, sender, a, GROUP, 'during', [rb]);
    await lan.linkUp(c);
    await deliver(t, sender, a, GROUP, 'after', [rb, rc]);
    // A link that is down drops frames; nothing waits in a queue. So if
    // "during" had reached C, it would have arrived before "after".
    t.false(rc.texts().includes('during'), `C heard ${JSON.stringify(rc.texts())}`);
  });
});

nstest(`partition splits the group; heal joins it again${skipped}`, async (t) => {
  await withLan(t, { hosts: 3 }, async (lan) => {
    const [a, b, c] = lan.hosts as [Host, Host, Host];
    const [rb, rc] = [await startReceiver(b, GROUP), await startReceiver(c, GROUP)];
    const sender = await startSender(a);
    await lan.partition([a, b], [c]);
    await deliver(t, sender, a, GROUP, 'split', [rb]);
    await lan.heal();
    await deliver(t, sender, a, GROUP, 'healed', [rb, rc]);
    t.false(rc.texts().includes('split'), `C heard ${JSON.stringify(rc.texts())}`);
  });
});

// ---------------------------------------------------------------- cleanup

nstest(`destroy deletes every namespace and stops every process, even escaped ones${skipped}`, async (t) => {
  const lan: Lan = await createLan({ hosts: 3 });
  t.teardown(() => lan.destroy());
  t.deepEqual(
    listNamespaces().filter((n) => n.startsWith(`${lan.id}-`)).sort(),
    [...lan.namespaces].sort(),
  );
  const [a, b, c] = lan.hosts as [Host, Host, Host];
  a.spawn('sleep', ['600'], { stdio: 'ignore' });
  // Ignores SIGTERM: destroy must escalate to SIGKILL.
  b.spawn('sh', ['-c', 'trap "" TERM; sleep 600 & wait'], { stdio: 'ignore' });
  // A grandchild in a session of its own escapes the process-group kill;
  // the sweep of the namespace must find it.
  const escaped = await c.exec('sh', ['-c', 'setsid sleep 600 >/dev/null 2>&1 < /dev/null & echo $!']);
  const escapedPid = Number(escaped.stdout.trim());
  t.true(processAlive(escapedPid));
  const pids = [...lan.processes.map((p) => p.pid!), escapedPid];
  const started = Date.now();
  await Promise.all([lan.destroy(), lan.destroy()]);
  await lan.destroy();
  t.log(`destroy took ${Date.now() - started} ms`);
  assertGone(t, lan.namespaces, pids);
  t.throws(() => a.spawn('true', []), { message: /destroyed/ });
});

nstest(`an error thrown inside withLan still leaves nothing behind${skipped}`, async (t) => {
  let namespaces: readonly string[] = [];
  const pids: number[] = [];
  await t.throwsAsync(
    withLan(t, { hosts: 2 }, async (lan) => {
      namespaces = lan.namespaces;
      pids.push(lan.hosts[0]!.spawn('sleep', ['600'], { stdio: 'ignore' }).pid!);
      pids.push(lan.hosts[1]!.spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }).pid!);
      throw new Error('deliberate');
    }),
    { message: 'deliberate' },
  );
  t.is(namespaces.length, 3);
  assertGone(t, namespaces, pids);
});

/**
 * A test process that creates a LAN, starts a process in it, prints what it
 * made, and then dies as told: 'throw' (uncaught exception on a line from
 * stdin: the 'exit'
 * handler cleans up), 'SIGTERM' (the signal handler cleans up), 'SIGKILL'
 * (nothing runs in it: the watchdog cleans up).
 */
const CRASHER = `
import { createLan } from ${JSON.stringify(new URL('./helpers/netns.js', import.meta.url).href)};
const lan = await createLan({ hosts: 2, prefix: 'bkdcrash' });
const child = lan.hosts[1].spawn('sleep', ['600'], { stdio: 'ignore' });
console.log(JSON.stringify({ namespaces: lan.namespaces, pids: [child.pid] }));
// Dies when told to; stdin keeps it alive meanwhile.
process.stdin.once('data', () => { throw new Error('deliberate crash'); });
`;

for (const death of ['throw', 'SIGTERM', 'SIGKILL'] as const) {
  nstest(`a test process that dies (${death}) leaves nothing behind${skipped}`, async (t) => {
    const crasher = spawn(process.execPath, ['--input-type=module', '-e', CRASHER], { stdio: ['pipe', 'pipe', 'pipe'] });
    t.teardown(() => {
      if (crasher.exitCode === null && crasher.signalCode === null) crasher.kill('SIGKILL');
    });
    let stderr = '';
    crasher.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = once(crasher, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const [line] = (await Promise.race([
      once(crasher.stdout.setEncoding('utf8'), 'data'),
      exited.then(() => {
        throw new Error(`crasher exited early: ${stderr}`);
      }),
    ])) as [string];
    const made = JSON.parse(line.split('\n')[0]!) as { namespaces: string[]; pids: number[] };
    t.is(made.namespaces.length, 3);
    t.deepEqual(listNamespaces().filter((n) => made.namespaces.includes(n)).sort(), [...made.namespaces].sort());
    if (death === 'throw') crasher.stdin.write('die\n');
    else crasher.kill(death);
    const [code, signal] = await exited;
    t.log(`crasher ended with ${signal ?? `code ${code}`}`);
    if (death === 'throw') {
      t.regex(stderr, /deliberate crash/);
      t.is(code, 1);
    } else {
      t.is(signal, death, 'died of the signal, as it would have without our handler');
    }
    if (death === 'SIGKILL') {
      // The watchdog works after the fact: give it a moment.
      const gone = await pollUntil(() => listNamespaces().every((n) => !made.namespaces.includes(n)) && !made.pids.some(processAlive), WAIT_MS);
      t.true(gone, 'watchdog cleaned up');
    }
    // The handlers clean up before the process ends (the watchdog would take
    // 300 ms or more), so nothing is left right now.
    assertGone(t, made.namespaces, made.pids);
  });
}

async function pollUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
