/**
 * A LAN of hosts in network namespaces, for tests on real sockets between
 * "machines" that each have their own address and interface.
 *
 * Layout: one namespace holds the switch (a Linux bridge, STP off, forward
 * delay 0, multicast snooping off so that every group is flooded to every
 * port); each host is a namespace with `lo` up and one veth `eth0` cabled to
 * a bridge port, an address in a private subnet (default 10.77.<random>.0/24)
 * and a route 224.0.0.0/4 dev eth0, so that multicast works without
 * choosing an interface. With `family: 6` the hosts have IPv6 addresses
 * only: fe80::<i+1> and a unique local address in a random /64, both
 * without duplicate address detection (usable at once), and the kernel's
 * own route ff00::/8 dev eth0. Nothing touches the root namespace's networking:
 * every link is created inside our namespaces and dies with them.
 *
 * Cleanup is sacred. destroy() (idempotent) stops every process spawned
 * through a host (SIGTERM to its process group, SIGKILL after a grace
 * period), then kills whatever else still runs in our namespaces, then
 * deletes them. If the test process ends without destroy(), an 'exit'
 * handler (and SIGINT/SIGTERM/SIGHUP handlers on the main thread) do the
 * same synchronously; if it is killed outright, a detached watchdog shell,
 * started before any namespace exists and waiting on a pipe from us, sees
 * the pipe close and does it.
 *
 * Needs root, iproute2 (`ip`, `bridge`), and a kernel with veth and bridge.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';

export type NetnsAvailability = { ok: true } | { ok: false; why: string };

export interface LanOptions {
  /** Number of hosts, 1..250. */
  hosts: number;
  /** Start of every namespace name (letters, digits, "-", "_"). Default "bkd". */
  prefix?: string;
  /** IPv4 subnet "a.b.c.d/len" (len 8..30); host i gets the (i+1)th address. Default 10.77.<random>.0/24. */
  subnet?: string;
  /** destroy(): how long spawned processes get after SIGTERM before SIGKILL. Default 500 ms. */
  killGraceMs?: number;
  /** 4 (default): IPv4 addresses; 6: IPv6 addresses only (subnet is then ignored). */
  family?: 4 | 6;
}

export interface ExecResult {
  /** Exit code, or null when ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Host {
  /** "h0", "h1", ... */
  readonly name: string;
  /** Index in lan.hosts. */
  readonly index: number;
  /** The host's network namespace (for `ip netns exec`, `ip -n`). */
  readonly netns: string;
  /** Address on ifname: IPv4, or with family 6 the unique local IPv6 address (fdxx:...::<i+1>). */
  readonly address: string;
  readonly prefixLength: number;
  /** Family 6: the link-local address, fe80::<i+1> (reached as fe80::<i+1>%eth0); null otherwise. */
  readonly linkLocal: string | null;
  /** The host's only interface besides lo: "eth0". */
  readonly ifname: string;
  /**
   * Starts cmd inside the host (`ip netns exec`), in its own process group
   * (detached), tracked so that destroy() stops it. stdio defaults to pipes.
   */
  spawn(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Runs cmd inside the host to completion; never rejects on a non-zero exit. */
  exec(cmd: string, args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
}

export interface Lan {
  /** Common start of all our namespace names, e.g. "bkd4242-1-3". */
  readonly id: string;
  readonly hosts: readonly Host[];
  /** The switch's namespace; the bridge and its ports live there. */
  readonly switchNetns: string;
  /** The bridge's name inside switchNetns. */
  readonly bridge: string;
  /** "10.77.k.0/24", or "fdxx:xxxx:xxxx::/64" */
  readonly subnet: string;
  /** Every namespace this LAN created (switch first). */
  readonly namespaces: readonly string[];
  /** Every process spawned through a host, alive or not. */
  readonly processes: readonly ChildProcess[];
  /** Unplugs h's cable at the switch: h keeps its address and routes, but no frame passes. */
  linkDown(h: Host): Promise<void>;
  /** Plugs it back; resolves when the port forwards again. */
  linkUp(h: Host): Promise<void>;
  /** Splits the LAN: each group gets a switch of its own; hosts in no group stay on the main one. */
  partition(...groups: Host[][]): Promise<void>;
  /** Puts every host back on the main switch. */
  heal(): Promise<void>;
  /** Stops every spawned process and deletes every namespace and link. Idempotent. */
  destroy(): Promise<void>;
}

const IP = 'ip';
const BRIDGE = 'bridge';
const BRIDGE_OPTIONS = 'type bridge stp_state 0 forward_delay 0 mcast_snooping 0';
const MULTICAST = '224.0.0.0/4';
const IFNAME = 'eth0';
const WAIT_READY_MS = 5_000;

let availability: NetnsAvailability | undefined;

/** Whether createLan can work here: root, iproute2, namespaces, veth and bridge. Probed once. */
export function netnsAvailable(): NetnsAvailability {
  return (availability ??= probe());
}

function probe(): NetnsAvailability {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces need Linux, not ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, why: 'network namespaces need root' };
  const ns = `bkdprobe${process.pid}-${threadId}`;
  try {
    execFileSync(IP, ['netns', 'add', ns], { stdio: 'pipe' });
  } catch (err) {
    return { ok: false, why: `\`ip netns add\` failed: ${errorText(err)}` };
  }
  try {
    execFileSync(IP, ['-n', ns, '-batch', '-'], {
      stdio: 'pipe',
      input: `link add br0 ${BRIDGE_OPTIONS}\nlink add p0 type veth peer name p1\nlink set p0 master br0\n`,
    });
    execFileSync(BRIDGE, ['-n', ns, 'link', 'show'], { stdio: 'pipe' });
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `cannot build a bridge and veth pair in a namespace: ${errorText(err)}` };
  } finally {
    try {
      execFileSync(IP, ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      // nothing more to do
    }
  }
}

let lanCounter = 0;

export async function createLan(opts: LanOptions): Promise<Lan> {
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(`network namespaces unavailable: ${avail.why}`);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 250) throw new RangeError('hosts must be an integer from 1 to 250');
  const prefix = opts.prefix ?? 'bkd';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) throw new RangeError(`bad namespace prefix "${prefix}"`);
  const subnet = parseSubnet(opts.subnet ?? `10.77.${randomInt(256)}.0/24`);
  if (opts.hosts > 2 ** (32 - subnet.length) - 2) throw new RangeError(`${opts.hosts} hosts do not fit in ${subnet.text}`);
  const lan = new LanImpl(`${prefix}${process.pid}-${threadId}-${++lanCounter}`, opts.hosts, subnet, opts.killGraceMs ?? 500, opts.family === 6 ? randomUla() : null);
  try {
    await lan.build();
  } catch (err) {
    await lan.destroy();
    throw err;
  }
  return lan;
}

/** What withLan needs from ava's `t`. */
export interface TeardownContext {
  teardown(fn: () => Promise<void> | void): void;
}

/** Runs fn with a fresh LAN and always destroys it, whether fn returns or throws. */
export async function withLan<T>(t: TeardownContext, opts: LanOptions, fn: (lan: Lan) => Promise<T> | T): Promise<T> {
  const lan = await createLan(opts);
  t.teardown(() => lan.destroy());
  try {
    return await fn(lan);
  } finally {
    await lan.destroy();
  }
}

// ------------------------------------------------------------------ the LAN

interface Subnet {
  text: string;
  network: number;
  length: number;
}

class LanImpl implements Lan {
  readonly switchNetns: string;
  readonly bridge = 'br0';
  readonly subnet: string;
  readonly namespaces: string[];
  readonly hosts: HostImpl[];
  readonly processes: ChildProcess[] = [];
  private watchdog: ChildProcess | undefined;
  private destroying: Promise<void> | undefined;
  private segments = 1; // bridges br0 .. br<segments-1>

  constructor(
    readonly id: string,
    hostCount: number,
    subnet: Subnet,
    private readonly killGraceMs: number,
    /** Family 6: the /64 prefix ("fdxx:xxxx:xxxx:"); null: IPv4. */
    ula: string | null,
  ) {
    this.subnet = ula ? `${ula}:/64` : subnet.text;
    this.switchNetns = `${id}-sw`;
    this.hosts = Array.from({ length: hostCount }, (_, i) =>
      ula
        ? new HostImpl(this, i, `${id}-h${i}`, `${ula}:${(i + 1).toString(16)}`, 64, `fe80::${(i + 1).toString(16)}`)
        : new HostImpl(this, i, `${id}-h${i}`, intToIp(subnet.network + i + 1), subnet.length, null),
    );
    this.namespaces = [this.switchNetns, ...this.hosts.map((h) => h.netns)];
  }

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  async build(): Promise<void> {
    register(this);
    this.watchdog = startWatchdog(this.namespaces);
    await ipBatch([], this.namespaces.map((ns) => `netns add ${ns}`));
    await ipBatch(
      ['-n', this.switchNetns],
      [
        'link set lo up',
        `link add ${this.bridge} ${BRIDGE_OPTIONS}`,
        `link set ${this.bridge} addrgenmode none`,
        `link set ${this.bridge} up`,
        ...this.hosts.flatMap((h) => [
          `link add ${portOf(h)} type veth peer name ${IFNAME} netns ${h.netns}`,
          `link set ${portOf(h)} addrgenmode none`,
          `link set ${portOf(h)} master ${this.bridge} up`,
        ]),
      ],
    );
    await Promise.all(
      this.hosts.map((h) =>
        ipBatch(
          ['-n', h.netns],
          h.linkLocal
            ? [
                'link set lo up',
                `link set ${IFNAME} addrgenmode none`, // only the addresses below
                `addr add ${h.linkLocal}/64 dev ${IFNAME} nodad`,
                `addr add ${h.address}/64 dev ${IFNAME} nodad`,
                `link set ${IFNAME} up`, // the kernel adds multicast ff00::/8 dev eth0
              ]
            : [
                'link set lo up',
                `link set ${IFNAME} addrgenmode none`, // no IPv6 link-local chatter
                `addr add ${h.address}/${h.prefixLength} dev ${IFNAME}`,
                `link set ${IFNAME} up`,
                `route add ${MULTICAST} dev ${IFNAME}`,
              ],
        ),
      ),
    );
    await this.waitForwarding(this.hosts);
  }

  async linkDown(h: Host): Promise<void> {
    await ip(['-n', this.switchNetns, 'link', 'set', portOf(this.own(h)), 'down']);
  }

  async linkUp(h: Host): Promise<void> {
    await ip(['-n', this.switchNetns, 'link', 'set', portOf(this.own(h)), 'up']);
    await this.waitForwarding([this.own(h)]);
  }

  async partition(...groups: Host[][]): Promise<void> {
    const seen = new Set<Host>();
    for (const h of groups.flat()) {
      if (seen.has(this.own(h))) throw new Error(`${h.name} is in two groups`);
      seen.add(h);
    }
    const commands: string[] = [];
    for (; this.segments <= groups.length; this.segments++) {
      commands.push(`link add br${this.segments} ${BRIDGE_OPTIONS}`, `link set br${this.segments} addrgenmode none`, `link set br${this.segments} up`);
    }
    for (const h of this.hosts) {
      const group = groups.findIndex((g) => g.includes(h));
      commands.push(`link set ${portOf(h)} master br${group + 1}`);
    }
    await ipBatch(['-n', this.switchNetns], commands);
    await this.waitForwarding(this.hosts);
  }

  async heal(): Promise<void> {
    await ipBatch(['-n', this.switchNetns], this.hosts.map((h) => `link set ${portOf(h)} master ${this.bridge}`));
    await this.waitForwarding(this.hosts);
  }

  destroy(): Promise<void> {
    return (this.destroying ??= this.teardown());
  }

  /** Kills every process group we spawned and every process in our namespaces, synchronously. */
  cleanupSync(): void {
    for (const child of this.processes) {
      if (isRunning(child)) killGroup(child.pid!, 'SIGKILL');
    }
    for (const ns of this.namespaces) {
      try {
        for (const pid of parsePids(execFileSync(IP, ['netns', 'pids', ns], { encoding: 'utf8', stdio: 'pipe' }))) killPid(pid, 'SIGKILL');
      } catch {
        // namespace already gone
      }
    }
    try {
      execFileSync(IP, ['-force', '-batch', '-'], { stdio: 'pipe', input: this.namespaces.map((ns) => `netns del ${ns}\n`).join('') });
    } catch {
      // some were already gone
    }
    this.dismissWatchdog();
    unregister(this);
  }

  private async teardown(): Promise<void> {
    try {
      const running = this.processes.filter(isRunning);
      for (const child of running) killGroup(child.pid!, 'SIGTERM');
      await waitExits(running, this.killGraceMs);
      for (const child of running.filter(isRunning)) killGroup(child.pid!, 'SIGKILL');
      await waitExits(running, 2_000);
      // Anything else still in our namespaces (children that left their group).
      const deadline = Date.now() + 2_000;
      for (;;) {
        const pids = (await Promise.all(this.namespaces.map(netnsPids))).flat();
        if (pids.length === 0 || Date.now() > deadline) break;
        for (const pid of pids) killPid(pid, 'SIGKILL');
        await delay(20);
      }
      await ipBatch([], this.namespaces.map((ns) => `netns del ${ns}`), true);
      this.dismissWatchdog();
      unregister(this);
    } catch (err) {
      this.cleanupSync();
      throw err;
    }
  }

  track(child: ChildProcess): void {
    if (this.destroyed) {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      throw new Error(`LAN ${this.id} is destroyed`);
    }
    this.processes.push(child);
  }

  private own(h: Host): HostImpl {
    const mine = this.hosts[h.index];
    if (mine !== h) throw new Error(`${h.netns} is not a host of LAN ${this.id}`);
    return mine;
  }

  /** Resolves when the hosts' ports forward and their eth0 has carrier. */
  private async waitForwarding(hosts: readonly HostImpl[]): Promise<void> {
    const deadline = Date.now() + WAIT_READY_MS;
    for (;;) {
      const ports = JSON.parse((await run(BRIDGE, ['-n', this.switchNetns, '-j', 'link', 'show'])).stdout || '[]') as Array<{ ifname: string; state?: string }>;
      const forwarding = new Set(ports.filter((p) => p.state === 'forwarding').map((p) => p.ifname));
      const carrier = await Promise.all(
        hosts.map(async (h) => {
          const link = JSON.parse((await run(IP, ['-n', h.netns, '-j', 'link', 'show', IFNAME])).stdout || '[]') as Array<{ operstate?: string }>;
          return link[0]?.operstate === 'UP';
        }),
      );
      if (hosts.every((h, i) => forwarding.has(portOf(h)) && carrier[i])) return;
      if (Date.now() > deadline) throw new Error(`LAN ${this.id}: ports not forwarding after ${WAIT_READY_MS} ms`);
      await delay(10);
    }
  }

  private dismissWatchdog(): void {
    const w = this.watchdog;
    this.watchdog = undefined;
    if (w?.stdin && !w.stdin.destroyed) w.stdin.end('done\n');
  }
}

class HostImpl implements Host {
  readonly name: string;
  readonly ifname = IFNAME;

  constructor(
    private readonly lan: LanImpl,
    readonly index: number,
    readonly netns: string,
    readonly address: string,
    readonly prefixLength: number,
    readonly linkLocal: string | null,
  ) {
    this.name = `h${index}`;
  }

  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.lan.destroyed) throw new Error(`LAN ${this.lan.id} is destroyed`);
    const child = spawn(IP, ['netns', 'exec', this.netns, cmd, ...args], { stdio: 'pipe', ...opts, detached: true });
    this.lan.track(child);
    return child;
  }

  exec(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(cmd, args);
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer =
        opts.timeoutMs === undefined ? undefined : setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), opts.timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      child.stdin!.on('error', () => {}); // EPIPE if it exits before reading
      child.stdin!.end(opts.input ?? '');
    });
  }
}

/** The switch-side end of h's cable. */
function portOf(h: Host): string {
  return `p${h.index}`;
}

// ------------------------------------------- crash safety: exit, signals, watchdog

const live = new Set<LanImpl>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function register(lan: LanImpl): void {
  if (live.size === 0) {
    process.on('exit', cleanupAllSync);
    // Workers receive no signals; their process's main thread does.
    if (isMainThread) for (const sig of SIGNALS) process.on(sig, onSignal);
  }
  live.add(lan);
}

function unregister(lan: LanImpl): void {
  if (!live.delete(lan) || live.size > 0) return;
  process.removeListener('exit', cleanupAllSync);
  if (isMainThread) for (const sig of SIGNALS) process.removeListener(sig, onSignal);
}

function cleanupAllSync(): void {
  for (const lan of [...live]) lan.cleanupSync();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAllSync(); // also removes our listeners
  // Without other listeners, die of the signal as if we had never caught it.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

/**
 * A detached shell that waits for a line on a pipe from us: "done" means
 * destroy() ran; end of file without it means we died, so it kills what runs
 * in the namespaces and deletes them. In its own session, so that a Ctrl-C
 * aimed at the test run does not take it down first.
 */
const WATCHDOG = `
read -r line
[ "$line" = done ] && exit 0
for round in 1 2 3; do
  for ns in "$@"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.1
done
for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
exit 0
`;

function startWatchdog(namespaces: readonly string[]): ChildProcess {
  const child = spawn('sh', ['-c', WATCHDOG, 'berkeleyd-netns-watchdog', ...namespaces], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {}); // without sh, destroy() and the exit handler remain
  child.stdin!.on('error', () => {});
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

// ------------------------------------------------------------------ helpers

function run(cmd: string, args: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input ?? '');
  });
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await run(IP, args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Runs commands through one `ip -batch` (with `-force`: keep going past errors). */
async function ipBatch(globalArgs: readonly string[], commands: readonly string[], force = false): Promise<void> {
  const args = [...globalArgs, ...(force ? ['-force'] : []), '-batch', '-'];
  const r = await run(IP, args, commands.map((c) => `${c}\n`).join(''));
  if (r.code !== 0 && !force) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}\n  commands:\n  ${commands.join('\n  ')}`);
}

async function netnsPids(ns: string): Promise<number[]> {
  const r = await run(IP, ['netns', 'pids', ns]);
  return r.code === 0 ? parsePids(r.stdout) : [];
}

function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Whether pid names a live process (not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function waitExits(children: readonly ChildProcess[], ms: number): Promise<void> {
  const pending = children.filter(isRunning);
  if (pending.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let left = pending.length;
    const timer = setTimeout(resolve, ms);
    for (const child of pending) {
      child.once('exit', () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const stderr = e.stderr?.toString().trim();
  return stderr ? stderr : String(e.message ?? err);
}

function parseSubnet(text: string): Subnet {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const length = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || !(length >= 8 && length <= 30)) throw new RangeError(`bad subnet "${text}" (want a.b.c.d/8..30)`);
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - length);
  const network = address - (address % size);
  return { text: `${intToIp(network)}/${length}`, network, length };
}

/** A random unique local /64 (RFC 4193), as the text before its last "::": "fdxx:xxxx:xxxx:". */
function randomUla(): string {
  const hex4 = (): string => randomInt(0x10000).toString(16);
  return `fd${randomInt(256).toString(16).padStart(2, '0')}:${hex4()}:${hex4()}:`;
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}
