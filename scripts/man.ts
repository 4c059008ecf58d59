/**
 * berkeleyd(8), generated from the commander definitions in bin/: every
 * command, option, default and environment variable comes from the same
 * objects that print --help, so the page cannot drift from it. The prose
 * around them (signals, exit status, files, examples) is written here.
 */
import type { Command, Option } from 'commander';
import { buildProgram, pkg } from '../bin/program.js';
import { esc, example, heading, item, para, term } from './roff.js';

/**
 * The program, built in a neutral environment: some defaults shown in
 * --help depend on who runs it (the control socket's path has the uid in it).
 */
export function neutralProgram(): Command {
  const saved = { ...process.env };
  for (const k of ['RUNTIME_DIRECTORY', 'XDG_RUNTIME_DIR', 'STATE_DIRECTORY']) delete process.env[k];
  process.env.TMPDIR = '/tmp';
  try {
    return buildProgram();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** A --help text as a reader of any uid would see it. */
const neutral = (text: string): string => text.replace(/\/tmp\/berkeleyd-\d+\.sock/g, '/tmp/berkeleyd-UID.sock');

/** The subcommands, in --help's order, without commander's implicit `help`. */
export const commands = (program: Command): Command[] => program.createHelp().visibleCommands(program).filter((c) => c.name() !== 'help');

/** Options as --help lists them (with -h, --help), their terms and descriptions. */
export function optionsOf(cmd: Command): Array<{ option: Option; term: string; description: string }> {
  const help = cmd.createHelp();
  return help.visibleOptions(cmd).map((option) => ({ option, term: help.optionTerm(option), description: neutral(help.optionDescription(option)) }));
}

/** Every BERKELEYD_* variable an option reads, with the options that read it. */
export function environment(program: Command): Map<string, string[]> {
  const vars = new Map<string, string[]>();
  for (const cmd of commands(program)) {
    for (const { option, description } of optionsOf(cmd)) {
      const names = new Set([option.envVar, ...[...description.matchAll(/\benv (BERKELEYD_[A-Z_]+)/g)].map((m) => m[1])].filter((n): n is string => !!n));
      for (const name of names) {
        const users = vars.get(name) ?? [];
        const user = `${cmd.name()} ${option.long ?? option.flags}`;
        if (!users.includes(user)) users.push(user);
        vars.set(name, users);
      }
    }
  }
  return new Map([...vars].sort(([a], [b]) => a.localeCompare(b)));
}

function commandSection(cmd: Command): string {
  const help = cmd.createHelp();
  const args = help.visibleArguments(cmd);
  const out = [`.SS "${esc(`berkeleyd ${cmd.name()} [options]${args.map((a) => ` ${a.required ? `<${a.name()}>` : `[${a.name()}]`}`).join('')}`)}"`, para(cmd.description() + '.')];
  for (const a of args) out.push(item(term(a.required ? `<${a.name()}>` : `[${a.name()}]`), help.argumentDescription(a)));
  for (const o of optionsOf(cmd)) out.push(item(term(o.term), o.description));
  return out.join('\n');
}

const FILES: Array<[string, string]> = [
  ['/etc/default/berkeleyd', 'The service\'s settings, one BERKELEYD_* variable per option, each with its default; see berkeleyd.default(5). A conffile: an upgrade keeps your edits.'],
  ['/etc/berkeleyd/key', 'The group\'s keys (root\'s, mode 0600), written by berkeleyd keygen. The unit copies it for the service\'s dynamic user to /run/berkeleyd/key at start and at every reload; set BERKELEYD_KEY_FILE=/run/berkeleyd/key.'],
  ['/run/berkeleyd/berkeleyd.sock', 'The service\'s control socket. berkeleyd status and berkeleyd now ask it when no daemon of one\'s own has a socket at the default path: $RUNTIME_DIRECTORY/berkeleyd.sock under systemd, else $XDG_RUNTIME_DIR/berkeleyd.sock, else /tmp/berkeleyd-UID.sock.'],
  ['/var/lib/berkeleyd/clock.json', 'With --clock system: the learned frequency, kept across restarts (like chrony\'s driftfile). Under the dynamic user it lives in /var/lib/private/berkeleyd; purging the package removes it.'],
  ['/lib/systemd/system/berkeleyd.service', 'The unit: berkeleyd run in the foreground as a dynamic user holding only CAP_SYS_TIME, with the options of /etc/default/berkeleyd; systemctl reload sends SIGHUP.'],
  ['/usr/lib/systemd/ntp-units.d/80-berkeleyd.list', 'Names the unit to timedatectl(1) as an NTP service it may start and stop.'],
  ['/usr/share/doc/berkeleyd/examples/alerts.rules.yml', 'Prometheus alert rules for the metrics that --metrics serves.'],
];

const SIGNALS: Array<[string, string]> = [
  ['SIGTERM, SIGINT', 'Leave cleanly: send LEAVE to the group, close the sockets, remove the control socket, exit 0. systemctl stop sends SIGTERM.'],
  ['SIGHUP', 'Reload (systemctl reload): read the key file again and, with --reload-env-file, the reloadable settings (BERKELEYD_KEY_FILE, BERKELEYD_TOLERANCE, BERKELEYD_MAX_ADJUST, BERKELEYD_PRIORITY, DEBUG). All of them are put in force at once, or all refused with a warning while the running configuration stays. Other settings need a restart; a reload names those that changed.'],
];

const EXIT: Array<[string, string]> = [
  ['0', 'Success; also --help and --version, and run stopped by a signal.'],
  ['1', 'An unexpected error.'],
  ['2', 'A usage or configuration error, named on standard error: a bad option or variable, a port in use, an unknown interface, an unreadable key file, a system clock that cannot be disciplined (no CAP_SYS_TIME, or another time service running). The unit does not restart after it (RestartPreventExitStatus=2).'],
];

const OTHER_ENV: Array<[string, string]> = [
  ['DEBUG', 'Debug namespaces to log: berkeleyd:* logs every round; or some of berkeleyd:round, berkeleyd:wire, berkeleyd:clock, berkeleyd:election, berkeleyd:net, berkeleyd:control, comma-separated. Warnings and errors are logged whatever it says.'],
  ['DEBUG_HIDE_DATE', 'yes: debug lines without their own date. Implied under systemd (JOURNAL_STREAM set), where the journal stamps every line.'],
  ['RUNTIME_DIRECTORY', 'Set by systemd (RuntimeDirectory=): where the control socket goes by default.'],
  ['STATE_DIRECTORY', 'Set by systemd (StateDirectory=): where the state file goes by default.'],
  ['XDG_RUNTIME_DIR', 'The control socket\'s directory outside systemd, when set.'],
];

export function manPage(): string {
  const program = neutralProgram();
  const cmds = commands(program);
  const env = environment(program);
  const out = [
    heading('berkeleyd', 8, pkg.version, 'System Administration'),
    '.SH NAME',
    `berkeleyd \\- ${esc(pkg.description.replace(/^Keeps/, 'keep'))}`,
    '.SH SYNOPSIS',
    ...cmds.map((c) => `.B berkeleyd ${esc(c.name())}\n[\\fIoptions\\fR]${c.createHelp().visibleArguments(c).map((a) => ` [\\fI${esc(a.name())}\\fR]`).join('')}\n.br`),
    '.B berkeleyd\n\\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR',
    '.SH DESCRIPTION',
    para(`berkeleyd keeps the clocks of a group of LAN hosts in agreement with the Berkeley algorithm. One node, the master, multicasts its clock to a UDP multicast group. Every peer measures its offset against the master with a short burst of four-timestamp exchanges and reports it. The master averages the clocks that agree and multicasts one table of adjustments; every node slews its clock by its own entry and tracks its frequency. A clock that lies or runs away is left out of the average. If the master dies, the others elect a new one. With a key file, every datagram is authenticated with HMAC-SHA256.

berkeleyd run is the daemon; the package's systemd unit, berkeleyd.service, starts it with the settings of /etc/default/berkeleyd. With --clock system it disciplines the host's own clock (CLOCK_REALTIME, through adjtimex) and needs CAP_SYS_TIME; with --clock virtual (the default of a bare berkeleyd run) it keeps a clock inside the process that touches nothing, which local programs read with berkeleyd now.

Durations are written as people write them: 250ms, 2s, 100us, 1m. Every option of run can also be set by a BERKELEYD_* variable (the long option in capitals, dashes as underscores); an option on the command line wins over its variable, and an empty variable counts as not set.`),
    '.SH COMMANDS',
    ...cmds.map(commandSection),
    '.SS "berkeleyd [options]"',
    ...optionsOf(program).map((o) => item(term(o.term), o.description)),
    '.SH ENVIRONMENT',
    ...[...env].map(([name, users]) => item(`\\fB${esc(name)}\\fR`, `Sets ${users.join(', ')}.`)),
    ...OTHER_ENV.map(([name, text]) => item(`\\fB${esc(name)}\\fR`, text)),
    '.SH FILES',
    ...FILES.map(([path, text]) => item(`\\fI${esc(path)}\\fR`, text)),
    '.SH SIGNALS',
    ...SIGNALS.map(([sig, text]) => item(`\\fB${esc(sig)}\\fR`, text)),
    '.SH "EXIT STATUS"',
    ...EXIT.map(([code, text]) => item(`\\fB${code}\\fR`, text)),
    '.SH EXAMPLES',
    example('The service: its state, what it knows, its log.', 'systemctl status berkeleyd\nsudo berkeleyd status\njournalctl -u berkeleyd -f'),
    example('A group with keys: write a key file once, copy it to every host as /etc/berkeleyd/key, then set BERKELEYD_KEY_FILE=/run/berkeleyd/key in /etc/default/berkeleyd and reload.', 'sudo mkdir -p /etc/berkeleyd && sudo berkeleyd keygen /etc/berkeleyd/key\nsudo systemctl reload berkeleyd'),
    example('Pin this host as master, on eth0, in the foreground, with every round logged.', 'DEBUG=berkeleyd:* berkeleyd run --master --interface eth0'),
    example('Four daemons on loopback, converging; then a simulated group of 50 with 10% loss.', 'berkeleyd demo\nberkeleyd simulate --nodes 50 --loss 10% --quiet'),
    '.SH "SEE ALSO"',
    'berkeleyd.default(5), systemctl(1), journalctl(1), timedatectl(1), adjtimex(2), chronyd(8)',
    '.PP',
    'The README and docs/ of the source tree (protocol, clock, performance).',
  ];
  return out.join('\n') + '\n';
}
