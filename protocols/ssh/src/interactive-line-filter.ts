import xtermHeadless from '@xterm/headless';
import type { IMarker } from '@xterm/headless';
import { alternateReadings, shownOnScreen } from './line-readings.js';
import { TypedKeys } from './typed-keys.js';

const { Terminal } = xtermHeadless;
type HeadlessTerminal = InstanceType<typeof Terminal>;

export type LineVerdict = { readonly allowed: true } | { readonly allowed: false; readonly message: string };

export interface InteractiveFilterIo {
  /** Forward bytes to the upstream shell. */
  toUpstream(data: Buffer): void;
  /** Show bytes to the client (the denial text). */
  toClient(data: Buffer): void;
  /**
   * Decide one command line: `line` as the screen shows it, `alternates` other readings of the same Enter (the
   * text after each prompt-like marker, the keystrokes as typed) so that a misplaced prompt boundary can only
   * make the decision stricter, never hide a command.
   */
  decide(line: string, alternates: readonly string[]): Promise<LineVerdict>;
}

// xterm's DECSET 2004 bracketed paste markers: stripped so a multi-line paste reaches the shell line by line and
// every line is decided on its own (otherwise readline would take the whole paste as one edit buffer).
const PASTE_START = '\x1b[200~';
const PASTE_END = '\x1b[201~';
/** DECSET 2004: line editors (readline ≥ 8.1, zsh, fish) turn it on while they read a line, off to run it. */
const BRACKETED_PASTE_MODE = 2004;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const LF = 0x0a;
const CR = 0x0d;
/** readline's operate-and-get-next: runs the line like Enter does. */
const CTRL_O = 0x0f;
const CTRL_Z = 0x1a;
const CTRL_BACKSLASH = 0x1c;
/** Keys that signal the foreground job: they go upstream at once, never held behind a busy command. */
const SIGNAL_KEYS = new Set([CTRL_C, CTRL_Z, CTRL_BACKSLASH]);
/** Ctrl-E (end of line in readline) then Ctrl-U (kill the line: readline's unix-line-discard, the tty's VKILL). */
const CANCEL_LINE = Buffer.from([0x05, 0x15]);

/** Output quiet this long after typed keys (or after a prompt the shell announced) means the echo is drawn. */
const ECHO_QUIET_MS = 15;
/** Longest wait for the echo of typed input. */
const ECHO_WAIT_MAX_MS = 1000;
/** No prompt announced: the foreground program is taken to wait for input once its output is quiet this long. */
const INPUT_WAIT_QUIET_MS = 250;
/** Longest wait for any answer to an Enter (a program reading with echo off prints nothing). */
const ANSWER_WAIT_MAX_MS = 1000;
/** Before the first line the shell may still be starting (profile scripts): quiet this long after its output. */
const STARTUP_QUIET_MS = 1000;
/** Longest wait for the first output of a session. */
const STARTUP_WAIT_MAX_MS = 10_000;
const POLL_MS = 5;
/** Upstream output the emulator may lag behind before the caller should pause the upstream. */
const EMULATOR_BACKLOG_BYTES = 1 << 20;
/** Terminal size when the client sent none (`ssh -tt` with stdin from a pipe sends 0×0): what the shell assumes. */
const DEFAULT_COLS = 80;
const DEFAULT_ROWS = 24;

/** Where the shell was when a line ended (an Enter or Ctrl-C went upstream): the next line waits for its answer. */
interface LineEnd {
  readonly at: number;
  readonly outputSeq: number;
  readonly prompts: number;
  /** The session's first line: nothing typed has reached the shell yet. */
  readonly first: boolean;
}

/** A command line being typed. */
interface Line {
  /** The screen row where it starts (a marker follows the row as the scrollback moves) and the prompt's end column. */
  readonly start: IMarker;
  readonly col: number;
  /** The line editor announced this prompt (bracketed paste on, turned on since the last line ended). */
  readonly atPrompt: boolean;
  readonly keys: TypedKeys;
  /** Prompt announcements when Ctrl-C was typed in it: a later one means the shell dropped this line. */
  interruptedAtPrompts?: number;
}

/**
 * Decides interactive shell lines. A headless terminal emulator replays everything the upstream prints, so at Enter
 * the gateway reads the command line as the user sees it — after line editing, history recall and completion — and
 * not the raw keystrokes. Input is released to the shell as a person typing would: a new line only once the shell
 * answered the last one and shows its prompt, so type-ahead, pastes and piped input are decided like slow typing.
 * See docs/ssh-interactive.md for what this cannot guarantee.
 */
export class InteractiveLineFilter {
  private readonly term: HeadlessTerminal;
  private line: Line | undefined;
  private lastLineEnd: LineEnd;
  private lastOutputAt = 0;
  private outputSeq = 0;
  private lastForwardAt = 0;
  private outputSeqAtForward = 0;
  /** How often a line editor turned bracketed paste on: each time is a new prompt. Once seen, the shell announces. */
  private prompts = 0;
  private emulatorBacklog = 0;
  private carry = '';
  /** The previous key was a CR: an LF right after it is the same Enter (CR LF from a paste or a pipe). */
  private afterCr = false;
  private disposed = false;

  constructor(
    cols: number,
    rows: number,
    private readonly io: InteractiveFilterIo,
  ) {
    this.term = new Terminal({
      cols: cols > 0 ? cols : DEFAULT_COLS,
      rows: rows > 0 ? rows : DEFAULT_ROWS,
      scrollback: 2000,
      allowProposedApi: true,
    });
    this.term.parser.registerCsiHandler({ prefix: '?', final: 'h' }, (params) => {
      // Full-screen programs (vim) turn it on too, on the alternate screen: that is no prompt.
      if (params.includes(BRACKETED_PASTE_MODE) && this.term.buffer.active.type === 'normal') this.prompts++;
      return false; // the emulator still applies the mode
    });
    this.lastLineEnd = { at: Date.now(), outputSeq: 0, prompts: 0, first: true };
  }

  /** Feed upstream output to the emulator. Returns false when the caller should pause until `resume` is called. */
  observeOutput(data: Buffer, resume: () => void): boolean {
    if (this.disposed) return true;
    this.lastOutputAt = Date.now();
    this.outputSeq++;
    this.emulatorBacklog += data.length;
    const size = data.length;
    let waiting = false;
    this.term.write(data, () => {
      this.emulatorBacklog -= size;
      if (waiting && this.emulatorBacklog < EMULATOR_BACKLOG_BYTES / 2) {
        waiting = false;
        resume();
      }
    });
    if (this.emulatorBacklog > EMULATOR_BACKLOG_BYTES) {
      waiting = true;
      return false;
    }
    return true;
  }

  resize(cols: number, rows: number): void {
    if (cols > 0 && rows > 0 && !this.disposed) this.term.resize(cols, rows);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.term.dispose();
  }

  /** Process one chunk of client input. The caller keeps the client paused until this resolves. */
  async handleInput(chunk: Buffer): Promise<void> {
    const bytes = this.withoutPasteMarkers(chunk);
    let start = 0;
    for (let i = 0; i < bytes.length && !this.disposed; i++) {
      const b = bytes[i]!;
      const afterCr = this.afterCr;
      this.afterCr = false;
      if (b === LF && afterCr) {
        start = i + 1;
      } else if (b === CR || b === LF || b === CTRL_O) {
        await this.type(bytes.subarray(start, i));
        start = i + 1;
        await this.enter(b);
        this.afterCr = b === CR;
      } else if (SIGNAL_KEYS.has(b)) {
        await this.type(bytes.subarray(start, i));
        start = i + 1;
        this.signal(b);
      } else if (b === CTRL_D) {
        await this.type(bytes.subarray(start, i));
        start = i + 1;
        await this.ctrlD();
      }
    }
    await this.type(bytes.subarray(start));
  }

  private withoutPasteMarkers(chunk: Buffer): Buffer {
    let text = this.carry + chunk.toString('latin1');
    this.carry = '';
    // Keep a possibly split paste marker (`ESC [ 2 0 …`) for the next chunk; a lone ESC is a key press (vi
    // mode, editors) and goes on at once.
    const escAt = text.lastIndexOf('\x1b');
    const tail = text.length - escAt;
    if (
      escAt >= 0 &&
      tail >= 2 &&
      tail < PASTE_START.length &&
      [PASTE_START, PASTE_END].some((m) => m.startsWith(text.slice(escAt)))
    ) {
      this.carry = text.slice(escAt);
      text = text.slice(0, escAt);
    }
    return Buffer.from(text.split(PASTE_START).join('').split(PASTE_END).join(''), 'latin1');
  }

  /** Keys of a command line: the first of a line waits until the shell is ready for it. */
  private async type(keys: Buffer): Promise<void> {
    if (keys.length === 0 || this.disposed) return;
    if (this.inFullScreenApp()) {
      this.sent(keys); // editors and pagers (alternate screen) get keys unfiltered
      return;
    }
    const line = await this.currentOrNewLine();
    line?.keys.add(keys);
    this.sent(keys);
  }

  /** Sent at once: the foreground job may be busy printing and never give a prompt otherwise. */
  private signal(key: number): void {
    this.sent(Buffer.from([key]));
    const line = this.openLine();
    if (key !== CTRL_C || line === undefined) return;
    // The shell drops the line (readline) or the terminal flushes it; the screen keeps what was typed before.
    line.keys.clear();
    line.interruptedAtPrompts = this.prompts;
    this.lastLineEnd = this.lineEndNow();
  }

  /** On an empty line Ctrl-D is end of input, a line of its own (the shell exits, `cat` ends); else an editing key. */
  private async ctrlD(): Promise<void> {
    if (this.inFullScreenApp() || this.openLine() !== undefined) {
      await this.type(Buffer.from([CTRL_D]));
      return;
    }
    await this.shellReady();
    this.sent(Buffer.from([CTRL_D]));
    this.lastLineEnd = this.lineEndNow();
  }

  /** The line being typed, unless the shell has dropped it. */
  private openLine(): Line | undefined {
    if (this.line !== undefined && this.shellDroppedLine(this.line)) this.endLine();
    return this.line;
  }

  /** The line the keys belong to; undefined when a full-screen program took over meanwhile (keys unfiltered). */
  private async currentOrNewLine(): Promise<Line | undefined> {
    if (this.openLine() !== undefined) return this.line;
    await this.shellReady();
    if (this.disposed || this.inFullScreenApp()) return undefined;
    const buf = this.term.buffer.active;
    const start = this.term.registerMarker(0);
    if (start === undefined) return undefined;
    this.line = {
      start,
      col: buf.cursorX,
      atPrompt: this.promptAnnouncedSince(this.lastLineEnd),
      keys: new TypedKeys(),
    };
    return this.line;
  }

  /**
   * Ctrl-C at a prompt the line editor announced, answered by a new prompt: the shell dropped the line and the next
   * keys start a new one. Otherwise the line goes on and its reading keeps the earlier rows: a shell ignoring
   * SIGINT, or keys still pending in the terminal (`stty noflsh`), would run what was typed before.
   */
  private shellDroppedLine(line: Line): boolean {
    return (
      line.atPrompt && line.interruptedAtPrompts !== undefined && this.prompts !== line.interruptedAtPrompts
    );
  }

  private endLine(): void {
    this.line?.start.dispose();
    this.line = undefined;
  }

  private lineEndNow(): LineEnd {
    return { at: Date.now(), outputSeq: this.outputSeq, prompts: this.prompts, first: false };
  }

  private promptAnnouncedSince(end: LineEnd): boolean {
    return this.prompts !== end.prompts && this.term.modes.bracketedPasteMode;
  }

  /**
   * Wait until the shell is ready for a new line, as a person typing would: it answered the last line and shows a
   * prompt — announced by its line editor, or taken from its output going quiet (a program waiting for input, a
   * shell that does not announce its prompt). Bounded when nothing answers at all.
   */
  private async shellReady(): Promise<void> {
    const since = this.lastLineEnd;
    const quietNeeded = since.first ? STARTUP_QUIET_MS : INPUT_WAIT_QUIET_MS;
    const waitMax = since.first ? STARTUP_WAIT_MAX_MS : ANSWER_WAIT_MAX_MS;
    for (;;) {
      await this.emulatorSettled();
      if (this.disposed || this.inFullScreenApp()) return;
      const now = Date.now();
      const quiet = now - this.lastOutputAt;
      const answered = this.outputSeq !== since.outputSeq;
      if (this.promptAnnouncedSince(since) && quiet >= ECHO_QUIET_MS) return;
      if (answered && quiet >= quietNeeded) return;
      if (!answered && now - since.at >= waitMax) return;
      await sleep(POLL_MS);
    }
  }

  private sent(data: Buffer): void {
    if (this.disposed) return;
    this.lastForwardAt = Date.now();
    this.outputSeqAtForward = this.outputSeq;
    this.io.toUpstream(data);
  }

  private enterSent(enterKey: number): void {
    this.endLine();
    this.sent(Buffer.from([enterKey]));
    this.lastLineEnd = this.lineEndNow();
  }

  /**
   * Enter (CR, LF) or Ctrl-O: the shell would run the line, so it is decided first. Ctrl-O (readline's
   * operate-and-get-next) goes on as CR: the history line it would put at the next prompt would not be on the
   * screen where that line's reading begins.
   */
  private async enter(key: number): Promise<void> {
    if (this.disposed) return;
    if (this.inFullScreenApp()) {
      this.sent(Buffer.from([key]));
      return;
    }
    const enterKey = key === CTRL_O ? CR : key;
    const line = this.openLine();
    if (line === undefined) {
      // An empty line runs nothing, but it is still a line: it waits for the shell like any other.
      await this.shellReady();
      this.enterSent(enterKey);
      return;
    }
    await this.echoArrived();
    if (this.disposed) return;
    const reading = this.readLine(line);
    if (reading.kind === 'undecided') {
      this.enterSent(enterKey);
      return;
    }
    const verdict =
      reading.kind === 'refused'
        ? { allowed: false as const, message: reading.message }
        : await this.io.decide(reading.text, reading.alternates);
    if (this.disposed) return;
    if (verdict.allowed) {
      this.enterSent(enterKey);
      return;
    }
    this.sent(CANCEL_LINE);
    await this.echoArrived();
    if (this.disposed) return;
    const notice = Buffer.from(`\r\n${verdict.message}\r\n`);
    this.term.write(notice);
    this.io.toClient(notice);
    // An empty Enter makes the shell print a fresh prompt below the denial.
    this.enterSent(enterKey);
  }

  /**
   * What to decide for a line at its Enter. Keys typed at a prompt the line editor announced are a command line
   * whether or not they show. Anywhere else keys the screen does not show went to a program reading them unseen (a
   * password at `read -s`, or at a prompt printing `*`): never decided, so never listed as a command.
   */
  private readLine(
    line: Line,
  ):
    | { kind: 'decide'; text: string; alternates: string[] }
    | { kind: 'refused'; message: string }
    | { kind: 'undecided' } {
    const typed = line.keys.text()?.trim() ?? null;
    const announced = this.prompts > 0;
    if (!line.atPrompt && !line.keys.plain && announced)
      return {
        kind: 'refused',
        message:
          'agentgate: keys typed while no prompt was shown (cursor keys, Tab, Ctrl or Esc sequences) cannot be ' +
          'decided: the shell would apply them later; type the line at the prompt',
      };
    const screen = this.screenLine(line).trim();
    if (line.atPrompt) {
      if (screen !== '')
        return { kind: 'decide', text: screen, alternates: alternateReadings(screen, typed) };
      // Echo off at the shell's own prompt (`stty -echo`): the keys are the command.
      if (typed === '') return { kind: 'undecided' };
      if (typed === null)
        return {
          kind: 'refused',
          message:
            'agentgate: a line typed with echo off and edited cannot be decided; turn echo on (stty echo)',
        };
      return { kind: 'decide', text: typed, alternates: [] };
    }
    const shown = typed !== null && shownOnScreen(typed, screen);
    if (screen === '' || (announced && typed !== null && typed !== '' && !shown))
      return { kind: 'undecided' };
    return { kind: 'decide', text: screen, alternates: alternateReadings(screen, shown ? typed : null) };
  }

  /** The command line from the line's start through the wrapped rows that follow it. */
  private screenLine(line: Line): string {
    const buf = this.term.buffer.active;
    const firstRow = Math.max(line.start.line, 0);
    const firstCol = line.start.line < 0 ? 0 : line.col; // the start scrolled out of the scrollback
    const cursorRow = buf.baseY + buf.cursorY;
    let text = '';
    const last = Math.max(cursorRow, firstRow);
    for (let row = firstRow; row <= last || buf.getLine(row)?.isWrapped === true; row++) {
      const bufLine = buf.getLine(row);
      if (bufLine === undefined) break;
      if (row > firstRow && !bufLine.isWrapped) text += '\n';
      const nextWrapped = buf.getLine(row + 1)?.isWrapped === true;
      text += bufLine.translateToString(!nextWrapped, row === firstRow ? firstCol : 0);
    }
    return text;
  }

  private inFullScreenApp(): boolean {
    return !this.disposed && this.term.buffer.active.type === 'alternate';
  }

  private emulatorSettled(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    return new Promise((resolve) => this.term.write('', resolve));
  }

  /** Wait until the upstream echoed what was just typed (output seen after the forward, then quiet). */
  private async echoArrived(): Promise<void> {
    const started = Date.now();
    while (!this.disposed) {
      const now = Date.now();
      if (now - started >= ECHO_WAIT_MAX_MS) break;
      const echoed =
        this.outputSeq !== this.outputSeqAtForward || now - this.lastForwardAt > ECHO_WAIT_MAX_MS;
      if (echoed && now - this.lastOutputAt >= ECHO_QUIET_MS) break;
      await sleep(POLL_MS);
    }
    await this.emulatorSettled();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
