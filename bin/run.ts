/**
 * `berkeleyd run`: the daemon in the foreground (what systemd starts).
 * Every option can also come from a BERKELEYD_* environment variable.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import createDebug from 'debug';
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { hostname } from 'node:os';
import { ClockRefused, defaultStateFile } from '../lib/clock/index.js';
import { DEFAULTS, MAX_MEMBERS_LIMIT } from '../lib/core/options.js';
import { DEFAULT_REFERENCE_MAX_ERROR_NS } from '../lib/core/reference.js';
import { defaultControlPath, ControlError } from '../lib/daemon/control.js';
import { Boundary, type UpstreamOptions } from '../lib/daemon/boundary.js';
import { Daemon, type DaemonOptions } from '../lib/daemon/daemon.js';
import { logLine } from '../lib/daemon/log.js';
import { NetError, resolveInterface } from '../lib/net/transport.js';
import { parseGroup } from '../lib/net/groups.js';
import { parseKeyFile, type Keyring } from '../lib/wire/keys.js';
import { DEFAULT_METRICS_PORT, MetricsError } from '../lib/daemon/metrics.js';
import { SegmentError } from '../lib/daemon/publish.js';
import { CLOCKBOUND_DEFAULT_PATH } from '../lib/clock/clockbound-layout.js';
import { formatDurationNs } from '../lib/units.js';
import { duration, int, listenAddress, positiveDuration, ppm, signedDuration } from './parse.js';
import { UsageError } from './usage.js';

export const DEFAULT_GROUP = '239.255.77.1';
export const DEFAULT_PORT = 7737;

type ReferenceChoice = 'none' | 'system' | `file:${string}`;

const upstreamGroup = (t: string): { group: string; port: number | null } => {
  const m = /^([^:]+)(?::(\d+))?$/.exec(t);
  if (!m) throw new InvalidArgumentError(`"${t}": expected GROUP or GROUP:PORT`);
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && (port < 1 || port > 65535)) throw new InvalidArgumentError(`port ${port} is not 1 to 65535`);
  let family: number;
  try {
    family = parseGroup(m[1]!).family;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (family !== 4) throw new InvalidArgumentError(`"${m[1]}": the upper group must be IPv4 (an IPv6 upper group is not supported yet)`);
  return { group: m[1]!, port };
};

const referenceSource = (t: string): ReferenceChoice => {
  if (t === 'none' || t === 'system') return t;
  if (t.startsWith('file:') && t.length > 5) return t as ReferenceChoice;
  throw new InvalidArgumentError(`"${t}": expected none, system or file:PATH`);
};

/** Boolean flags and their environment variables, parsed strictly (commander treats any defined variable as true). */
const FLAGS = { master: 'BERKELEYD_MASTER', stepAlways: 'BERKELEYD_STEP_ALWAYS', force: 'BERKELEYD_FORCE' } as const;

function envFlag(name: string): boolean | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new UsageError(`${name}=${v}: expected 1, true, yes or on, or 0, false, no or off`);
}

/** An IPv4 or IPv6 multicast group (lib/net/groups.ts says which). */
const multicastGroup = (t: string): string => {
  try {
    parseGroup(t);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return t;
};

export function runCommand(): Command {
  const d = DEFAULTS;
  const env = (o: Option, name: string): Option => o.env(`BERKELEYD_${name}`);
  return new Command('run')
    .description('run the daemon in the foreground (what systemd starts)')
    .option('--master', `pin this node as master (env ${FLAGS.master}=1)`)
    .addOption(env(new Option('--priority <n>', 'election priority, 0 to 255; higher wins; 0 never becomes master').argParser(int(0, 255, 'priority')).default(d.priority), 'PRIORITY'))
    .addOption(env(new Option('--node-id <name>', 'this node\'s name in the group (default: the host name)'), 'NODE_ID'))
    .addOption(env(new Option('--group <address>', 'multicast group: IPv4 (239.255.x.y on a LAN) or IPv6 (on one link ff02::/16, e.g. ff02::b3d1, with --interface naming the link; across links ff05::/16); the group runs over its family').argParser(multicastGroup).default(DEFAULT_GROUP), 'GROUP'))
    .addOption(env(new Option('--port <n>', 'UDP port of the group').argParser(int(1, 65535, 'port')).default(DEFAULT_PORT), 'PORT'))
    .addOption(env(new Option('--unicast-port <n>', 'UDP port for exchanges and reports (0: any free port)').argParser(int(0, 65535, 'unicast port')).default(0), 'UNICAST_PORT'))
    .addOption(env(new Option('--interface <name|address>', 'interface to join the group on, by name or by an address of either family (default: IPv4, the first non-loopback IPv4 interface; IPv6, the route\'s; a link-local ff02:: group needs it)'), 'INTERFACE'))
    .addOption(env(new Option('--domain <n>', 'group domain, 0 to 65535: groups sharing an address and port ignore each other').argParser(int(0, 65535, 'domain')).default(d.domain), 'DOMAIN'))
    .addOption(env(new Option('--interval <duration>', 'time between rounds, 40ms to 1h').argParser(positiveDuration).default(d.intervalNs, '1s'), 'INTERVAL'))
    .addOption(env(new Option('--collect-timeout <duration>', 'how long the master waits for reports after SYNC (default: half the interval)').argParser(positiveDuration), 'COLLECT_TIMEOUT'))
    .addOption(env(new Option('--probes <n>', 'time exchanges per measurement burst, best one kept (the most: a master of a large group asks for fewer, see --max-members)').argParser(int(1, 64, 'probes')).default(d.probes), 'PROBES'))
    .addOption(env(new Option('--max-members <n>', 'as master: the largest member table; nodes beyond it are refused, warned about once and counted (status, metrics), and they know they are left out').argParser(int(1, MAX_MEMBERS_LIMIT, 'max members')).default(d.maxMembers), 'MAX_MEMBERS'))
    .addOption(env(new Option('--max-delay <duration>', 'drop a measurement whose best round trip is longer').argParser(positiveDuration).default(d.maxDelayNs, '50ms'), 'MAX_DELAY'))
    .addOption(env(new Option('--tolerance <duration>', 'outer bound of the selection: a clock farther than this from the median never counts in the average (which clocks count is decided by their measured intervals)').argParser(duration).default(d.toleranceNs, '20ms'), 'TOLERANCE'))
    .addOption(env(new Option('--max-slew <ppm>', 'largest rate at which a correction is slewed').argParser(ppm).default(500), 'MAX_SLEW'))
    .addOption(env(new Option('--step-threshold <duration>', 'step corrections larger than this where stepping is allowed: in the first 4 corrections (until synchronized), or always with --step-always').argParser(duration).default(d.stepThresholdNs, '100us'), 'STEP_THRESHOLD'))
    .option('--step-always', `allow steps after the first synchronization too (env ${FLAGS.stepAlways}=1)`)
    .addOption(env(new Option('--max-adjust <duration>', 'after the first synchronization, refuse corrections larger than this').argParser(positiveDuration), 'MAX_ADJUST'))
    .addOption(env(new Option('--key-file <path>', 'authenticate every datagram with the HMAC-SHA256 keys in this file (see berkeleyd keygen)'), 'KEY_FILE'))
    .addOption(env(new Option('--ttl <n>', 'multicast TTL, or IPv6 hop limit (1: this LAN only)').argParser(int(1, 255, 'ttl')).default(1), 'TTL'))
    .addOption(env(new Option('--control <path>', `control socket (default: ${defaultControlPath()})`), 'CONTROL'))
    .addOption(env(new Option('--metrics <[addr:]port>', `serve Prometheus metrics at http://ADDR:PORT/metrics (a bare port listens on every address; ADDR alone: port ${DEFAULT_METRICS_PORT}); off by default`).argParser(listenAddress), 'METRICS'))
    .addOption(new Option('--reload-env-file <path>', 'on SIGHUP, read the reloadable settings from this environment file (the unit passes /etc/default/berkeleyd); without it, SIGHUP re-reads the key file only'))
    .addOption(env(new Option('--clock <kind>', 'the clock to discipline: "system", the host\'s own CLOCK_REALTIME through adjtimex (needs CAP_SYS_TIME; what the shipped unit selects), or "virtual", a clock inside this process that touches nothing').choices(['system', 'virtual']).default('virtual'), 'CLOCK'))
    .option('--force', `--clock system: go on although another time service (chronyd, ntpd, systemd-timesyncd, phc2sys, or the kernel's own discipline) seems to discipline the clock (env ${FLAGS.force}=1)`)
    .addOption(env(new Option('--state-file <path>', `--clock system: where the learned frequency is kept across restarts (default: ${defaultStateFile({})}, in $STATE_DIRECTORY under systemd)`), 'STATE_FILE'))
    .addOption(env(new Option('--clockbound <path|auto|off>', `--clock system: publish this node's error bound in ClockBound's shared-memory segment (protocol v2) at PATH, for ClockBound's clients and berkeleyd/client; "auto": at ClockBound's default path ${CLOCKBOUND_DEFAULT_PATH} unless a clockbound daemon owns it (what the shipped unit sets); off by default`), 'CLOCKBOUND'))
    .addOption(env(new Option('--reference <source>', 'as master, bring the group to an external reference instead of its average: "system", this host\'s clock as another service (chrony, ptp4l and phc2sys, a GPS) disciplines it, read only and never set (implies --master; the group clock stays in this process, --clock virtual); "none"; or "file:PATH", a simulated reference for tests. Lost when the kernel reports STA_UNSYNC or maxerror passes --reference-max-error: the group then runs on its average and slews back when it returns').argParser(referenceSource).default('none'), 'REFERENCE'))
    .addOption(env(new Option('--reference-max-error <duration>', '--reference: the reference counts as lost when its maximum error (the kernel\'s maxerror, which its service sets and the kernel grows by 500 ppm while it is silent) exceeds this').argParser(positiveDuration).default(DEFAULT_REFERENCE_MAX_ERROR_NS, '1s'), 'REFERENCE_MAX_ERROR'))
    .addOption(env(new Option('--upstream <group[:port]>', 'make this node a boundary host: a peer of the upper group at GROUP (IPv4 multicast; PORT default --port), whose clock it follows, and the master of its own group (--group), whose time follows that clock (implies --master here). Refused: a loop (the steps from the top reach 16)').argParser(upstreamGroup), 'UPSTREAM'))
    .addOption(env(new Option('--upstream-interface <name|address>', '--upstream: interface to join the upper group on (default: --interface)'), 'UPSTREAM_INTERFACE'))
    .addOption(env(new Option('--sim-offset <duration>', 'simulated clock: start this far from the system clock (demo, tests)').argParser(signedDuration), 'SIM_OFFSET'))
    .addOption(env(new Option('--sim-drift <ppm>', 'simulated clock: run fast (+) or slow (-) by this much').argParser(ppm), 'SIM_DRIFT'))
    .action(async (o, cmd: Command) => {
      const opts = resolve(o);
      let daemon: Daemon | Boundary;
      try {
        daemon = opts.upstream ? new Boundary(opts, opts.upstream) : new Daemon(opts);
      } catch (err) {
        if (err instanceof ClockRefused) throw new UsageError(err.message);
        // The engine's own validation (validateOptions) names what is wrong.
        throw new UsageError((err as Error).message);
      }
      try {
        await daemon.start();
      } catch (err) {
        if (err instanceof SegmentError) throw new UsageError(`--clockbound: ${err.message}`);
        if (err instanceof NetError || err instanceof ControlError || err instanceof MetricsError) {
          throw new UsageError(err instanceof NetError ? `${err.option}: ${err.message}` : err instanceof MetricsError ? `--metrics: ${err.message}` : `--control: ${err.message}`);
        }
        throw err;
      }
      await new Promise<void>((done) => {
        const stop = (why: string): void => {
          logLine('info', opts.node.name, `${why}, leaving the group`);
          daemon.stop().then(done, done);
        };
        process.on('SIGHUP', () => reload(daemon, o, cmd));
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        // Children of the demo and the benchmark exit with their parent.
        if (process.env.BERKELEYD_EXIT_WITH_STDIN === '1') {
          process.stdin.on('end', () => stop('parent gone')).resume();
        }
      });
      // Nothing may keep the process alive once the daemon has stopped.
      process.stdin.destroy();
    });
}

function resolve(o: Record<string, any>): DaemonOptions & { upstream: UpstreamOptions | null } {
  const master = o.master ?? envFlag(FLAGS.master) ?? false;
  const stepAlways = o.stepAlways ?? envFlag(FLAGS.stepAlways) ?? false;
  const force = o.force ?? envFlag(FLAGS.force) ?? false;
  const system = o.clock === 'system';
  if (system && (o.simOffset !== undefined || o.simDrift !== undefined)) throw new UsageError('--sim-offset and --sim-drift simulate a clock; they do not go with --clock system');
  const clockbound = resolveClockbound(o.clockbound, system);
  const intervalNs: bigint = o.interval;
  const collectTimeoutNs: bigint = o.collectTimeout ?? intervalNs / 2n;
  if (collectTimeoutNs >= intervalNs) throw new UsageError(`--collect-timeout must be shorter than --interval`);
  if (intervalNs < 40_000_000n || intervalNs > 3_600_000_000_000n) throw new UsageError(`--interval must be from 40ms to 1h`);
  const name: string = o.nodeId ?? hostname();
  if (Buffer.byteLength(name) > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(name) || name === '') throw new UsageError(`--node-id: "${name}" must be 1 to 64 bytes without control characters`);
  if (!(o.maxSlew > 0)) throw new UsageError(`--max-slew must be above 0 ppm`);
  if (master && o.priority === 0) throw new UsageError('--master and --priority 0 contradict each other');
  const group = parseGroup(o.group);
  if (group.scope === 2 && !o.interface) throw new UsageError(`--group ${o.group} is link-local (ff02::/16): name the link with --interface (e.g. --interface eth0)`);
  const reference = o.reference as ReferenceChoice;
  let upstream: UpstreamOptions | null = null;
  if (o.upstream) {
    const port: number = o.upstream.port ?? o.port;
    if (o.upstream.group === o.group && port === o.port) throw new UsageError(`--upstream ${o.upstream.group}:${port} is this node's own group (--group, --port): a loop`);
    if (reference !== 'none') throw new UsageError('--upstream and --reference contradict each other: a group follows one time, its upper group\'s or a reference\'s');
    if (o.priority === 0) throw new UsageError('--upstream makes this node the master of its own group; --priority 0 contradicts it');
    try {
      upstream = { group: o.upstream.group, port, interfaceAddress: resolveInterface(o.upstreamInterface ?? o.interface, 4) };
    } catch (err) {
      throw new UsageError(`--upstream-interface: ${(err as Error).message}`);
    }
  }
  if (reference !== 'none') {
    if (system) throw new UsageError('--reference and --clock system contradict each other: the reference host\'s system clock belongs to the service that disciplines it; berkeleyd reads it and keeps the group\'s clock in this process (leave --clock virtual)');
    if (o.priority === 0) throw new UsageError('--reference makes this node the master; --priority 0 contradicts it');
  }
  let interfaceAddress: string;
  try {
    interfaceAddress = resolveInterface(o.interface, group.family);
  } catch (err) {
    throw new UsageError(`--interface: ${(err as Error).message}`);
  }
  if (o.interface === undefined && interfaceAddress === '127.0.0.1') {
    logLine('warning', name, 'no IPv4 interface besides loopback: joining the group on 127.0.0.1, which reaches this host only (set --interface)');
  }
  return {
    node: {
      ...DEFAULTS,
      name,
      domain: o.domain,
      priority: o.priority,
      // A reference host leads its group: pinned, as with --master (one per group; see README, "Topologies").
      pinnedMaster: master || reference !== 'none' || upstream !== null,
      intervalNs,
      collectTimeoutNs,
      probes: o.probes,
      maxMembers: o.maxMembers,
      toleranceNs: o.tolerance,
      maxDelayNs: o.maxDelay,
      stepThresholdNs: o.stepThreshold,
      stepAlways,
      maxAdjustNs: o.maxAdjust ?? null,
    },
    net: { group: o.group, port: o.port, interfaceAddress, unicastPort: o.unicastPort, ttl: o.ttl },
    controlPath: o.control ?? defaultControlPath(),
    clock: {
      simOffsetNs: o.simOffset ?? null,
      simDriftPpm: o.simDrift ?? null,
      maxSlewPpm: o.maxSlew,
      stepThresholdNs: o.stepThreshold,
      kind: system ? 'system' : 'virtual',
      stateFile: system ? (o.stateFile ?? defaultStateFile()) : null,
      force,
    },
    keys: o.keyFile ? readKeys(o.keyFile) : null,
    metrics: o.metrics ?? null,
    clockbound,
    upstream,
    reference: reference === 'none' ? null : { kind: reference === 'system' ? 'system' : 'file', path: reference === 'system' ? undefined : reference.slice(5), maxErrorNs: o.referenceMaxError },
  };
}

/** --clockbound: off, auto (the default path unless taken) or a path; an explicit path needs the system clock. */
function resolveClockbound(v: string | undefined, system: boolean): DaemonOptions['clockbound'] {
  if (v === undefined || v === '' || v === 'off') return null;
  if (v === 'auto') return { path: CLOCKBOUND_DEFAULT_PATH, auto: true };
  if (!system) {
    throw new UsageError(
      `--clockbound ${v}: ClockBound's segment bounds the error of CLOCK_REALTIME, the system clock, which only --clock system disciplines; ` +
        'with a virtual clock the bound would describe a clock inside this process that no application reads (berkeleyd now reads that one)',
    );
  }
  return { path: v, auto: false };
}

/** Options a reload may change; the others need a restart. */
const RELOADABLE = ['BERKELEYD_KEY_FILE', 'BERKELEYD_MAX_ADJUST', 'BERKELEYD_TOLERANCE', 'BERKELEYD_PRIORITY', 'DEBUG'];

/**
 * SIGHUP: read everything first, then put it in force at once, or refuse
 * the lot with a warning and keep the old configuration. Command-line
 * options stay as given (they win over the environment, as at start).
 */
function reload(daemon: Pick<Daemon, 'node' | 'reload' | 'reloadRefused'>, o: Record<string, any>, cmd: Command): void {
  const name = daemon.node.ctx.opts.name;
  const say = (m: string): void => (m.startsWith('warning: ') ? logLine('warning', name, m.slice(9)) : logLine('info', name, m));
  try {
    let env: NodeJS.ProcessEnv = process.env;
    const file: string | undefined = o.reloadEnvFile;
    if (file !== undefined) {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`--reload-env-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
      }
      // The file's settings over those the process started with: a setting
      // that only a drop-in's Environment= gives (or the command line) stays.
      const fromFile = Object.fromEntries(Object.entries(parseEnv(text)).filter(([, v]) => v !== ''));
      env = { ...process.env, ...fromFile };
      // What would need a restart: say so instead of ignoring it silently.
      const changed = Object.keys(fromFile).filter((k) => k.startsWith('BERKELEYD_') && !RELOADABLE.includes(k) && fromFile[k] !== (process.env[k] ?? ''));
      if (changed.length > 0) say(`warning: reload: ${changed.join(', ')} changed in ${file}: in force after a restart only`);
    }
    const fromCli = (key: string): boolean => cmd.getOptionValueSource(key) === 'cli';
    const pick = <T>(key: string, variable: string, parse: (t: string) => T, dflt: T): T => {
      if (fromCli(key)) return o[key] as T;
      const v = env[variable];
      if (v === undefined || v === '') return dflt;
      try {
        return parse(v);
      } catch (err) {
        throw new UsageError(`${variable}=${v}: ${(err as Error).message}`);
      }
    };
    const keyFile = pick<string | undefined>('keyFile', 'BERKELEYD_KEY_FILE', (t) => t, undefined);
    const next = {
      keys: keyFile ? readKeys(keyFile) : null,
      maxAdjustNs: pick<bigint | null>('maxAdjust', 'BERKELEYD_MAX_ADJUST', positiveDuration, null),
      toleranceNs: pick<bigint>('tolerance', 'BERKELEYD_TOLERANCE', duration, DEFAULTS.toleranceNs),
      priority: pick<number>('priority', 'BERKELEYD_PRIORITY', int(0, 255, 'priority'), DEFAULTS.priority),
    };
    if (daemon.node.ctx.opts.pinnedMaster && next.priority === 0) throw new UsageError('--master and priority 0 contradict each other');
    daemon.reload(next);
    if (file !== undefined) createDebug.enable(env.DEBUG ?? '');
    const keys = next.keys ? `keys ${next.keys.ids().join(', ')} (signing with ${next.keys.sendKeyId})` : 'no authentication';
    say(`reloaded: ${keys}, tolerance ${formatDurationNs(next.toleranceNs)}, max adjust ${next.maxAdjustNs === null ? 'none' : formatDurationNs(next.maxAdjustNs)}, priority ${next.priority}`);
  } catch (err) {
    daemon.reloadRefused();
    say(`warning: reload refused, the running configuration stays in force: ${(err as Error).message}`);
  }
}

function readKeys(path: string): Keyring {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--key-file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const r = parseKeyFile(text);
  if (!r.ok) throw new UsageError(`--key-file: ${path}: ${r.error}`);
  return r.keyring;
}
