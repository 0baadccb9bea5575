/**
 * Bash history expansion: a line typed into an interactive shell (or read by a script shell after
 * `set -o history -H`) is rewritten from earlier lines before it is parsed. `!!`, `!-2`, `!ls`, `!$` and the quick
 * substitution `^ls^rm` make the command that runs one the gateway never saw (`ls /data` then `^ls^rm` runs
 * `rm /data`), and the history it draws on (earlier sessions' HISTFILE, `history -s`) is not the gateway's to know.
 */

/**
 * Whether bash could expand history in this line: a `!` outside single quotes that is not escaped and not followed
 * by what bash leaves alone (blank, `=`, `(`, a closing `"`, end of line, or part of `$!` / `${!`), or a line
 * starting with `^`.
 */
export function mayExpandHistory(line: string): boolean {
  if (/^\s*\^/.test(line)) return true;
  let inSingle = false;
  let inDouble = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (inSingle) {
      if (c === "'") inSingle = false;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === "'" && !inDouble) inSingle = true;
    else if (c === '"') inDouble = !inDouble;
    else if (c === '!') {
      const next = line[i + 1];
      const prev = line[i - 1];
      const left = prev === '$' || (prev === '{' && line[i - 2] === '$');
      if (!left && next !== undefined && !/[\s=("]/.test(next)) return true;
    }
  }
  return false;
}
