/**
 * Shell command analysis: every simple command a command line can run, wherever it is nested, with its program
 * (basename) when it can be known before the line runs. Policy rules (`programs`, `pattern`) are matched against
 * each of them; a `null` program means "unknowable" and the gate treats it as matching every rule when the listener
 * says so. Anything we cannot parse is an error, and the caller must deny it.
 */
import type { ShellSimpleCommand } from '@agentgate/core';
import { programExecution } from './catalogue.js';
import { isCommandVariable, judgeAssignment } from './environment.js';
import { runCatalogueEntry, type CommandSink } from './execution.js';
import { gitConfigKind } from './git.js';
import {
  parseShell,
  ShellSyntaxError,
  walk,
  type ShAssign,
  type ShCallExpr,
  type ShDeclClause,
  type ShNode,
  type ShStmt,
  type ShWord,
} from './mvdan-sh.js';
import { programReader } from './readers.js';
import { basename, quoteForShell, resolveWord, sliceNode, SourceText, type ResolvedWord } from './words.js';
import { EVALUATORS, SHELL_SPEC, SHELLS, SOURCERS } from './shells.js';
import { SUBCOMMAND_WRAPPERS } from './subcommand-wrappers.js';
import type { WrapperSpec } from './wrapper-spec.js';
import { wrapperSpec } from './wrappers.js';

export interface ShellAnalysis {
  readonly commands: ShellSimpleCommand[];
  /** Set when the text cannot be analysed: the caller must deny it. */
  readonly error?: string;
  /**
   * With `error`: the text is a valid beginning that ended too early (open quote, `if` without `fi`, trailing
   * `|` or `\`). An interactive shell would prompt for more (PS2), so a line-based caller may wait for the next
   * line and analyse the lines together instead of denying.
   */
  readonly incomplete?: boolean;
}

/** `sh -c "sh -c '…'"` nesting allowed before we give up (and deny). */
const MAX_NESTING = 8;
/**
 * Longest command line analysed; longer ones are refused. This bounds the event-loop time one request can take
 * (docs/performance.md, "Smaller measurements"); heredocs that write files parse as one word and stay cheap.
 */
export const MAX_COMMAND_BYTES = 256 * 1024;

const HOOK_VARIABLES = new Set(['PROMPT_COMMAND', 'PS0', 'PS1', 'PS2', 'PS3', 'PS4', 'BASH_ENV', 'ENV']);
/** A line that runs more simple commands than this is refused rather than analysed. */
const MAX_SIMPLE_COMMANDS = 10_000;
const MAX_WRAPPER_DEPTH = 32;
const ASSIGNMENT_WORD = /^[A-Za-z_][A-Za-z0-9_]*=/;
const FIND_EXEC_ACTIONS = new Set(['-exec', '-execdir', '-ok', '-okdir']);
/** `${VAR=value}` and `${VAR:=value}` assign (mvdan/sh syntax.ParExpOperator AssignUnset, AssignUnsetOrNull). */
const ASSIGNING_EXPANSIONS = new Set([74, 75]);
/** Builtins that assign variables they are given by name: `read PAGER`, `printf -v PAGER`, `mapfile PAGER`. */
const ASSIGNING_BUILTINS = new Set(['read', 'mapfile', 'readarray', 'printf', 'getopts']);
/** Catalogue classes whose entries decide something; the others only document the program (README). */
const DECIDING_CLASSES = new Set(['interpreter', 'commands', 'options', 'always']);

const isGitExecKey = (key: string): boolean => gitConfigKind(key) !== undefined;

interface ShParamExp extends ShNode {
  readonly Param: { readonly Value: string } | null;
  readonly Exp: { readonly Op: number; readonly Word: ShWord | null } | null;
}

class AnalysisError extends Error {
  incomplete = false;
}

/** Analyse a command line as bash would read it (an SSH exec request, an interactive line, `sh -c` text). */
export function analyzeShellCommand(text: string): ShellAnalysis {
  const collector = new SimpleCommandCollector();
  try {
    if (Buffer.byteLength(text, 'utf8') > MAX_COMMAND_BYTES) {
      throw new AnalysisError(`command longer than ${MAX_COMMAND_BYTES} bytes`);
    }
    collector.analyzeSource(text, 0);
    return { commands: collector.commands };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof AnalysisError && err.incomplete)
      return { commands: [], error: message, incomplete: true };
    return { commands: [], error: message };
  }
}

/** Analyse an argument vector run without a shell (docker exec `Cmd`, an SSH subsystem-less exec as argv). */
export function analyzeArgv(argv: readonly string[]): ShellAnalysis {
  const collector = new SimpleCommandCollector();
  try {
    if (argv.length === 0) return { commands: [] };
    // A synthetic source so that derived commands (`sudo rm …` → `rm …`) get a text like parsed ones do.
    const quoted = argv.map(quoteForShell);
    const source = new SourceText(quoted.join(' '));
    const words: ResolvedWord[] = [];
    let offset = 0;
    argv.forEach((value, index) => {
      const length = Buffer.byteLength(quoted[index]!, 'utf8');
      words.push({ value, dynamic: false, splits: false, start: offset, end: offset + length });
      offset += length + 1;
    });
    collector.emitCommand(words, source.text, source, 0);
    return { commands: collector.commands };
  } catch (err) {
    return { commands: [], error: err instanceof Error ? err.message : String(err) };
  }
}

class SimpleCommandCollector {
  readonly commands: ShellSimpleCommand[] = [];
  /** Wrappers around the command being emitted (`sudo nice timeout …`): bounded, as each level copies argv. */
  private wrapperDepth = 0;

  analyzeSource(text: string, depth: number): void {
    if (depth > MAX_NESTING)
      throw new AnalysisError(`shell code nested more than ${MAX_NESTING} levels deep`);
    const source = new SourceText(text);
    let file;
    try {
      file = parseShell(text);
    } catch (err) {
      const error = new AnalysisError(`cannot parse shell command: ${(err as Error).message}`, {
        cause: err,
      });
      // Only the outermost text can be continued on a next line; nested `sh -c '…'` strings are complete.
      error.incomplete = depth === 0 && err instanceof ShellSyntaxError && err.incomplete;
      throw error;
    }
    // Redirections belong to the statement, not the call: widen the call's text to include them (`rm x >/dev/null`).
    const statementSpans = new Map<number, { start: number; end: number }>();
    walk(file, (node) => {
      switch (node.type) {
        case 'Stmt':
          this.noteStatementSpan(node as ShStmt, statementSpans);
          break;
        case 'CallExpr': {
          const call = node as ShCallExpr;
          if (call.Args.length === 0) break; // only assignments: their substitutions are visited on their own
          const words = call.Args.map((word) => resolveWord(word, source));
          const span = statementSpans.get(call.pos);
          const text = span ? source.slice(span.start, span.end) : sliceNode(call, source);
          this.emitCommand(words, text, source, depth);
          break;
        }
        case 'DeclClause':
          this.emitDeclaration(node as ShDeclClause, source, statementSpans);
          break;
        case 'Assign':
          this.checkHookAssignment(node as ShAssign, source, depth);
          break;
        case 'ParamExp':
          this.checkAssigningExpansion(node as ShParamExp, source, depth);
          break;
      }
      // the walk goes on into $( ), <( ), heredoc bodies, function bodies and loops: they hold more commands
    });
  }

  private noteStatementSpan(stmt: ShStmt, spans: Map<number, { start: number; end: number }>): void {
    const command = stmt.Cmd;
    if (!command) return;
    let start = command.pos;
    let end = command.end;
    const key = start;
    for (const redirect of stmt.Redirs) {
      start = Math.min(start, redirect.pos);
      end = Math.max(end, redirect.end);
    }
    spans.set(key, { start, end });
  }

  /** `export`, `declare`, `local`, `readonly`, `typeset`, `nameref`: simple commands in their own right. */
  private emitDeclaration(
    decl: ShDeclClause,
    source: SourceText,
    spans: Map<number, { start: number; end: number }>,
  ) {
    const argv = [decl.Variant.Value, ...decl.Args.map((assign) => renderAssign(assign, source))];
    const span = spans.get(decl.pos);
    const text = span ? source.slice(span.start, span.end) : sliceNode(decl, source);
    this.commands.push({ program: decl.Variant.Value, argv, text });
    // `declare -n ref=PAGER; ref='cmd'` assigns PAGER through a name; `export "$n=cmd"` names any variable.
    const nameref =
      decl.Variant.Value !== 'export' &&
      decl.Args.some((a) => a.Naked && a.Value && /^-[a-zA-Z]*n/.test(resolveWord(a.Value, source).value));
    const dynamicName = decl.Args.some((a) => a.Naked && a.Value && resolveWord(a.Value, source).dynamic);
    if (nameref || dynamicName) this.commands.push({ program: null, argv, text });
  }

  /** `${PAGER:=cmd}` assigns PAGER as it expands. */
  private checkAssigningExpansion(expansion: ShParamExp, source: SourceText, depth: number): void {
    const name = expansion.Param?.Value;
    const exp = expansion.Exp;
    if (!name || !exp || !ASSIGNING_EXPANSIONS.has(exp.Op) || !isCommandVariable(name)) return;
    const text = sliceNode(expansion, source);
    const value = exp.Word ? resolveWord(exp.Word, source) : undefined;
    judgeAssignment(name, value, this.sink([], text, source, depth), isGitExecKey);
  }

  /**
   * Variables whose value bash runs later as code: `PROMPT_COMMAND`, and the prompts `PS0`–`PS4`, whose command
   * substitutions run at each prompt of an interactive shell (bash manual §6.9 Controlling the Prompt);
   * `BASH_ENV`/`ENV` name a file later shells source.
   */
  private checkHookAssignment(assign: ShAssign, source: SourceText, depth: number): void {
    const name = assign.Name?.Value;
    if (name && isCommandVariable(name)) {
      const text = sliceNode(assign, source);
      const value = assign.Value ? resolveWord(assign.Value, source) : undefined;
      if (assign.Value || assign.Array) {
        judgeAssignment(name, value, this.sink([], text, source, depth), isGitExecKey);
      }
      return;
    }
    if (!name || !HOOK_VARIABLES.has(name)) return;
    const text = sliceNode(assign, source);
    if (!assign.Value) {
      // bash 5.1: `PROMPT_COMMAND=(cmd1 cmd2)` runs each element.
      if (assign.Array) this.commands.push({ program: null, argv: [text], text });
      return;
    }
    const value = resolveWord(assign.Value, source);
    if (value.dynamic || name === 'BASH_ENV' || name === 'ENV') {
      this.commands.push({ program: null, argv: [text], text });
      return;
    }
    if (name === 'PROMPT_COMMAND') return this.analyzeSource(value.value, depth + 1);
    // A prompt string is expanded like a double-quoted word, as is an unquoted heredoc body (bash §3.6.6): parse
    // it as one to find its $( ) and backticks without reading the prompt text itself as a command.
    const delimiter = 'AGENTGATE_PROMPT_END';
    if (value.value.split('\n').includes(delimiter)) {
      this.commands.push({ program: null, argv: [text], text });
      return;
    }
    const nested = new SimpleCommandCollector();
    nested.analyzeSource(`: <<${delimiter}\n${value.value}\n${delimiter}\n`, depth + 1);
    this.commands.push(...nested.commands.slice(1));
  }

  /** Record one simple command and whatever it runs in turn (wrappers, interpreters, eval). */
  emitCommand(words: readonly ResolvedWord[], text: string, source: SourceText, depth: number): void {
    const first = words[0];
    if (!first) return;
    if (this.commands.length >= MAX_SIMPLE_COMMANDS) {
      throw new AnalysisError(`more than ${MAX_SIMPLE_COMMANDS} simple commands`);
    }
    const program = first.dynamic ? null : basename(first.value);
    this.commands.push({ program, argv: words.map((word) => word.value), text });
    if (program === null) return;

    if (EVALUATORS.has(program)) return this.runShellWords(words.slice(1), words, source, depth);
    if (SOURCERS.has(program)) return this.pushUnknown(words, 0, source);
    if (program === 'trap') return this.expandTrap(words, source, depth);
    if (program === 'alias') return this.expandAlias(words, source, depth);
    if (program === 'find') return this.expandFind(words, source, depth);
    // `hash -p /bin/rm ls` makes `ls` run rm; `enable -f lib.so name` loads a builtin: later names mean anything.
    if ((program === 'hash' || program === 'enable') && words.some((w) => /^-[a-zA-Z]*[pf]/.test(w.value))) {
      return this.pushUnknown(words, 0, source);
    }
    if (ASSIGNING_BUILTINS.has(program) && words.some((w) => !w.dynamic && isCommandVariable(w.value))) {
      return this.pushUnknown(words, 0, source);
    }
    if (SHELLS.has(program)) return this.expandShell(words, source, depth);
    if (program === 'runuser' && !words.some((w) => w.value === '-u' || w.value.startsWith('--user'))) {
      return this.expandSuLike(words, source, depth);
    }
    if (program === 'su') return this.expandSuLike(words, source, depth);
    const wrapper = wrapperSpec(program);
    if (wrapper) return this.expandWrapper(program, wrapper, words, source, depth);
    // A subcommand wrapper is found anywhere among the words, so the program's own reading still follows.
    this.expandSubcommandWrapper(program, words, source, depth);
    const sink = this.sink(words, text, source, depth);
    const reader = programReader(program);
    if (reader) return reader(words, sink);
    const entry = programExecution(program);
    if (entry && DECIDING_CLASSES.has(entry.class)) runCatalogueEntry(entry, words, sink);
  }

  /**
   * Where a reader reports what the program runs: commands are analysed as if written here, unknown code makes
   * one unknown simple command (the program's own text), at most once per program.
   */
  private sink(words: readonly ResolvedWord[], text: string, source: SourceText, depth: number): CommandSink {
    let unknownPushed = false;
    const unknown = (): void => {
      if (unknownPushed) return;
      unknownPushed = true;
      if (words.length > 0) this.pushUnknown(words, 0, source);
      else this.commands.push({ program: null, argv: [text], text });
    };
    return {
      shell: (word) => {
        if (word.dynamic) unknown();
        else this.analyzeSource(word.value, depth + 1);
      },
      shellWords: (code) => {
        if (code.some((w) => w.dynamic)) unknown();
        else if (code.length > 0) this.analyzeSource(code.map((w) => w.value).join(' '), depth + 1);
      },
      command: (inner) => this.emitWrapped(inner, source, depth),
      program: (word) => {
        if (word.dynamic) return unknown();
        const path = word.value.trim();
        if (path !== '') this.commands.push({ program: basename(path), argv: [path], text: path });
      },
      unknown,
    };
  }

  /** `npm exec CMD`, `perf stat CMD`, `ip netns exec NS CMD`: the subcommand is a wrapper. */
  private expandSubcommandWrapper(
    program: string,
    words: readonly ResolvedWord[],
    source: SourceText,
    depth: number,
  ): boolean {
    const subcommands = SUBCOMMAND_WRAPPERS.get(program);
    if (!subcommands) return false;
    for (let index = 1; index < words.length; index++) {
      if (words[index]!.value === '--') return false;
      for (const [path, spec] of subcommands) {
        const parts = path.split(' ');
        const matches = parts.every((part, i) => {
          const word = words[index + i];
          return word !== undefined && !word.dynamic && word.value === part;
        });
        if (!matches) continue;
        const last = index + parts.length - 1;
        this.expandWrapper(`${program} ${path}`, spec, words.slice(last), source, depth);
        return true;
      }
    }
    return false;
  }

  /** The command a wrapper runs (`sudo CMD`, `find -exec CMD ;`). */
  private emitWrapped(inner: readonly ResolvedWord[], source: SourceText, depth: number): void {
    if (this.wrapperDepth >= MAX_WRAPPER_DEPTH) {
      throw new AnalysisError(`more than ${MAX_WRAPPER_DEPTH} nested command wrappers`);
    }
    this.wrapperDepth++;
    try {
      this.emitCommand(inner, spanText(inner, source), source, depth);
    } finally {
      this.wrapperDepth--;
    }
  }

  /** A program whose code cannot be seen before it runs: counts as an unknown program. */
  private pushUnknown(words: readonly ResolvedWord[], from: number, source: SourceText): void {
    const rest = words.slice(Math.min(from, words.length - 1));
    this.commands.push({ program: null, argv: rest.map((w) => w.value), text: spanText(rest, source) });
  }

  /** Words joined with spaces and run as shell code (`eval a b`, `watch cmd args`). */
  private runShellWords(
    code: readonly ResolvedWord[],
    all: readonly ResolvedWord[],
    source: SourceText,
    depth: number,
  ) {
    if (code.some((w) => w.dynamic)) return this.pushUnknown(all, 0, source);
    if (code.length > 0) this.analyzeSource(code.map((w) => w.value).join(' '), depth + 1);
  }

  private runShellString(
    word: ResolvedWord | undefined,
    all: readonly ResolvedWord[],
    source: SourceText,
    depth: number,
  ) {
    if (!word) return;
    if (word.dynamic) return this.pushUnknown(all, 0, source);
    this.analyzeSource(word.value, depth + 1);
  }

  /** `trap 'cmd' SIGNAL…`: the handler is shell code run later in this shell. */
  private expandTrap(words: readonly ResolvedWord[], source: SourceText, depth: number): void {
    let index = 1;
    if (words[index]?.value === '--') index++;
    const handler = words[index];
    if (!handler || (!handler.dynamic && (handler.value.startsWith('-') || handler.value === ''))) return;
    this.runShellString(handler, words, source, depth);
  }

  /** `alias ls='rm -rf'`: an interactive shell runs the value in place of the name on later lines. */
  private expandAlias(words: readonly ResolvedWord[], source: SourceText, depth: number): void {
    for (const word of words.slice(1)) {
      if (word.dynamic) return this.pushUnknown(words, 0, source);
      const equals = word.value.indexOf('=');
      if (equals > 0) this.analyzeSource(word.value.slice(equals + 1), depth + 1);
    }
  }

  /** `find … -exec cmd args {} \;` (also `+`, `-execdir`, `-ok`, `-okdir`), possibly several times. */
  private expandFind(words: readonly ResolvedWord[], source: SourceText, depth: number): void {
    for (let index = 1; index < words.length; index++) {
      const word = words[index]!;
      const previous = words[index - 1]!;
      if (word.dynamic) {
        // A quoted expansion after a predicate is that predicate's value (`-name "$x"`); anything else could
        // expand to an action such as `-exec` or `-delete`.
        const isValue = !word.splits && !previous.dynamic && /^-[a-z]/.test(previous.value);
        if (isValue) continue;
        return this.pushUnknown(words, index, source);
      }
      if (!FIND_EXEC_ACTIONS.has(word.value)) continue;
      const start = index + 1;
      let end = start;
      while (
        end < words.length &&
        !(isStatic(words[end]!) && (words[end]!.value === ';' || words[end]!.value === '+'))
      ) {
        end++;
      }
      const inner = words.slice(start, end);
      if (inner.length > 0) this.emitWrapped(inner, source, depth);
      index = end;
    }
  }

  /**
   * A POSIX-like shell: `sh -c STRING [name [args]]` runs STRING; `sh FILE` and `sh` (stdin: `curl … | sh`,
   * `sh < f`) run code we cannot see.
   */
  private expandShell(words: readonly ResolvedWord[], source: SourceText, depth: number): void {
    const spec = SHELL_SPEC;
    let index = 1;
    let codeOption = false;
    for (; index < words.length; index++) {
      const word = words[index]!;
      if (word.dynamic) return this.pushUnknown(words, 0, source);
      const value = word.value;
      if (value === '--') {
        index++;
        break;
      }
      if (value.startsWith('--') && value.length > 2) {
        const [name, attached] = splitLong(value);
        if (spec.valueLongs.includes(name) && attached === undefined) index++;
        continue;
      }
      const isOption = value.length > 1 && (value.startsWith('-') || value.startsWith('+'));
      if (!isOption) break;
      let skipNext = false;
      for (let letterIndex = 1; letterIndex < value.length; letterIndex++) {
        const letter = value[letterIndex]!;
        if (spec.codeLetters.includes(letter)) codeOption = true;
        else if (spec.valueLetters.includes(letter)) {
          skipNext = letterIndex === value.length - 1;
          break;
        }
      }
      if (skipNext) index++;
    }
    if (codeOption) return this.runShellString(words[index], words, source, depth);
    this.pushUnknown(words, 0, source);
  }

  /** `su [-] [user] -c CMD`, `runuser user -c CMD`: options may follow operands (getopt permutes); without -c
   *  they start an interactive shell reading stdin. */
  private expandSuLike(words: readonly ResolvedWord[], source: SourceText, depth: number): void {
    let ranCode = false;
    for (let index = 1; index < words.length; index++) {
      const value = words[index]!.value;
      if (value === '--') break;
      if (words[index]!.dynamic) continue;
      if (value === '-c' || value === '--command' || value === '--session-command') {
        this.runShellString(words[index + 1], words, source, depth);
        ranCode = true;
        index++;
      } else if (/^--(session-)?command=/.test(value)) {
        this.analyzeSource(value.slice(value.indexOf('=') + 1), depth + 1);
        ranCode = true;
      } else if (/^-[a-zA-Z]*c./.test(value) && !value.startsWith('--')) {
        this.analyzeSource(value.slice(value.indexOf('c') + 1), depth + 1);
        ranCode = true;
      }
    }
    if (!ranCode) this.pushUnknown(words, 0, source);
  }

  private expandWrapper(
    program: string,
    spec: WrapperSpec,
    words: readonly ResolvedWord[],
    source: SourceText,
    depth: number,
  ): void {
    let operandsToSkip = spec.operandsBefore ?? 0;
    let optionsDone = spec.noOptions ?? false;
    let joinAsShell = spec.joinAsShell ?? false;
    let shellFlag = false;
    let index = 1;
    const guessFrom = (from: number): void => this.guessWrappedCommand(spec, words, from, source, depth);
    for (; index < words.length; index++) {
      const word = words[index]!;
      const value = word.value;
      if (word.dynamic) {
        // `env A="$x" cmd`: a quoted expansion in an assignment's value cannot become another word.
        if (spec.assignments && !word.splits && ASSIGNMENT_WORD.test(value)) {
          this.judgeWrapperAssignment(word, source, depth);
          continue;
        }
        return this.pushUnknown(words, index, source);
      }
      if (!optionsDone && value === '--') {
        optionsDone = true;
        continue;
      }
      if (!optionsDone && value.startsWith('--') && value.length > 2) {
        const [name, attached] = splitLong(value);
        if (spec.noCommandLongs?.includes(name)) return;
        if (spec.unknownLongs?.includes(name)) return this.pushUnknown(words, 0, source);
        if (spec.splitStringLongs?.includes(name)) {
          const next = attached === undefined ? words[index + 1] : undefined;
          return this.runSplitString(
            next,
            attached ?? '',
            words,
            index + (attached === undefined ? 2 : 1),
            source,
            depth,
          );
        }
        if (spec.shellStringLongs?.includes(name)) {
          if (attached !== undefined) this.analyzeSource(attached, depth + 1);
          else this.runShellString(words[++index], words, source, depth);
        } else if (spec.interactiveShellLongs?.includes(name)) shellFlag = true;
        else if (spec.valueLongs?.includes(name)) {
          if (attached === undefined && !this.skipValue(words, ++index, source)) return;
        } else if (!spec.flagLongs?.includes(name) && attached === undefined && !spec.longsAttachedOnly) {
          return guessFrom(index + 1); // an option we do not know may take the next word as its value
        }
        continue;
      }
      if (!optionsDone && value.startsWith('-') && value.length > 1) {
        if (spec.numericOption && /^-\d+$/.test(value)) continue;
        for (let letterIndex = 1; letterIndex < value.length; letterIndex++) {
          const letter = value[letterIndex]!;
          const rest = value.slice(letterIndex + 1);
          if (spec.noCommandLetters?.includes(letter)) return;
          if (spec.unknownLetters?.includes(letter)) return this.pushUnknown(words, 0, source);
          if (spec.splitStringLetters?.includes(letter)) {
            // `env -S 'prog args' more`: the string is split into words like a shell would, then run.
            return this.runSplitString(
              rest ? undefined : words[index + 1],
              rest,
              words,
              index + (rest ? 1 : 2),
              source,
              depth,
            );
          }
          if (spec.shellStringLetters?.includes(letter)) {
            if (rest) this.analyzeSource(rest, depth + 1);
            else this.runShellString(words[++index], words, source, depth);
            break;
          }
          if (spec.valueLetters?.includes(letter)) {
            if (!rest && !this.skipValue(words, ++index, source)) return;
            break;
          }
          if (spec.attachedValueLetters?.includes(letter)) break;
          if (spec.execLetters?.includes(letter)) joinAsShell = false;
          else if (spec.interactiveShellLetters?.includes(letter)) shellFlag = true;
          else if (!spec.flagLetters?.includes(letter)) {
            // A letter we do not know: it may take the rest of the word, or the next word, as its value.
            return guessFrom(rest ? index + 1 : index + 1);
          }
        }
        continue;
      }
      if (spec.loneDash && value === '-') continue; // `env -` is `env -i`; `sg - group` is a login
      // `flock FILE -c CMD`: the shell-code option may follow the operand.
      if (optionsDone && operandsToSkip === 0 && isShellStringOption(spec, value)) {
        return this.runShellString(words[index + 1], words, source, depth);
      }
      if (spec.assignments && ASSIGNMENT_WORD.test(value)) {
        this.judgeWrapperAssignment(word, source, depth);
        continue;
      }
      optionsDone = true; // these programs stop option parsing at the first operand (getopt "+…")
      if (operandsToSkip > 0) {
        operandsToSkip--;
        continue;
      }
      break;
    }
    const inner = words.slice(index);
    if (inner.length === 0) {
      // `chroot DIR`, `sudo -s`, `sudo -i`: an interactive shell whose commands arrive on stdin.
      if (spec.defaultsToShell || shellFlag) this.pushUnknown(words, 0, source);
      return;
    }
    // `sudo -s cmd` runs cmd through $SHELL -c, as `watch cmd` runs it through sh -c.
    if (joinAsShell || shellFlag) return this.runShellWords(inner, words, source, depth);
    // `chrt [prio] cmd`, `setarch [arch] cmd`: with the operand left out, the command starts one word earlier.
    if (spec.optionalOperandBefore && inner.length > 1) this.emitWrapped(inner.slice(1), source, depth);
    this.emitWrapped(inner, source, depth);
  }

  /**
   * A wrapper option we do not know: every later word that is not an option may be where the command starts
   * (`bwrap --bind / / rm x`). Wrappers that also take shell code in options count as unknown instead.
   */
  private guessWrappedCommand(
    spec: WrapperSpec,
    words: readonly ResolvedWord[],
    from: number,
    source: SourceText,
    depth: number,
  ): void {
    const takesCode =
      spec.shellStringLetters || spec.shellStringLongs || spec.splitStringLetters || spec.joinAsShell;
    if (takesCode) return this.pushUnknown(words, 0, source);
    for (let index = from; index < words.length; index++) {
      const word = words[index]!;
      if (word.dynamic) return this.pushUnknown(words, index, source);
      if (word.value.startsWith('-')) continue;
      this.emitWrapped(words.slice(index), source, depth);
    }
  }

  /** `env PAGER=cmd git log`, `sudo LD_PRELOAD=x.so prog`. */
  private judgeWrapperAssignment(word: ResolvedWord, source: SourceText, depth: number): void {
    const equals = word.value.indexOf('=');
    const name = word.value.slice(0, equals);
    if (!isCommandVariable(name)) return;
    const value: ResolvedWord = { ...word, value: word.value.slice(equals + 1) };
    judgeAssignment(name, value, this.sink([word], word.value, source, depth), isGitExecKey);
  }

  private runSplitString(
    word: ResolvedWord | undefined,
    attached: string,
    words: readonly ResolvedWord[],
    restFrom: number,
    source: SourceText,
    depth: number,
  ): void {
    const rest = words.slice(restFrom);
    if (word?.dynamic || rest.some((w) => w.splits)) return this.pushUnknown(words, 0, source);
    const code = [word ? word.value : attached, ...rest.map((w) => quoteForShell(w.value))].join(' ');
    this.analyzeSource(code, depth + 1);
  }

  /** An option's value word: a quoted expansion is fine (`-u "$user"`), a splitting one may hide the command. */
  private skipValue(words: readonly ResolvedWord[], index: number, source: SourceText): boolean {
    const value = words[index];
    if (value?.splits) {
      this.pushUnknown(words, index, source);
      return false;
    }
    return true;
  }
}

function isShellStringOption(spec: WrapperSpec, value: string): boolean {
  if (spec.shellStringLongs?.includes(splitLong(value)[0])) return true;
  return value.length === 2 && value[0] === '-' && (spec.shellStringLetters?.includes(value[1]!) ?? false);
}

function isStatic(word: ResolvedWord): boolean {
  return !word.dynamic;
}

function splitLong(option: string): [string, string | undefined] {
  const equals = option.indexOf('=');
  return equals === -1 ? [option, undefined] : [option.slice(0, equals), option.slice(equals + 1)];
}

function spanText(words: readonly ResolvedWord[], source: SourceText): string {
  const first = words[0];
  const last = words[words.length - 1];
  return first && last ? source.slice(first.start, last.end) : '';
}

function renderAssign(assign: ShAssign, source: SourceText): string {
  if (assign.Naked) {
    if (assign.Value) return resolveWord(assign.Value, source).value;
    return assign.Name?.Value ?? '';
  }
  return sliceNode(assign as ShNode, source);
}
