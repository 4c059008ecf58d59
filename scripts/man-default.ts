/**
 * berkeleyd.default(5), generated from the file it describes:
 * systemd/berkeleyd.default, installed as /etc/default/berkeleyd. Its header
 * comment is the description, its "## " lines the sections, and each
 * variable comes with the comment above it. Every variable an option reads
 * must be in that file (test/man.test.ts checks it against the options).
 */
import { readFileSync } from 'node:fs';
import { pkg } from '../bin/program.js';
import { esc, heading, item, para } from './roff.js';

export const DEFAULTS_FILE = new URL('../../systemd/berkeleyd.default', import.meta.url);

export interface DefaultsEntry {
  name: string;
  value: string;
  /** Set in the file as shipped (not commented out). */
  set: boolean;
  comment: string;
}

/** The header, then sections of variables with their comments. */
export function parseDefaults(text: string): { header: string; sections: Array<{ title: string; entries: DefaultsEntry[] }> } {
  const lines = text.split('\n');
  const header: string[] = [];
  let i = 0;
  for (; i < lines.length && !lines[i]!.startsWith('## '); i++) header.push(lines[i]!.replace(/^# ?/, ''));
  const sections: Array<{ title: string; entries: DefaultsEntry[] }> = [];
  let comment: string[] = [];
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    const variable = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (line.startsWith('## ')) sections.push({ title: line.slice(3).trim(), entries: [] });
    else if (variable) {
      sections.at(-1)!.entries.push({ name: variable[2]!, value: variable[3]!, set: variable[1] === '', comment: comment.join(' ') });
      comment = [];
    } else if (line.startsWith('#')) comment.push(line.replace(/^# ?/, ''));
    else comment = [];
  }
  return { header: header.join('\n').replace(/^\/etc\/default\/berkeleyd:[^\n]*\n/, ''), sections };
}

export function defaultsPage(): string {
  const { header, sections } = parseDefaults(readFileSync(DEFAULTS_FILE, 'utf8'));
  const out = [
    heading('berkeleyd.default', 5, pkg.version, 'File Formats'),
    '.SH NAME',
    'berkeleyd.default \\- settings of the berkeleyd service, /etc/default/berkeleyd',
    '.SH SYNOPSIS',
    '.I /etc/default/berkeleyd',
    '.SH DESCRIPTION',
    para(header.replace(/^#\s*$/gm, '')),
  ];
  for (const s of sections) {
    out.push(`.SH "${esc(s.title.toUpperCase())}"`);
    for (const e of s.entries) {
      const shipped = e.set ? ` Set as shipped: ${e.name}=${e.value}.` : '';
      out.push(item(`\\fB${esc(e.name)}\\fR=\\fI${esc(e.value)}\\fR`, `${e.comment}${shipped}`));
    }
  }
  out.push('.SH "SEE ALSO"', 'berkeleyd(8), systemd.exec(5) (EnvironmentFile=)');
  return out.join('\n') + '\n';
}
