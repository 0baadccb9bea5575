/**
 * Text bash evaluates later as code though it was quoted where it was written.
 *
 * Array subscripts: text that bash evaluates as arithmetic. An array subscript in arithmetic is expanded, command
 * substitutions included, so `a[$(cmd)]` runs cmd wherever bash reads it as an expression or a variable name:
 * `printf -v 'a[$(cmd)]'`, `test -v`, `let`, `declare -i`, `[[ $x -eq 1 ]]`, `$((x))` and `${b[x]}` where the
 * value of x holds it. Where the text goes cannot be followed through variables, so a word whose literal text
 * holds such a subscript is a program that cannot be known before it runs.
 */
import type { CommandCollector } from './command-collector.js';
import type { ShParamExp } from './assignments.js';
import type { ShWord } from './mvdan-sh.js';
import { literalText, sliceNode, type SourceText } from './words.js';

// `[`, a whole `$( )` or backtick substitution, then the `]` that closes the subscript (a regex class such as
// `[$(]` has no subscript bash could evaluate).
const SUBSCRIPT_WITH_COMMAND = /\[[^\]]*(\$\([\s\S]*\)|`[\s\S]*`)[\s\S]*\]/;

export function checkEvaluatedSubscript(collector: CommandCollector, word: ShWord, source: SourceText): void {
  if (!SUBSCRIPT_WITH_COMMAND.test(literalText(word))) return;
  const text = sliceNode(word, source);
  collector.commands.push({ program: null, argv: [text], text });
}

/** mvdan/sh syntax.ParExpOperator OtherParamOps: `${x@P}`, `${x@Q}`, … */
const TRANSFORMATION = 84;

/**
 * `${x@P}` expands the value of x as a prompt string, whose `$( )` and backticks run (bash §3.5.3): what the
 * value holds is not known here, so the expansion is a program that cannot be known before it runs.
 */
export function checkPromptTransformation(
  collector: CommandCollector,
  expansion: ShParamExp,
  source: SourceText,
): void {
  const exp = expansion.Exp;
  if (exp?.Op !== TRANSFORMATION || !exp.Word || !literalText(exp.Word).includes('P')) return;
  const text = sliceNode(expansion, source);
  collector.commands.push({ program: null, argv: [text], text });
}
