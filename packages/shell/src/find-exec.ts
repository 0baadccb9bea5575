/** The commands `find` runs through its `-exec` family of actions. */
import type { CommandCollector } from './command-collector.js';
import type { ResolvedWord, SourceText } from './words.js';

const FIND_EXEC_ACTIONS = new Set(['-exec', '-execdir', '-ok', '-okdir']);

/** `find … -exec cmd args {} \;` (also `+`, `-execdir`, `-ok`, `-okdir`), possibly several times. */
export function expandFind(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const previous = words[index - 1]!;
    if (word.dynamic) {
      // A quoted expansion after a predicate is that predicate's value (`-name "$x"`); anything else could
      // expand to an action such as `-exec` or `-delete`.
      const isValue = !word.splits && !previous.dynamic && /^-[a-z]/.test(previous.value);
      if (isValue) continue;
      return collector.pushUnknown(words, index, source);
    }
    if (!FIND_EXEC_ACTIONS.has(word.value)) continue;
    const start = index + 1;
    let end = start;
    while (end < words.length && !isActionEnd(words[end]!)) end++;
    const inner = words.slice(start, end);
    if (inner.length > 0) collector.emitWrapped(inner, source, depth);
    index = end;
  }
}

/** A static `;` or `+` ends an `-exec` action's command. */
function isActionEnd(word: ResolvedWord): boolean {
  return !word.dynamic && (word.value === ';' || word.value === '+');
}
