const BACKSPACE = 0x08;
const DEL = 0x7f;
const CTRL_U = 0x15;
const CTRL_W = 0x17;

/**
 * The keys of one interactive line as typed, with the editing a terminal's line discipline does itself (erase,
 * kill line, erase word). Any other control key or escape sequence (cursor keys, Tab, Ctrl-R, Ctrl-Y, …) makes the
 * result unknowable from the keys alone: only the line editor knows what it does with them.
 */
export class TypedKeys {
  private bytes: number[] = [];
  private plainKeys = true;

  add(keys: Uint8Array): void {
    for (const b of keys) {
      if (b === DEL || b === BACKSPACE) this.eraseChar();
      else if (b === CTRL_U) this.bytes = [];
      else if (b === CTRL_W) this.eraseWord();
      else if (b >= 0x20) this.bytes.push(b);
      else this.plainKeys = false;
    }
  }

  /** The line was dropped (Ctrl-C): what follows starts from nothing. */
  clear(): void {
    this.bytes = [];
    this.plainKeys = true;
  }

  /** Only printable characters and the terminal's own editing keys were typed. */
  get plain(): boolean {
    return this.plainKeys;
  }

  /** The line the keys produce, or null when keys other than plain typing were used. */
  text(): string | null {
    return this.plainKeys ? Buffer.from(this.bytes).toString('utf8') : null;
  }

  private eraseChar(): void {
    // One character, which in UTF-8 is a lead byte and its continuation bytes (10xxxxxx).
    while (this.bytes.length > 0 && (this.bytes[this.bytes.length - 1]! & 0xc0) === 0x80) this.bytes.pop();
    this.bytes.pop();
  }

  private eraseWord(): void {
    const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09;
    while (this.bytes.length > 0 && isSpace(this.bytes[this.bytes.length - 1])) this.bytes.pop();
    while (this.bytes.length > 0 && !isSpace(this.bytes[this.bytes.length - 1])) this.bytes.pop();
  }
}
