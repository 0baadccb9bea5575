import xtermHeadless from '@xterm/headless';

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
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CR = 0x0d;
const LF = 0x0a;
/** Ctrl-E (end of line in readline) then Ctrl-U (kill the line: readline's unix-line-discard, the tty's VKILL). */
const CANCEL_LINE = Buffer.from([0x05, 0x15]);
/** Output must have been quiet this long before the screen is read (the echo of what was typed has arrived). */
const ECHO_QUIET_MS = 15;
/** Longest wait for the echo of typed input. */
const ECHO_WAIT_MAX_MS = 1000;
/** Upstream output the emulator may lag behind before the caller should pause the upstream. */
const EMULATOR_BACKLOG_BYTES = 1 << 20;

type LineState = { kind: 'idle' } | { kind: 'typing'; promptRow: number; promptCol: number };

/**
 * Decides interactive shell lines. A headless terminal emulator replays everything the upstream prints, so at Enter
 * the gateway reads the command line as the user sees it — after line editing, history recall and completion — and
 * not the raw keystrokes. The prompt is cut off at the cursor position of the last output before typing began.
 * See docs/ssh-interactive.md for what this cannot guarantee.
 */
export class InteractiveLineFilter {
  private readonly term: HeadlessTerminal;
  private state: LineState = { kind: 'idle' };
  private lastOutputAt = 0;
  private outputSeq = 0;
  private lastForwardAt = 0;
  private outputSeqAtForward = 0;
  private emulatorBacklog = 0;
  private carry = '';
  /** Keystrokes since the last Enter, with simple editing applied; null once keys we cannot replay appear. */
  private typed: string | null = '';
  /** Set after a forwarded Enter: the next line starts only after the shell's response has settled. */
  private awaitingPrompt = false;

  constructor(
    cols: number,
    rows: number,
    private readonly io: InteractiveFilterIo,
  ) {
    this.term = new Terminal({
      cols: Math.max(cols, 2),
      rows: Math.max(rows, 1),
      scrollback: 2000,
      allowProposedApi: true,
    });
  }

  /** Feed upstream output to the emulator. Returns false when the caller should pause until `resume` is called. */
  observeOutput(data: Buffer, resume: () => void): boolean {
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
    if (cols > 0 && rows > 0) this.term.resize(cols, rows);
  }

  dispose(): void {
    this.term.dispose();
  }

  /** Process one chunk of client input. The caller keeps the client paused until this resolves. */
  async handleInput(chunk: Buffer): Promise<void> {
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
    text = text.split(PASTE_START).join('').split(PASTE_END).join('');
    const bytes = Buffer.from(text, 'latin1');
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b !== CR && b !== LF) {
        if (b === CTRL_C || b === CTRL_D) {
          // The line is abandoned; the shell prints a fresh prompt that becomes the next line's start.
          await this.forward(bytes.subarray(start, i + 1));
          start = i + 1;
          this.state = { kind: 'idle' };
        }
        continue;
      }
      await this.forward(bytes.subarray(start, i));
      start = i + 1;
      // CR LF from a paste is one Enter.
      if (b === CR && bytes[i + 1] === LF) {
        i++;
        start = i + 1;
      }
      await this.enter(Buffer.from([b]));
    }
    await this.forward(bytes.subarray(start));
  }

  private async forward(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    if (this.state.kind === 'idle' && !this.inFullScreenApp()) {
      if (this.awaitingPrompt) await this.echoArrived();
      else await this.emulatorSettled();
      this.awaitingPrompt = false;
      const buf = this.term.buffer.active;
      this.state = { kind: 'typing', promptRow: buf.baseY + buf.cursorY, promptCol: buf.cursorX };
    }
    this.trackTyping(data);
    this.sent(data);
  }

  private sent(data: Buffer): void {
    this.lastForwardAt = Date.now();
    this.outputSeqAtForward = this.outputSeq;
    this.io.toUpstream(data);
  }

  private trackTyping(data: Buffer): void {
    for (const b of data) {
      if (this.typed === null) return;
      if (b === 0x7f || b === 0x08) this.typed = this.typed.slice(0, -1);
      else if (b === 0x15) this.typed = '';
      else if (b === 0x17) this.typed = this.typed.replace(/\S+\s*$/, '');
      else if (b >= 0x20 && b !== 0x7f) this.typed += String.fromCharCode(b);
      else this.typed = null; // arrows, completion, history search: only the screen knows the result
    }
  }

  private enterSent(enterByte: Buffer): void {
    this.state = { kind: 'idle' };
    this.typed = '';
    this.awaitingPrompt = true;
    this.sent(enterByte);
  }

  private async enter(enterByte: Buffer): Promise<void> {
    if (this.inFullScreenApp() || this.state.kind === 'idle') {
      // Editors and pagers (alternate screen) get keys unfiltered; an empty line runs nothing.
      this.enterSent(enterByte);
      return;
    }
    await this.echoArrived();
    const line = this.currentLine().trim();
    if (line === '') {
      this.enterSent(enterByte);
      return;
    }
    const verdict = await this.io.decide(line, alternateReadings(line, this.typed));
    if (verdict.allowed) {
      this.enterSent(enterByte);
      return;
    }
    this.sent(CANCEL_LINE);
    await this.echoArrived();
    const notice = Buffer.from(`\r\n${verdict.message}\r\n`);
    this.term.write(notice);
    this.io.toClient(notice);
    // An empty Enter makes the shell print a fresh prompt below the denial.
    this.enterSent(enterByte);
  }

  /** The command line from the remembered prompt end through the wrapped rows that follow it. */
  private currentLine(): string {
    if (this.state.kind !== 'typing') return '';
    const buf = this.term.buffer.active;
    const cursorRow = buf.baseY + buf.cursorY;
    let text = '';
    let row = this.state.promptRow;
    const last = Math.max(cursorRow, row);
    for (; row <= last || buf.getLine(row)?.isWrapped === true; row++) {
      const line = buf.getLine(row);
      if (line === undefined) break;
      if (row > this.state.promptRow && !line.isWrapped) text += '\n';
      const nextWrapped = buf.getLine(row + 1)?.isWrapped === true;
      text += line.translateToString(!nextWrapped, row === this.state.promptRow ? this.state.promptCol : 0);
    }
    return text;
  }

  private inFullScreenApp(): boolean {
    return this.term.buffer.active.type === 'alternate';
  }

  private emulatorSettled(): Promise<void> {
    return new Promise((resolve) => this.term.write('', resolve));
  }

  /** Wait until the upstream echoed what was just typed (output seen after the forward, then quiet). */
  private async echoArrived(): Promise<void> {
    const started = Date.now();
    for (;;) {
      const now = Date.now();
      if (now - started >= ECHO_WAIT_MAX_MS) break;
      const echoed =
        this.outputSeq !== this.outputSeqAtForward || now - this.lastForwardAt > ECHO_WAIT_MAX_MS;
      if (echoed && now - this.lastOutputAt >= ECHO_QUIET_MS) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.emulatorSettled();
  }
}

/** Prompt-like markers (`$ `, `# `, `% `, `> `): text after one may be the real command if the boundary slipped. */
const PROMPT_MARKER = /[$#%>] /g;

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
