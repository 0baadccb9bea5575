/**
 * A catalogue entry: the class that decides what the analyser makes of a program, and the options, operands or
 * subcommands through which it runs other programs or code (catalogue.ts describes the classes).
 */
import type { OptionGrammar, OptionMeaning } from '../options.js';

export type ExecutionClass =
  | 'interpreter'
  | 'commands'
  | 'options'
  | 'always'
  | 'interactive'
  | 'files'
  | 'container'
  | 'handler'
  | 'wrapper'
  | 'shell';

export interface ProgramExecution extends OptionGrammar {
  readonly class: ExecutionClass;
  /** interpreter, commands: the first operand is a file of code or commands (`-` is stdin). */
  readonly scriptOperand?: boolean;
  /** commands: the operand at this index is inline commands (`sqlite3 DB 'SQL'`), checked with `escape`. */
  readonly inlineOperand?: number;
  /** The operand at this index is a command line run by a shell (`csvtool call CMD`, `task execute CMD`). */
  readonly shellOperand?: number;
  /** commands: a shell escape in inline commands (`\!` in psql, `.shell` in sqlite3). */
  readonly escape?: RegExp;
  /** Any argument matching this makes the program unknown (`ffmpeg -af ladspa=file=lib.so`). */
  readonly unknownArguments?: RegExp;
  /** `setting` options (`-o key=value`): what a key's value is. */
  readonly settings?: (key: string) => 'shell' | 'unknown' | undefined;
  /** Subcommands (a word among the operands) with their own meaning: `R CMD`, `dotnet fsi`, `puppet apply`. */
  readonly subcommands?: Readonly<Record<string, ProgramExecution>>;
}

/** One catalogue row: a program name and its entry. */
export type CatalogueEntry = readonly [string, ProgramExecution];

export type Options = Readonly<Record<string, OptionMeaning>>;

/** Entries of each class; the builders take the options (and extra fields) through which the program runs code. */
export const interactive: ProgramExecution = { class: 'interactive' };
export const files: ProgramExecution = { class: 'files' };
export const container: ProgramExecution = { class: 'container' };
export const handler: ProgramExecution = { class: 'handler' };
export const wrapper: ProgramExecution = { class: 'wrapper' };
export const shell: ProgramExecution = { class: 'shell' };
export const always = (options: Options = {}, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'always',
  options,
  ...extra,
});
export const withOptions = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'options',
  options,
  ...extra,
});
export const interpreter = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'interpreter',
  options,
  scriptOperand: true,
  ...extra,
});
export const commands = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'commands',
  options,
  ...extra,
});
export const VERSION: Options = { '--version': 'none', '--help': 'none' };
