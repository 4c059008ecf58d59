/**
 * User-Mode Linux guests for tests that must set a real kernel clock
 * without touching this machine's.
 *
 * Every guest is a `linux.uml` process: its own kernel, its own
 * CLOCK_REALTIME (initialised from the host's at boot, then running on the
 * host's CLOCK_MONOTONIC through the guest kernel's own NTP frequency
 * adjustment), the host's / mounted read-only through hostfs (so node and
 * berkeleyd's dist/ are there), tmpfs on /tmp, /run and /var. All guests
 * share one Ethernet segment through UML's multicast transport
 * (eth0=mcast,MAC,230.0.0.1,PORT,1) inside one network namespace made with
 * `unshare -n` (lo up, multicast on, a 224.0.0.0/4 route), so nothing
 * reaches the host's network. Guest i is 10.231.0.(i+1)/24.
 *
 * Control: each guest's init (uml-init.sh, written here) sets the guest up
 * and then runs a shell on the console, which is linux.uml's stdin and
 * stdout: exec() writes a command and waits for its end marker. Lines that
 * start with "STAMP " (the probe stamper, stamper()) are collected apart,
 * with the host's monotonic time of arrival.
 *
 * Probes: sendProbe() writes one Ethernet frame (a UDP broadcast to
 * 10.231.0.255:7799) straight onto the segment, i.e. a UDP datagram to
 * the mcast transport's group; every guest's kernel stamps its arrival
 * (SO_TIMESTAMPNS, CLOCK_REALTIME) and the stamper prints it, with the
 * guest's CLOCK_MONOTONIC_RAW at that instant. UML's clock source is this
 * machine's CLOCK_MONOTONIC, so a guest's raw clock is this machine's
 * monotonic clock plus a constant, whatever the guest's discipline does:
 * it tells the host when each delivery really happened.
 *
 * Cleanup: destroy() (idempotent, also from an 'exit' handler) SIGKILLs
 * every linux.uml process group and the namespace holder; the namespace
 * dies with its last process; UML's files (uml_dir) live in a temporary
 * directory removed at the end. If the test process is killed outright, a
 * detached watchdog shell waiting on a pipe from us sees it close and
 * kills the process groups listed in that directory (as helpers/netns.ts
 * does for namespaces).
 *
 * Needs root (unshare -n), linux.uml, busybox, python3 (the stamper).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root (dist/ and node_modules/ are below it), as the guests must see it. */
const PROJECT_DIR = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');

export type UmlAvailability = { ok: true } | { ok: false; why: string };

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Can this machine run the guests? Never throws. */
export function umlAvailability(): UmlAvailability {
  if (process.platform !== 'linux') return { ok: false, why: 'not Linux' };
  if (process.getuid?.() !== 0) return { ok: false, why: 'needs root (unshare -n, UML networking)' };
  for (const [cmd, pkg] of [['linux.uml', 'user-mode-linux'], ['busybox', 'busybox'], ['unshare', 'util-linux'], ['nsenter', 'util-linux'], ['setpriv', 'util-linux'], ['ip', 'iproute2']] as const) {
    if (!which(cmd)) return { ok: false, why: `${cmd} not found (apt-get install ${pkg})` };
  }
  if (!existsSync('/usr/bin/python3')) return { ok: false, why: '/usr/bin/python3 not found (the probe stamper)' };
  const r = spawnSync('unshare', ['-n', 'true']);
  if (r.status !== 0) return { ok: false, why: 'unshare -n failed (no network namespaces here?)' };
  return { ok: true };
}

const INIT = `#!/bin/sh
# berkeleyd test guest: init (pid 1) of a User-Mode Linux guest.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tmpfs var /var
# The harness's directory (stamper, chrony, files for the host) at /mnt; the guest's /tmp hides the host's.
mount -t hostfs -o "$LAN_DIR" none /mnt
# The project (dist/, node_modules/) at its own path, read-only, when those tmpfs hide it (CI may clone under /tmp).
case "$PROJECT_DIR" in /tmp/*|/run/*|/var/*) mkdir -p "$PROJECT_DIR" && mount -r -t hostfs -o "$PROJECT_DIR" none "$PROJECT_DIR" ;; esac
stty -echo 2>/dev/null
ip link set lo up
ip link set eth0 up
ip addr add "$GUEST_ADDR/24" dev eth0
ip route add 224.0.0.0/4 dev eth0
echo "@@READY $GUEST_NAME"
PS1= PS2= exec /bin/sh
`;

const STAMPER = `import select, socket, struct, sys, time
SO_TIMESTAMPNS = 35
def clocks():
    # (realtime, raw, width): CLOCK_MONOTONIC_RAW read on both sides of CLOCK_REALTIME, the narrowest of five tries.
    # UML's raw clock is this machine's CLOCK_MONOTONIC plus a constant, untouched by the guest's discipline,
    # so the host can tell each delivery's delay.
    best = None
    for _ in range(5):
        raw1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        rt = time.clock_gettime_ns(time.CLOCK_REALTIME)
        raw2 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        if best is None or raw2 - raw1 < best[2]:
            best = (rt, (raw1 + raw2) // 2, raw2 - raw1)
    return best
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
# since: clocks read while the queue was known empty, so before the kernel stamped any datagram still to be read.
since = clocks()
s.bind(('', int(sys.argv[1])))
print('@@STAMPER', flush=True)
while True:
    before = clocks()
    try:
        data, anc, flags, addr = s.recvmsg(64, 64, socket.MSG_DONTWAIT)
    except BlockingIOError:
        since = before
        select.select([s], [], [], 0.02)
        continue
    ts = 0
    for level, kind, d in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack('qq', d[:16])
            ts = sec * 1000000000 + nsec
    # The raw clock at the kernel's stamp, from REALTIME - RAW read now. A step of the guest's clock (a daemon's
    # ADJ_SETOFFSET) after the stamp and before these reads leaves the stamp in the old time base, and this raw
    # reading off by the whole step: seen in CI as a guest 3 s off for the rest of a run, through the delay bases.
    # REALTIME - RAW moves otherwise only by rate (the guest's frequency and slew, under 2000 ppm): a larger move
    # since the queue was last seen empty marks the raw reading unknown. A smaller one (a step of 100-200 us after
    # the stamper waited long for the CPU) still bounds the raw reading's error: it counts in the width.
    rt, raw, width = clocks()
    moved = abs((rt - raw) - (since[0] - since[1]))
    if moved > 20000 + 2 * (raw - since[1]) // 1000:
        width = 10 ** 12
    else:
        width = max(width, moved)
    print('STAMP %s %d %d %d' % (data.decode('ascii', 'replace').strip(), ts, ts - rt + raw, width), flush=True)
`;

export const PROBE_PORT = 7799;
const SUBNET = '10.231.0';

export interface Stamp {
  seq: number;
  /** The guest's CLOCK_REALTIME when its kernel received the probe, ns. */
  realtimeNs: bigint;
  /** The guest's CLOCK_MONOTONIC_RAW at the same instant (this machine's CLOCK_MONOTONIC plus a constant), ns. */
  rawNs: bigint;
  /**
   * How far off rawNs may be, ns: the width of the (raw, realtime, raw) reads it was derived from, or how far
   * REALTIME − RAW moved since the stamper last saw its queue empty, whichever is larger; 10^12 (unknown) when
   * it moved by more than the clock's rate could (a step between the kernel's stamp and the reads).
   */
  rawErrorNs: number;
}

export interface ExecResult {
  code: number;
  out: string;
}

export class Guest {
  readonly lines: Array<{ atMs: number; text: string }> = [];
  readonly stamps: Stamp[] = [];
  private buf = '';
  private waiters: Array<() => void> = [];
  private seq = 0;
  exitCode: number | null = null;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly address: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => this.onData(d));
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => this.onData(d));
    proc.on('exit', (code) => {
      this.exitCode = code ?? -1;
      this.wake();
    });
  }

  private onData(d: string): void {
    const atMs = performance.now();
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const text = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      const m = /^STAMP (\d+) (-?\d+) (-?\d+) (\d+)$/.exec(text);
      if (m) this.stamps.push({ seq: Number(m[1]), realtimeNs: BigInt(m[2]!), rawNs: BigInt(m[3]!), rawErrorNs: Number(m[4]) });
      else this.lines.push({ atMs, text });
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the first line (after index from) matching re; rejects after timeoutMs or when the guest dies. */
  waitLine(re: RegExp, timeoutMs: number, from = 0): Promise<{ atMs: number; text: string; index: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${this.tail()}`)), timeoutMs);
      const check = (): void => {
        for (let k = from; k < this.lines.length; k++) {
          if (re.test(this.lines[k]!.text)) {
            clearTimeout(timer);
            resolve({ ...this.lines[k]!, index: k });
            return;
          }
        }
        if (this.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`${this.name}: linux.uml exited (${this.exitCode}); last lines:\n${this.tail()}`));
          return;
        }
        this.waiters.push(check);
      };
      check();
    });
  }

  tail(n = 25): string {
    return this.lines.slice(-n).map((l) => `  ${this.name}| ${l.text}`).join('\n');
  }

  /** Runs a shell command line in the guest; resolves with its exit status and output (stdout and stderr). */
  async exec(command: string, timeoutMs = 20_000): Promise<ExecResult> {
    const id = ++this.seq;
    const from = this.lines.length;
    this.proc.stdin!.write(`{ ${command}\n} 2>&1 | sed 's/^/@@OUT ${id} /'; echo "@@DONE ${id} $?"\n`);
    // $? after a pipe is sed's; the command's own status comes through a marker of its own.
    const done = await this.waitLine(new RegExp(`^@@DONE ${id} (\\d+)$`), timeoutMs, from);
    const out = this.lines
      .slice(from, done.index)
      .filter((l) => l.text.startsWith(`@@OUT ${id} `))
      .map((l) => l.text.slice(`@@OUT ${id} `.length));
    const status = out.length && /^@@STATUS (\d+)$/.test(out.at(-1)!) ? Number(/^@@STATUS (\d+)$/.exec(out.pop()!)![1]) : 0;
    return { code: status, out: out.join('\n') };
  }

  /** exec() with the command's own exit status. */
  async run(command: string, timeoutMs = 20_000): Promise<ExecResult> {
    return this.exec(`${command}\necho "@@STATUS $?"`, timeoutMs);
  }

  /** Starts a command in the background (output to file, or to the console when file is null). */
  async background(command: string, file: string | null): Promise<void> {
    if (file) {
      await this.exec(`( ${command} ) >${file} 2>&1 &`);
      return;
    }
    // Straight on the console, outside exec()'s pipe (which would wait for the job to close it).
    const id = ++this.seq;
    const from = this.lines.length;
    this.proc.stdin!.write(`( ${command} ) &\necho "@@DONE ${id} 0"\n`);
    await this.waitLine(new RegExp(`^@@DONE ${id} 0$`), 20_000, from);
  }
}

export interface UmlLanOptions {
  guests: number;
  /** Memory per guest, MB. Default 320. */
  memMb?: number;
  /** Extra environment for every guest's init (K=V words on the kernel command line). */
  env?: Record<string, string>;
  bootTimeoutMs?: number;
  /** A library for linux.uml's LD_PRELOAD (the xstate library of uml-probe.ts), or null. */
  preload?: string | null;
}

let live: UmlLan[] = [];
let exitHook = false;

export class UmlLan {
  readonly guests: Guest[] = [];
  readonly dir: string;
  readonly mcastPort: number;
  private holder: ChildProcess | null = null;
  private destroyed = false;

  private watchdog: ChildProcess | null = null;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'berkeleyd-uml-'));
    chmodSync(this.dir, 0o755);
    this.mcastPort = 20000 + randomInt(20000);
    this.watchdog = startWatchdog(this.dir);
  }

  /** Every process group we start is written down for the watchdog. */
  private track(p: ChildProcess): void {
    if (p.pid) appendFileSync(join(this.dir, 'pgids'), `${p.pid}\n`);
  }

  /** Boots the guests in parallel in a fresh network namespace. */
  static async start(o: UmlLanOptions): Promise<UmlLan> {
    const lan = new UmlLan();
    live.push(lan);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const l of live) l.destroySync();
      });
    }
    try {
      await lan.boot(o);
      return lan;
    } catch (err) {
      lan.destroySync();
      throw err;
    }
  }

  private async boot(o: UmlLanOptions): Promise<void> {
    const init = join(this.dir, 'init.sh');
    writeFileSync(init, INIT, { mode: 0o755 });
    writeFileSync(join(this.dir, 'stamper.py'), STAMPER, { mode: 0o644 });
    // The namespace: a holder process that keeps it alive; the guests and the probe sender enter it.
    const setup = 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 100000';
    this.holder = spawn('unshare', ['-n', 'sh', '-c', setup], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.track(this.holder);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      this.holder!.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('ready')) resolve();
      });
      this.holder!.on('exit', (c) => reject(new Error(`the namespace holder exited (${c})`)));
    });
    const ns = `/proc/${this.holder.pid}/ns/net`;
    const mem = o.memMb ?? 320;
    const ready: Array<Promise<unknown>> = [];
    for (let i = 0; i < o.guests; i++) {
      const name = `g${i}`;
      const address = `${SUBNET}.${i + 1}`;
      const mac = `fe:fd:0a:e7:00:${(i + 1).toString(16).padStart(2, '0')}`;
      const words = Object.entries({ ...(o.env ?? {}), GUEST_NAME: name, GUEST_ADDR: address, LAN_DIR: this.dir, PROJECT_DIR }).map(([k, v]) => `${k}=${v}`);
      const args = [
        `--net=${ns}`,
        'linux.uml',
        `umid=bkd${process.pid}-${i}`,
        `uml_dir=${this.dir}`,
        `mem=${mem}M`,
        'rootfstype=hostfs',
        'rootflags=/',
        'ro',
        'quiet',
        `init=${init}`,
        `eth0=mcast,${mac},230.0.0.1,${this.mcastPort},1`,
        'con=null',
        'con0=fd:0,fd:1',
        'ssl=null',
        ...words,
      ];
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: existsSync('/dev/shm') ? '/dev/shm' : this.dir };
      if (o.preload) env.LD_PRELOAD = o.preload;
      const proc = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
      this.track(proc);
      const g = new Guest(name, i, address, proc);
      this.guests.push(g);
      ready.push(g.waitLine(/^@@READY /, o.bootTimeoutMs ?? 30_000));
    }
    await Promise.all(ready);
  }

  private senderProc: ChildProcess | null = null;

  /** Sends probe seq to every guest at once (one frame on the segment); returns the host's monotonic ms just before. */
  sendProbe(seq: number): number {
    if (!this.senderProc) {
      const code = `const d=require('dgram').createSocket({type:'udp4',reuseAddr:true});d.bind(0,()=>{d.setMulticastTTL(1);d.setMulticastLoopback(true);process.stdin.on('data',b=>{for(const line of b.toString().split('\\n')){if(line)d.send(Buffer.from(line,'hex'),${this.mcastPort},'230.0.0.1')}})});`;
      this.senderProc = spawn('nsenter', [`--net=/proc/${this.holder!.pid}/ns/net`, process.execPath, '-e', code], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
      this.track(this.senderProc);
    }
    const at = performance.now();
    this.senderProc.stdin!.write(probeFrame(String(seq)).toString('hex') + '\n');
    return at;
  }

  /** Stops everything at once (SIGKILL); idempotent. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of [...this.guests.map((g) => g.proc), this.senderProc, this.holder]) {
      if (p?.pid && p.exitCode === null) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    // UML's helper processes share the guest's process group; give the kernel a moment, then remove the files.
    spawnSync('sleep', ['0.2']);
    rmSync(this.dir, { recursive: true, force: true });
    const w = this.watchdog;
    this.watchdog = null;
    if (w?.stdin && !w.stdin.destroyed) w.stdin.end('done\n');
    live = live.filter((l) => l !== this);
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }
}

/**
 * A detached shell waiting for a line on a pipe from us: "done" means
 * destroy() ran; end of file without it means we died, so it kills every
 * process group listed in dir/pgids and removes dir. In its own session,
 * so that a Ctrl-C aimed at the test run does not take it down first.
 */
const WATCHDOG = `
read -r line
[ "$line" = done ] && exit 0
for pg in $(cat "$1/pgids" 2>/dev/null); do kill -9 -- "-$pg" 2>/dev/null; done
sleep 0.3
rm -rf "$1"
exit 0
`;

function startWatchdog(dir: string): ChildProcess {
  const child = spawn('sh', ['-c', WATCHDOG, 'berkeleyd-uml-watchdog', dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  child.on('error', () => {}); // without sh, destroy() and the exit handler remain
  child.stdin!.on('error', () => {});
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An Ethernet frame: a UDP broadcast from 10.231.0.250 to 10.231.0.255:PROBE_PORT carrying text. */
export function probeFrame(text: string): Buffer {
  const payload = Buffer.from(text + '\n', 'ascii');
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(PROBE_PORT, 0);
  udp.writeUInt16BE(PROBE_PORT, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  udp.writeUInt16BE(0, 6); // no checksum (allowed in IPv4)
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt16BE(randomInt(65536), 4);
  ip.writeUInt8(1, 8); // TTL
  ip.writeUInt8(17, 9); // UDP
  Buffer.from([10, 231, 0, 250]).copy(ip, 12);
  Buffer.from([10, 231, 0, 255]).copy(ip, 16);
  ip.writeUInt16BE(ipChecksum(ip), 10);
  const eth = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfd, 0x0a, 0xe7, 0x00, 0xfa, 0x08, 0x00]);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** Where a guest sees the harness's directory (lan.dir). */
export const GUEST_DIR = '/mnt';
/** The guest-side path of the stamper script. */
export const GUEST_STAMPER = `${GUEST_DIR}/stamper.py`;
