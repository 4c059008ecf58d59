/**
 * The generated documentation against the command line it documents:
 * every option that `--help` prints (for the program and each command) is
 * in berkeleyd(8) and offered by the bash completion, every variable an
 * option reads is in berkeleyd(8) and in the defaults file (so in
 * berkeleyd.default(5)), and man renders both pages without a warning.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bashCompletion } from '../scripts/completion.js';
import { defaultsPage, DEFAULTS_FILE, parseDefaults } from '../scripts/man-default.js';
import { commands, environment, manPage, neutralProgram } from '../scripts/man.js';
import { cli } from './helpers/group.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const page = manPage();
/** The page's text with roff's escapes undone, enough to find an option in it. */
const source = page.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '').replace(/\\e/g, '\\');
const commandNames = commands(neutralProgram()).map((c) => c.name());

/** The option flags that `berkeleyd [cmd] --help` prints. */
async function helpFlags(cmd: string[]): Promise<string[]> {
  const r = await cli([...cmd, '--help']);
  const section = r.stdout.split(/^Options:$/m)[1]!.split(/^\S/m)[0]!;
  return [...section.matchAll(/^ {2}(-[^ ,]+(?:, -[^ ,]+)?)/gm)].flatMap((m) => m[1]!.split(', '));
}

test('every option of every --help is in berkeleyd(8), under its command', async (t) => {
  t.deepEqual(commandNames, ['run', 'demo', 'simulate', 'status', 'now', 'keygen']);
  let n = 0;
  for (const cmd of [[], ...commandNames.map((c) => [c])]) {
    const flags = await helpFlags(cmd);
    t.true(flags.includes('--help'), `${cmd} --help lists --help`);
    const heading = cmd.length ? `.SS "berkeleyd ${cmd[0]} [options]` : '.SS "berkeleyd [options]"';
    const at = source.indexOf(heading);
    t.true(at >= 0, `no section for ${heading}`);
    const section = source.slice(at).split(/\n\.S[SH] /)[0]!;
    for (const flag of flags) {
      t.regex(section, new RegExp(`^${flag}(?=[ ,\\n])|, ${flag}(?=[ ,\\n])`, 'm'), `berkeleyd ${cmd.join(' ')}: ${flag} is not in the page`);
      n += 1;
    }
  }
  t.log(`${n} options of --help found in berkeleyd(8)`);
});

test('every variable an option reads is in berkeleyd(8) and in the defaults file', (t) => {
  const vars = [...environment(neutralProgram()).keys()];
  t.true(vars.includes('BERKELEYD_INTERVAL') && vars.includes('BERKELEYD_MASTER'), vars.join());
  const env = source.split('\n.SH ENVIRONMENT')[1]!.split('\n.SH ')[0]!;
  const file = parseDefaults(readFileSync(DEFAULTS_FILE, 'utf8')).sections.flatMap((s) => s.entries.map((e) => e.name));
  const defaults = defaultsPage();
  for (const v of vars) {
    t.true(env.includes(`\n${v}\n`), `${v} not in ENVIRONMENT`);
    t.true(file.includes(v), `${v} not in systemd/berkeleyd.default`);
    t.true(defaults.includes(`\\fB${v}\\fR=`), `${v} not in berkeleyd.default(5)`);
  }
});

test('the pages carry no uid-dependent default and render without a warning', (t) => {
  t.notRegex(page, /berkeleyd-\d+\.sock/);
  if (!has('man')) return t.pass('man not found (apt-get install man-db): rendering not checked');
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-man-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of [['berkeleyd.8', page], ['berkeleyd.default.5', defaultsPage()]] as const) {
    writeFileSync(join(dir, name), text);
    const r = spawnSync('man', ['--warnings', '-l', join(dir, name)], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', LANG: 'C.UTF-8' } });
    t.is(r.status, 0, r.stderr);
    t.is(r.stderr, '', `${name}: man warnings`);
    t.regex(r.stdout, name === 'berkeleyd.8' ? /EXIT STATUS[\s\S]*SIGNALS|SIGNALS[\s\S]*EXIT STATUS/ : /NETWORK/);
  }
});

/** What the completion offers for a command line whose last word is being typed. */
function complete(script: string, words: string[]): string[] {
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _berkeleyd; printf '%s\\n' "\${COMPREPLY[@]}"`, 'complete', script, ...words], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

const maybeBash = has('bash') ? test : test.skip;
maybeBash('the bash completion offers the commands, every option of --help, choices and files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-completion-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'berkeleyd');
  writeFileSync(script, bashCompletion());
  t.deepEqual(complete(script, ['berkeleyd', '']).filter((w) => !w.startsWith('-')).sort(), [...commandNames, 'help'].sort());
  for (const cmd of commandNames) {
    const offered = complete(script, ['berkeleyd', cmd, '-']);
    for (const flag of await helpFlags([cmd])) t.true(offered.includes(flag), `berkeleyd ${cmd} ${flag} not offered`);
  }
  t.deepEqual(complete(script, ['berkeleyd', 'run', '--clock', '']), ['system', 'virtual']);
  t.deepEqual(complete(script, ['berkeleyd', 'status', '--format', 'p']), ['prometheus']);
  t.deepEqual(complete(script, ['berkeleyd', 'run', '--interval', '']), [], 'a free value: nothing offered');
  writeFileSync(join(dir, 'keys.txt'), '');
  t.deepEqual(complete(script, ['berkeleyd', 'run', '--key-file', join(dir, 'key')]), [join(dir, 'keys.txt')]);
  t.deepEqual(complete(script, ['berkeleyd', 'run', '--ma']).sort(), ['--master', '--max-adjust', '--max-delay', '--max-members', '--max-slew']);
});
