/**
 * Shell command analysis: every simple command a command line can run, wherever it is nested, with its program
 * (basename) when it can be known before the line runs. Policy rules (`programs`, `pattern`) are matched against
 * each of them; a `null` program means "unknowable" and the gate treats it as matching every rule when the listener
 * says so. Anything we cannot parse is an error, and the caller must deny it.
 */
import type { ShellSimpleCommand } from '@agentgate/core';
import {
  checkAssigningExpansion,
  checkHookAssignment,
  emitDeclaration,
  isHookVariable,
  type ShParamExp,
} from './assignments.js';
import { programExecution } from './catalogue.js';
import { spanText, runShellWords, type CommandCollector } from './command-collector.js';
import { isCommandVariable } from './environment.js';
import { runCatalogueEntry, type CommandSink } from './execution.js';
import { expandFind } from './find-exec.js';
import {
  parseShell,
  ShellSyntaxError,
  walk,
  type ShAssign,
  type ShCallExpr,
  type ShDeclClause,
  type ShStmt,
  type ShWord,
} from './mvdan-sh.js';
import { programReader } from './readers.js';
import { checkEvaluatedSubscript, checkPromptTransformation } from './evaluated-text.js';
import {
  expandAlias,
  expandCompletionCode,
  expandMapfileCallback,
  expandShell,
  expandSuLike,
  expandTrap,
} from './shell-code-arguments.js';
import { EVALUATORS, SHELLS, SOURCERS } from './shells.js';
import { basename, quoteForShell, resolveWord, sliceNode, SourceText, type ResolvedWord } from './words.js';
import { expandSubcommandWrapper, expandWrapper, judgeWrapperAssignment } from './wrapper-unwrapping.js';
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

/** A line that runs more simple commands than this is refused rather than analysed. */
const MAX_SIMPLE_COMMANDS = 10_000;
const MAX_WRAPPER_DEPTH = 32;
/** Builtins that assign variables they are given by name: `read PAGER`, `printf -v PAGER`, `mapfile PAGER`. */
const ASSIGNING_BUILTINS = new Set(['read', 'mapfile', 'readarray', 'printf', 'getopts']);
/** Catalogue classes whose entries decide something; the others only document the program (README). */
const DECIDING_CLASSES = new Set(['interpreter', 'commands', 'options', 'always']);

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

/**
 * The environment a program starts with (a container's `Env`: `NAME=value` each), judged as `env NAME=value …`
 * judges its words: what bash or another program runs from a value (`BASH_FUNC_ls%%`, `PAGER`, `PROMPT_COMMAND`,
 * a prompt's `$(…)`) is analysed, code loaded from a file or library the analysis cannot read (`BASH_ENV`,
 * `LD_PRELOAD`) is an unknown program. An entry without a name is no variable to any program: skipped.
 */
export function analyzeEnvironment(entries: readonly string[]): ShellAnalysis {
  const collector = new SimpleCommandCollector();
  try {
    for (const entry of entries) {
      const name = entry.slice(0, Math.max(entry.indexOf('='), 0));
      if (name === '' || !(isCommandVariable(name) || isHookVariable(name))) continue;
      const quoted = quoteForShell(entry);
      const end = Buffer.byteLength(quoted, 'utf8');
      const word: ResolvedWord = { value: entry, dynamic: false, splits: false, start: 0, end };
      judgeWrapperAssignment(collector, word, new SourceText(quoted), 0);
    }
    return { commands: collector.commands };
  } catch (err) {
    return { commands: [], error: err instanceof Error ? err.message : String(err) };
  }
}

class SimpleCommandCollector implements CommandCollector {
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
          emitDeclaration(this, node as ShDeclClause, source, statementSpans);
          break;
        case 'Assign':
          checkHookAssignment(this, node as ShAssign, source, depth);
          break;
        case 'ParamExp':
          checkAssigningExpansion(this, node as ShParamExp, source, depth);
          checkPromptTransformation(this, node as ShParamExp, source);
          break;
        case 'Word':
          checkEvaluatedSubscript(this, node as ShWord, source);
          break;
      }
      // the walk goes on into $( ), <( ), heredoc bodies, function bodies and loops: they hold more commands
    });
  }

  analyzeApart(text: string, depth: number): ShellSimpleCommand[] {
    const nested = new SimpleCommandCollector();
    nested.analyzeSource(text, depth);
    return nested.commands;
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

    if (EVALUATORS.has(program)) return runShellWords(this, words.slice(1), words, source, depth);
    if (SOURCERS.has(program)) return this.pushUnknown(words, 0, source);
    if (program === 'trap') return expandTrap(this, words, source, depth);
    if (program === 'mapfile' || program === 'readarray') expandMapfileCallback(this, words, source, depth);
    if (program === 'compgen' || program === 'complete')
      return expandCompletionCode(this, words, source, depth);
    // `fc` runs commands again from the history, edited on the way (`fc -s ls=rm`); only listing (-l) is known.
    if (program === 'fc' && !words.some((w) => /^-[a-zA-Z]*l/.test(w.value))) {
      return this.pushUnknown(words, 0, source);
    }
    if (program === 'alias') return expandAlias(this, words, source, depth);
    if (program === 'find') return expandFind(this, words, source, depth);
    // `hash -p /bin/rm ls` makes `ls` run rm; `enable -f lib.so name` loads a builtin: later names mean anything.
    if ((program === 'hash' || program === 'enable') && words.some((w) => /^-[a-zA-Z]*[pf]/.test(w.value))) {
      return this.pushUnknown(words, 0, source);
    }
    if (ASSIGNING_BUILTINS.has(program) && words.some((w) => !w.dynamic && isCommandVariable(w.value))) {
      return this.pushUnknown(words, 0, source);
    }
    if (SHELLS.has(program)) return expandShell(this, words, source, depth);
    if (program === 'runuser' && !words.some((w) => w.value === '-u' || w.value.startsWith('--user'))) {
      return expandSuLike(this, words, source, depth);
    }
    if (program === 'su') return expandSuLike(this, words, source, depth);
    const wrapper = wrapperSpec(program);
    if (wrapper) return expandWrapper(this, wrapper, words, source, depth);
    // A subcommand wrapper is found anywhere among the words, so the program's own reading still follows.
    expandSubcommandWrapper(this, program, words, source, depth);
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
  sink(words: readonly ResolvedWord[], text: string, source: SourceText, depth: number): CommandSink {
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

  /** The command a wrapper runs (`sudo CMD`, `find -exec CMD ;`). */
  emitWrapped(inner: readonly ResolvedWord[], source: SourceText, depth: number): void {
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

  pushUnknown(words: readonly ResolvedWord[], from: number, source: SourceText): void {
    const rest = words.slice(Math.min(from, words.length - 1));
    this.commands.push({ program: null, argv: rest.map((w) => w.value), text: spanText(rest, source) });
  }
}
