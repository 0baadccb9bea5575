/**
 * Assignments that make later code run: variables a program reads as a command (`PAGER=cmd`, via environment.ts),
 * variables bash itself runs (`PROMPT_COMMAND`, prompts, `BASH_ENV`), `${VAR:=value}` expansions, and declaration
 * builtins (`export`, `declare -n`).
 */
import { isCommandVariable, judgeAssignment } from './environment.js';
import { gitConfigKind } from './git.js';
import type { ShAssign, ShDeclClause, ShNode, ShWord } from './mvdan-sh.js';
import type { CommandCollector } from './command-collector.js';
import { resolveWord, sliceNode, type ResolvedWord, type SourceText } from './words.js';

const HOOK_VARIABLES = new Set(['PROMPT_COMMAND', 'PS0', 'PS1', 'PS2', 'PS3', 'PS4', 'BASH_ENV', 'ENV']);
/** `${VAR=value}` and `${VAR:=value}` assign (mvdan/sh syntax.ParExpOperator AssignUnset, AssignUnsetOrNull). */
const ASSIGNING_EXPANSIONS = new Set([74, 75]);

/** Whether setting this git configuration key can run a command (`GIT_CONFIG_KEY_n=core.pager`). */
export const isGitExecKey = (key: string): boolean => gitConfigKind(key) !== undefined;

export interface ShParamExp extends ShNode {
  readonly Param: { readonly Value: string } | null;
  readonly Exp: { readonly Op: number; readonly Word: ShWord | null } | null;
}

/** Statement spans keyed by the start of their command (the command with its redirections). */
export type StatementSpans = ReadonlyMap<number, { start: number; end: number }>;

/** `export`, `declare`, `local`, `readonly`, `typeset`, `nameref`: simple commands in their own right. */
export function emitDeclaration(
  collector: CommandCollector,
  decl: ShDeclClause,
  source: SourceText,
  spans: StatementSpans,
): void {
  const argv = [decl.Variant.Value, ...decl.Args.map((assign) => renderAssign(assign, source))];
  const span = spans.get(decl.pos);
  const text = span ? source.slice(span.start, span.end) : sliceNode(decl, source);
  collector.commands.push({ program: decl.Variant.Value, argv, text });
  // `declare -n ref=PAGER; ref='cmd'` assigns PAGER through a name; `export "$n=cmd"` names any variable.
  const nameref =
    decl.Variant.Value !== 'export' &&
    decl.Args.some((a) => a.Naked && a.Value && /^-[a-zA-Z]*n/.test(resolveWord(a.Value, source).value));
  const dynamicName = decl.Args.some((a) => a.Naked && a.Value && resolveWord(a.Value, source).dynamic);
  if (nameref || dynamicName) collector.commands.push({ program: null, argv, text });
}

/** `${PAGER:=cmd}` assigns PAGER as it expands. */
export function checkAssigningExpansion(
  collector: CommandCollector,
  expansion: ShParamExp,
  source: SourceText,
  depth: number,
): void {
  const name = expansion.Param?.Value;
  const exp = expansion.Exp;
  if (!name || !exp || !ASSIGNING_EXPANSIONS.has(exp.Op) || !isCommandVariable(name)) return;
  const text = sliceNode(expansion, source);
  const value = exp.Word ? resolveWord(exp.Word, source) : undefined;
  judgeAssignment(name, value, collector.sink([], text, source, depth), isGitExecKey);
}

/**
 * Variables whose value bash runs later as code: `PROMPT_COMMAND`, and the prompts `PS0`–`PS4`, whose command
 * substitutions run at each prompt of an interactive shell (bash manual §6.9 Controlling the Prompt);
 * `BASH_ENV`/`ENV` name a file later shells source. Variables programs read as commands are judged too.
 */
export function checkHookAssignment(
  collector: CommandCollector,
  assign: ShAssign,
  source: SourceText,
  depth: number,
): void {
  const name = assign.Name?.Value;
  if (name && isCommandVariable(name)) {
    const text = sliceNode(assign, source);
    const value = assign.Value ? resolveWord(assign.Value, source) : undefined;
    if (assign.Value || assign.Array) {
      judgeAssignment(name, value, collector.sink([], text, source, depth), isGitExecKey);
    }
    return;
  }
  if (!name || !HOOK_VARIABLES.has(name)) return;
  const text = sliceNode(assign, source);
  if (!assign.Value) {
    // bash 5.1: `PROMPT_COMMAND=(cmd1 cmd2)` runs each element.
    if (assign.Array) collector.commands.push({ program: null, argv: [text], text });
    return;
  }
  runHookValue(collector, name, resolveWord(assign.Value, source), text, depth);
}

export function isHookVariable(name: string): boolean {
  return HOOK_VARIABLES.has(name);
}

/**
 * What bash makes of a hook variable's value: `BASH_ENV`/`ENV` name a file the analysis cannot read (unknown),
 * `PROMPT_COMMAND` is code, a prompt is expanded text. Shared by parsed assignments and the `NAME=value` words of
 * `env` and a container's environment, so all three are judged alike.
 */
export function runHookValue(
  collector: CommandCollector,
  name: string,
  value: ResolvedWord,
  text: string,
  depth: number,
): void {
  if (value.dynamic || name === 'BASH_ENV' || name === 'ENV') {
    collector.commands.push({ program: null, argv: [text], text });
    return;
  }
  if (name === 'PROMPT_COMMAND') return collector.analyzeSource(value.value, depth + 1);
  analyzeExpandedText(collector, value.value, text, depth);
}

/**
 * Text bash expands like a double-quoted word (a prompt string, `compgen -W` words), as it expands an unquoted
 * heredoc body (bash §3.6.6): parse it as one to find its $( ) and backticks without reading the text itself as
 * a command. `text` is what an unknown command records when the text cannot be put in a heredoc.
 */
export function analyzeExpandedText(
  collector: CommandCollector,
  value: string,
  text: string,
  depth: number,
): void {
  const delimiter = 'AGENTGATE_PROMPT_END';
  if (value.split('\n').includes(delimiter)) {
    collector.commands.push({ program: null, argv: [text], text });
    return;
  }
  const nested = collector.analyzeApart(`: <<${delimiter}\n${value}\n${delimiter}\n`, depth + 1);
  collector.commands.push(...nested.slice(1));
}

function renderAssign(assign: ShAssign, source: SourceText): string {
  if (assign.Naked) {
    if (assign.Value) return resolveWord(assign.Value, source).value;
    return assign.Name?.Value ?? '';
  }
  return sliceNode(assign as ShNode, source);
}
