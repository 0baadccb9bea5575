/**
 * Prompt-like markers (`$ `, `# `, `% `, `> `): text after one may be the real command if the boundary slipped. A
 * prompt ends in one right after its last character (`~# `, `]$ `, `host% `) or is nothing but the marker; inside a
 * command the same characters follow a space or a file descriptor (`> out`, `2> /dev/null`, `# comment`,
 * `>> log`, `50% done`), and reading what follows them as a command would only add junk, which in allow-list mode
 * would refuse the line.
 */
const PROMPT_MARKER = /(?<=^|[^\s\d<>&|$#%])[$#%>] /g;

/**
 * Other readings of one Enter: each screen row of the line on its own, the text after each prompt-like marker
 * (a prompt taken for part of the command would turn `# rm -rf x` into a comment), and the keystrokes as typed.
 */
export function alternateReadings(line: string, typed: string | null): string[] {
  const out = new Set<string>();
  const rows = line.split('\n');
  for (const row of rows) {
    if (rows.length > 1) out.add(row.trim());
    for (const m of row.matchAll(PROMPT_MARKER)) out.add(row.slice(m.index + m[0].length).trim());
  }
  if (typed !== null) out.add(typed.trim());
  out.delete('');
  out.delete(line);
  return [...out];
}

/**
 * Every character of `typed`, in order, appears in `screen` (other output may be interleaved with the echo): the
 * terminal echoed the keys. Keys it did not echo (a password at a prompt printing `*`) must not become a reading,
 * which the record would keep.
 */
export function shownOnScreen(typed: string, screen: string): boolean {
  let at = 0;
  for (const ch of typed) {
    const found = screen.indexOf(ch, at);
    if (found < 0) return false;
    at = found + ch.length;
  }
  return true;
}
