/**
 * bash completion for berkeleyd, generated from the commander definitions
 * in bin/ (the same objects that print --help): the commands, each
 * command's options, the choices of an option that has them, files for
 * options that take a path, interfaces for --interface. Installed as
 * /usr/share/bash-completion/completions/berkeleyd, where bash-completion
 * loads it on first use; it also works without bash-completion.
 */
import type { Command, Option } from 'commander';
import { commands, neutralProgram } from './man.js';

/** The words a value of this option completes to: a bash expression, or null for free text. */
function valueCompletion(o: Option): string | null {
  if (o.argChoices) return `COMPREPLY=($(compgen -W '${o.argChoices.join(' ')}' -- "$cur"))`;
  if (/<(path|file)>/.test(o.flags)) return '_berkeleyd_files';
  if (o.long === '--interface') return `COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))`;
  return null;
}

const words = (cmd: Command): string => cmd.createHelp().visibleOptions(cmd).flatMap((o) => [o.short, o.long].filter(Boolean)).join(' ');

export function bashCompletion(): string {
  const program = neutralProgram();
  const cmds = commands(program);
  const valueCases: string[] = [];
  for (const cmd of cmds) {
    for (const o of cmd.options) {
      if (!o.required && !o.optional) continue; // a flag: no value follows
      const action = valueCompletion(o) ?? 'return 0'; // free text: offer nothing
      valueCases.push(`    '${cmd.name()} ${o.long}') ${action}; return 0 ;;`);
    }
  }
  return `# bash completion for berkeleyd(8)
# Generated from the command definitions (bin/) by scripts/completion.ts: do not edit.

_berkeleyd_files() {
  if declare -F _filedir >/dev/null; then _filedir; else COMPREPLY=($(compgen -f -- "$cur")); fi
}

_berkeleyd() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion || return
  else
    words=("\${COMP_WORDS[@]}"); cword=$COMP_CWORD; cur=\${COMP_WORDS[COMP_CWORD]}; prev=\${COMP_WORDS[COMP_CWORD-1]}
  fi
  local cmd='' i
  for ((i = 1; i < cword; i++)); do
    case \${words[i]} in
      ${cmds.map((c) => c.name()).join('|')}) cmd=\${words[i]}; break ;;
    esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W '${cmds.map((c) => c.name()).join(' ')} help ${words(program)}' -- "$cur"))
    return 0
  fi
  case "$cmd $prev" in
${valueCases.join('\n')}
  esac
  local opts
  case $cmd in
${cmds.map((c) => `    ${c.name()}) opts='${words(c)}' ;;`).join('\n')}
  esac
  if [[ $cur == -* || $cmd != keygen ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    _berkeleyd_files
  fi
  return 0
}
complete -F _berkeleyd berkeleyd
`;
}
