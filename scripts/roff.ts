/**
 * Just enough roff (man(7)) for pages generated from the command
 * definitions: escaping, and commander's option terms in man's typography.
 */

/** Text for a roff line: backslashes and hyphens escaped, no line taken for a request. */
export function esc(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

/** `--key-file <path>` as man writes it: the flags bold, the placeholders italic. */
export function term(flags: string): string {
  return flags
    .split(/(<[^>]+>|\[[^\]]+\])/)
    .filter((part) => part !== '')
    .map((part) => {
      const m = /^([<[])(.*)[>\]]$/.exec(part);
      if (!m) return `\\fB${esc(part)}\\fR`;
      return m[1] === '<' ? `\\fI${esc(m[2]!)}\\fR` : `[\\fI${esc(m[2]!)}\\fR]`;
    })
    .join('');
}

/** A paragraph; blank lines in the text start new ones. */
export function para(text: string): string {
  return text
    .trim()
    .split(/\n\s*\n/)
    .map((p) => `.PP\n${esc(p.replace(/\s*\n\s*/g, ' '))}`)
    .join('\n');
}

/** A tagged paragraph: a term (already roff) and its description (plain text). */
export function item(roffTerm: string, description: string): string {
  return `.TP\n${roffTerm}\n${esc(description)}`;
}

/** An example: a comment line, then the command, unfilled. */
export function example(comment: string, command: string): string {
  return `.PP\n${esc(comment)}\n.PP\n.RS 4\n.nf\n${esc(command)}\n.fi\n.RE`;
}

/** The page's heading, dated by SOURCE_DATE_EPOCH when set (reproducible builds). */
export function heading(name: string, section: number, version: string, manual: string): string {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  const date = (Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date()).toISOString().slice(0, 10);
  return `.\\" Generated from the command definitions (bin/) by scripts/man.ts: do not edit.\n.TH ${name.toUpperCase()} ${section} ${date} "berkeleyd ${version}" "${manual}"\n.nh\n.ad l`;
}
