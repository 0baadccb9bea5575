/**
 * A pty shell driven by a script through the ssh2 client, as a terminal would: keys are written as a terminal sends
 * them (Enter is CR) and the test waits for what the screen shows.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';

export interface TerminalLogin {
  readonly port: number;
  readonly privateKeyPath?: string;
  readonly password?: string;
  readonly env?: Record<string, string>;
  readonly cols?: number;
  readonly rows?: number;
}

export class ScriptedShell {
  output = '';
  private constructor(
    private readonly client: ssh2.Client,
    private readonly channel: ssh2.ClientChannel,
  ) {
    channel.on('data', (d: Buffer) => {
      this.output += d.toString('utf8');
    });
  }

  /** Log in and open a shell; `waitForPrompt: false` returns before the shell printed anything. */
  static async open(login: TerminalLogin, waitForPrompt = true): Promise<ScriptedShell> {
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.on('ready', resolve).on('error', reject);
      client.connect({
        host: '127.0.0.1',
        port: login.port,
        username: 'agent',
        ...(login.privateKeyPath !== undefined ? { privateKey: readFileSync(login.privateKeyPath) } : {}),
        ...(login.password !== undefined ? { password: login.password, tryKeyboard: false } : {}),
      });
    });
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.shell(
        { term: 'xterm', cols: login.cols ?? 100, rows: login.rows ?? 30 },
        login.env === undefined ? {} : { env: login.env },
        (err, ch) => (err ? reject(err) : resolve(ch)),
      ),
    );
    const shell = new ScriptedShell(client, channel);
    if (waitForPrompt) await shell.waitFor(/[#$] $/m, 20_000);
    return shell;
  }

  /** Send keys without waiting. */
  write(keys: string): void {
    this.channel.write(keys);
  }

  /** Send keystrokes and wait until the output (after this point) matches. */
  async type(keys: string, until: RegExp, timeoutMs = 10_000): Promise<string> {
    const mark = this.output.length;
    this.channel.write(keys);
    return this.waitFor(until, timeoutMs, mark);
  }

  async waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const seen = this.output.slice(from);
      if (re.test(seen)) return seen;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${re}; output was:\n${JSON.stringify(this.output.slice(from))}`);
  }

  /** Resolves with the exit status once the channel closes (after `exit`, or whatever ends the shell). */
  closed(): Promise<number | null> {
    return new Promise((resolve) => {
      let code: number | null = null;
      this.channel.on('exit', (c: number | null) => (code = c));
      this.channel.on('close', () => {
        this.client.end();
        resolve(code);
      });
    });
  }

  exit(): Promise<number | null> {
    const done = this.closed();
    this.channel.write('exit\r');
    return done;
  }

  /** End the client's input (the channel's EOF), as a pipe into `ssh -tt` does at its end. */
  endInput(): void {
    this.channel.end();
  }
}
