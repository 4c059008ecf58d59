/**
 * Reads a systemd service unit and EnvironmentFile the way systemd does, for
 * the cases our unit uses, so that a test can start ExecStart as systemd
 * would: same argv, same environment.
 *
 * Covered (systemd.syntax, systemd.service, systemd.exec):
 * - unit files: [Section], Key=Value, `#`/`;` comments, backslash line
 *   continuation, repeated keys, an empty assignment resetting a list;
 * - specifiers %% %n %N %p %i %t %S %C %L %E %d (system manager paths);
 *   any other specifier throws;
 * - command lines: words split at whitespace, "double" and 'single' quotes,
 *   C escapes, the prefixes - @ : + ! !!;
 * - expansion at exec time: a word that is exactly $NAME becomes the value
 *   split at whitespace (zero or more words); ${NAME} anywhere in a word is
 *   the exact value (undefined: empty), with ${NAME:-default} and
 *   ${NAME:+alternative}; $$ is a literal $; $NAME inside a longer word is
 *   left alone, as systemd does;
 * - Environment= (quoted NAME=value words) and EnvironmentFile= (a leading
 *   "-" means optional); settings from the files override Environment=.
 * Not covered: templates, drop-ins, ExecStart lists separated by ";".
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export type Env = Record<string, string>;

/** `section -> key -> values` in file order (after specifier expansion). */
export type UnitSections = Record<string, Record<string, string[]>>;

export interface ExecCommand {
  /** The prefix characters before the path ("-", "@", ":", "+", "!", "!!", combined). */
  prefixes: string;
  /** The words after the prefixes, unquoted, before environment expansion. */
  words: string[];
}

export interface EnvironmentFileRef {
  path: string;
  /** Written with a leading "-": a missing file is not an error. */
  optional: boolean;
}

export interface Unit {
  /** The unit's name, e.g. "berkeleyd.service". */
  name: string;
  sections: UnitSections;
  /** The single ExecStart= of the [Service] section. */
  execStart: ExecCommand;
  /** From Environment= lines, later assignments winning. */
  environment: Env;
  environmentFiles: EnvironmentFileRef[];
}

export interface ResolvedCommand {
  /** The program to execute. */
  file: string;
  /** argv, argv[0] included (different from `file` only with the "@" prefix). */
  argv: string[];
}

const WHITESPACE = ' \t\n\r';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads a unit file; `argv`/`file` are ExecStart expanded with `env`. */
export function readUnit(path: string, env: Env = {}): Unit & ResolvedCommand {
  const unit = parseUnit(readFileSync(path, 'utf8'), basename(path));
  return { ...unit, ...resolveExec(unit.execStart, env) };
}

export function parseUnit(text: string, name: string): Unit {
  const sections: UnitSections = {};
  let section: Record<string, string[]> | undefined;
  for (const line of logicalLines(text)) {
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new Error(`${name}: bad section header: ${line}`);
      section = sections[line.slice(1, -1)] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`${name}: not an assignment: ${line}`);
    if (section === undefined) throw new Error(`${name}: assignment outside a section: ${line}`);
    const key = line.slice(0, eq).trim();
    (section[key] ??= []).push(expandSpecifiers(line.slice(eq + 1).trim(), name));
  }
  const service = sections['Service'] ?? {};
  const execs = resetList(service['ExecStart'] ?? []);
  if (execs.length !== 1) throw new Error(`${name}: expected exactly one ExecStart=, found ${execs.length}`);
  return {
    name,
    sections,
    execStart: parseExec(execs[0]!),
    environment: parseEnvironmentAssignments(resetList(service['Environment'] ?? [])),
    environmentFiles: resetList(service['EnvironmentFile'] ?? []).map((v) =>
      v.startsWith('-') ? { path: v.slice(1), optional: true } : { path: v, optional: false },
    ),
  };
}

/** Expands an ExecStart command with `env` as systemd does just before exec. */
export function resolveExec(exec: ExecCommand, env: Env): ResolvedCommand {
  const expand = !exec.prefixes.includes(':');
  const words = expand ? exec.words.flatMap((w) => expandWord(w, env)) : exec.words;
  const file = words[0];
  if (file === undefined) throw new Error('ExecStart has no command');
  const argv = exec.prefixes.includes('@') ? words.slice(1) : words;
  if (argv.length === 0) throw new Error('ExecStart with "@" needs an argv[0]');
  return { file, argv };
}

/**
 * The environment the service starts with: `base` (the manager's, e.g. PATH),
 * then Environment=, then each EnvironmentFile= in order. `mapPath` lets a
 * test read, say, /etc/default/berkeleyd from a temporary directory.
 */
export function serviceEnvironment(unit: Unit, opts: { base?: Env; mapPath?: (path: string) => string } = {}): Env {
  const env: Env = { ...opts.base, ...unit.environment };
  for (const ref of unit.environmentFiles) {
    const path = opts.mapPath ? opts.mapPath(ref.path) : ref.path;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (ref.optional && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    Object.assign(env, parseEnvironmentFile(text));
  }
  return env;
}

export function readEnvironmentFile(path: string): Env {
  return parseEnvironmentFile(readFileSync(path, 'utf8'));
}

/**
 * systemd's EnvironmentFile syntax (parse_env_file): KEY=VALUE per line;
 * blank lines and lines starting with # or ; are comments; whitespace around
 * the key and the unquoted value is dropped; 'single quotes' are literal;
 * in "double quotes" a backslash escapes only " \ ` $ and newline; outside
 * quotes a backslash makes the next character literal; a backslash before a
 * newline continues the line (a comment too). Lines without "=" and invalid
 * names are ignored, as systemd does (with a warning). Later keys win.
 */
export function parseEnvironmentFile(text: string): Env {
  const env: Env = {};
  type State = 'preKey' | 'key' | 'preValue' | 'value' | 'valueEscape' | 'single' | 'double' | 'doubleEscape' | 'comment' | 'commentEscape';
  let state: State = 'preKey';
  let key = '';
  let value = '';
  let valueEnd = 0; // value length without trailing unescaped whitespace
  const push = (): void => {
    const k = key.trimEnd();
    if (ENV_NAME.test(k)) env[k] = value.slice(0, valueEnd);
    key = '';
    value = '';
    valueEnd = 0;
  };
  const append = (s: string, counts = true): void => {
    value += s;
    if (counts) valueEnd = value.length;
  };
  for (const c of text) {
    const newline = c === '\n' || c === '\r';
    switch (state) {
      case 'preKey':
        if (c === '#' || c === ';') state = 'comment';
        else if (!WHITESPACE.includes(c)) {
          state = 'key';
          key = c;
        }
        break;
      case 'key':
        if (newline) {
          state = 'preKey';
          key = '';
        } else if (c === '=') state = 'preValue';
        else key += c;
        break;
      case 'preValue':
        if (newline) {
          push();
          state = 'preKey';
        } else if (c === "'") state = 'single';
        else if (c === '"') state = 'double';
        else if (c === '\\') state = 'valueEscape';
        else if (!WHITESPACE.includes(c)) {
          state = 'value';
          append(c);
        }
        break;
      case 'value':
        if (newline) {
          push();
          state = 'preKey';
        } else if (c === '\\') state = 'valueEscape';
        else append(c, !WHITESPACE.includes(c));
        break;
      case 'valueEscape':
        state = 'value';
        if (!newline) append(c);
        break;
      case 'single':
        if (c === "'") state = 'preValue';
        else append(c);
        break;
      case 'double':
        if (c === '"') state = 'preValue';
        else if (c === '\\') state = 'doubleEscape';
        else append(c);
        break;
      case 'doubleEscape':
        state = 'double';
        if ('"\\`$'.includes(c)) append(c);
        else if (!newline) append('\\' + c);
        break;
      case 'comment':
        if (c === '\\') state = 'commentEscape';
        else if (newline) state = 'preKey';
        break;
      case 'commentEscape':
        state = 'comment';
        break;
    }
  }
  if (state !== 'preKey' && state !== 'key' && state !== 'comment' && state !== 'commentEscape') push();
  return env;
}

/**
 * Splits a command line into words as systemd does: whitespace separates,
 * quotes group (and may sit inside a word: a"b c" is one word), backslash
 * escapes are C escapes, in and out of quotes.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && WHITESPACE.includes(line[i]!)) i++;
    if (i >= line.length) break;
    let word = '';
    let quote: string | null = null;
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (c === '\\') {
        const [s, used] = cEscape(line, i + 1);
        word += s;
        i += used;
      } else if (quote !== null) {
        if (c === quote) quote = null;
        else word += c;
      } else if (c === '"' || c === "'") quote = c;
      else if (WHITESPACE.includes(c)) break;
      else word += c;
    }
    if (quote !== null) throw new Error(`unterminated quote in: ${line}`);
    words.push(word);
  }
  return words;
}

/** One word after expansion: zero or more words (only a lone $NAME splits). */
export function expandWord(word: string, env: Env): string[] {
  if (word.startsWith('$') && word[1] !== '{' && word[1] !== '$') {
    const value = env[word.slice(1)];
    return value === undefined ? [] : splitWords(value);
  }
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (c !== '$') {
      out += c;
    } else if (word[i + 1] === '$') {
      out += '$';
      i++;
    } else if (word[i + 1] === '{') {
      const close = word.indexOf('}', i + 2);
      if (close < 0) {
        out += word.slice(i);
        break;
      }
      out += expandBraced(word.slice(i + 2, close), env);
      i = close;
    } else {
      out += c;
    }
  }
  return [out];
}

function expandBraced(expr: string, env: Env): string {
  const m = /^([^:]*)(?::([-+])(.*))?$/s.exec(expr)!;
  const value = env[m[1]!];
  if (m[2] === '-') return value ? value : m[3]!;
  if (m[2] === '+') return value ? m[3]! : '';
  return value ?? '';
}

function parseExec(value: string): ExecCommand {
  const m = /^[-@:+!]*/.exec(value)!;
  return { prefixes: m[0], words: splitWords(value.slice(m[0].length)) };
}

function parseEnvironmentAssignments(values: string[]): Env {
  const env: Env = {};
  for (const word of values.flatMap(splitWords)) {
    const eq = word.indexOf('=');
    if (eq > 0 && ENV_NAME.test(word.slice(0, eq))) env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return env;
}

/** systemd list settings: an empty assignment drops what came before. */
function resetList(values: string[]): string[] {
  const last = values.lastIndexOf('');
  return values.slice(last + 1);
}

/** Joins continued lines, drops comments and blank lines, trims. */
function* logicalLines(text: string): Generator<string> {
  let pending: string | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#') || line.startsWith(';')) continue; // also inside a continuation
    if (pending === null && line === '') continue;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    pending = pending === null ? part : `${pending} ${part}`;
    if (!continued) {
      yield pending.trim();
      pending = null;
    }
  }
  if (pending !== null && pending.trim() !== '') yield pending.trim();
}

function expandSpecifiers(value: string, unitName: string): string {
  const dot = unitName.lastIndexOf('.');
  const prefix = dot < 0 ? unitName : unitName.slice(0, dot);
  const specifiers: Record<string, string> = {
    '%': '%',
    n: unitName,
    N: prefix,
    p: prefix.split('@')[0]!,
    i: prefix.includes('@') ? prefix.slice(prefix.indexOf('@') + 1) : '',
    t: '/run',
    S: '/var/lib',
    C: '/var/cache',
    L: '/var/log',
    E: '/etc',
    d: `/run/credentials/${unitName}`,
  };
  return value.replace(/%(.?)/gs, (_, c: string) => {
    const s = specifiers[c];
    if (s === undefined) throw new Error(`${unitName}: unsupported specifier %${c}`);
    return s;
  });
}

/** A C escape starting at line[at] (after the backslash): [text, characters used]. */
function cEscape(line: string, at: number): [string, number] {
  const c = line[at];
  if (c === undefined) throw new Error(`trailing backslash in: ${line}`);
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', s: ' ' };
  if (simple[c] !== undefined) return [simple[c], 1];
  if (c === 'x') {
    const hex = /^[0-9a-fA-F]{2}/.exec(line.slice(at + 1));
    if (hex) return [String.fromCharCode(parseInt(hex[0], 16)), 3];
  }
  if (/[0-7]/.test(c)) {
    const oct = /^[0-7]{3}/.exec(line.slice(at));
    if (oct) return [String.fromCharCode(parseInt(oct[0], 8)), 3];
  }
  return [c, 1];
}
