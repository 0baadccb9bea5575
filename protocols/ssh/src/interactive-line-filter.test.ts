import { describe, it, expect } from '@jest/globals';
import { InteractiveLineFilter, type LineVerdict } from './interactive-line-filter.js';

/**
 * A fake shell behind a pty: while its line editor reads it echoes keys itself, Enter runs the line (`sleep N` takes
 * N ms), Ctrl-U kills the line; while a command runs, keys wait in the terminal (echoed by the tty) and the line
 * editor reads them at its next prompt. `announce`: the line editor turns bracketed paste on at each prompt and off
 * to run the line, as readline ≥ 8.1 does.
 */
function harness(deny: (line: string) => boolean, options: { announce?: boolean; startupMs?: number } = {}) {
  const announce = options.announce ?? true;
  const decided: string[] = [];
  const ran: string[] = [];
  const toClient: string[] = [];
  const upstream: string[] = [];
  let reading = false;
  /** A program reading a password, printing `*` for each key. */
  let askingPassword = false;
  /** A full-screen editor (alternate screen, bracketed paste on like vim); `q` quits. */
  let editing = false;
  let line = '';
  let pending = '';
  const print = (text: string): void => {
    setTimeout(() => filter.observeOutput(Buffer.from(text), () => undefined), 1);
  };
  const prompt = (): void => {
    print(`${announce ? '\x1b[?2004h' : ''}user@host:~$ `);
    reading = true;
    const queued = pending;
    pending = '';
    for (const ch of queued) lineEditorKey(ch);
  };
  const lineEditorKey = (ch: string): void => {
    if (editing) {
      if (ch === 'q') {
        editing = false;
        print('\x1b[?2004l\x1b[?1049l');
        setTimeout(prompt, 2);
      }
      return;
    }
    if (askingPassword) {
      if (ch === '\r') {
        askingPassword = false;
        print('\r\n');
        setTimeout(prompt, 2);
      } else print('*');
      return;
    }
    if (!reading) {
      pending += ch;
      if (ch >= ' ') print(ch); // the tty's own echo while a command runs
      return;
    }
    if (ch === '\r' || ch === '\n') {
      const cmd = line;
      line = '';
      reading = false;
      print(`\r\n${announce ? '\x1b[?2004l' : ''}`);
      if (cmd !== '') ran.push(cmd);
      if (cmd === 'edit') {
        print('\x1b[?1049h\x1b[?2004h~\r\n~');
        editing = true;
        return;
      }
      if (cmd === 'askpass') {
        print(`Password: `);
        askingPassword = true;
        return;
      }
      const ms = /^sleep (\d+)/.exec(cmd)?.[1];
      setTimeout(
        () => {
          if (cmd !== '') print(`ran ${cmd}\r\n`);
          setTimeout(prompt, 2);
        },
        ms === undefined ? 2 : Number(ms),
      );
    } else if (ch === '\x15') {
      line = '';
      print('\r\x1b[Kuser@host:~$ ');
    } else if (ch >= ' ') {
      line += ch;
      print(ch);
    }
  };
  const filter: InteractiveLineFilter = new InteractiveLineFilter(80, 24, {
    toUpstream(data) {
      upstream.push(data.toString('latin1'));
      for (const ch of data.toString('latin1')) lineEditorKey(ch);
    },
    toClient(data) {
      toClient.push(data.toString());
    },
    async decide(l: string): Promise<LineVerdict> {
      decided.push(l);
      return deny(l) ? { allowed: false, message: `agentgate: denied by rule test` } : { allowed: true };
    },
  });
  setTimeout(() => {
    print('welcome\r\n');
    prompt();
  }, options.startupMs ?? 0);
  const settle = (ms = 400): Promise<void> => new Promise((r) => setTimeout(r, ms));
  return { filter, decided, ran, toClient, upstream, settle };
}

describe('InteractiveLineFilter', () => {
  it('decides the displayed line without the prompt and cancels a denied one', async () => {
    const h = harness((l) => l.startsWith('rm'));
    await h.filter.handleInput(Buffer.from('ls -l\r'));
    await h.filter.handleInput(Buffer.from('rm -rf /x\r'));
    await h.filter.handleInput(Buffer.from('echo ok\r'));
    await h.settle();
    expect(h.decided).toEqual(['ls -l', 'rm -rf /x', 'echo ok']);
    expect(h.ran).toEqual(['ls -l', 'echo ok']);
    expect(h.toClient.join('')).toContain('agentgate: denied by rule test');
    // The denied line was killed (Ctrl-E Ctrl-U) before the Enter reached the shell.
    expect(h.upstream.join('')).toContain('rm -rf /x\x05\x15\r');
    h.filter.dispose();
  });

  it('strips bracketed paste markers even when split across chunks and decides each pasted line', async () => {
    const h = harness(() => false);
    const paste = '\x1b[200~echo a\recho b\r\x1b[201~';
    for (const part of [
      paste.slice(0, 3),
      paste.slice(3, 20),
      paste.slice(20, paste.length - 2),
      paste.slice(paste.length - 2),
    ]) {
      await h.filter.handleInput(Buffer.from(part));
    }
    expect(h.decided).toEqual(['echo a', 'echo b']);
    expect(h.upstream.join('')).not.toContain('\x1b[20');
    h.filter.dispose();
  });

  for (const announce of [true, false]) {
    it(`holds lines written before the first prompt and releases them one prompt at a time (announce: ${announce})`, async () => {
      const h = harness((l) => l.startsWith('rm'), { announce, startupMs: 150 });
      await h.filter.handleInput(Buffer.from('echo one\nrm -f X\necho two\nexit\n'));
      await h.settle();
      expect(h.decided).toEqual(['echo one', 'rm -f X', 'echo two', 'exit']);
      expect(h.ran).toEqual(['echo one', 'echo two', 'exit']);
      h.filter.dispose();
    });
  }

  it('decides type-ahead written while a command runs like the same line typed at the prompt', async () => {
    const h = harness((l) => l.startsWith('rm'));
    await h.filter.handleInput(Buffer.from('sleep 600\rrm -f X\recho after\r'));
    await h.settle(1200);
    expect(h.decided).toEqual(['sleep 600', 'rm -f X', 'echo after']);
    expect(h.ran).toEqual(['sleep 600', 'echo after']);
    h.filter.dispose();
  });

  it('takes CR LF as one Enter, also when a chunk ends between them', async () => {
    const h = harness(() => false);
    await h.filter.handleInput(Buffer.from('echo a\r'));
    await h.filter.handleInput(Buffer.from('\necho b\r\n'));
    await h.filter.handleInput(Buffer.from('echo c\n'));
    await h.settle();
    expect(h.upstream.join('')).toBe('echo a\recho b\recho c\n');
    expect(h.ran).toEqual(['echo a', 'echo b', 'echo c']);
    h.filter.dispose();
  });

  it('refuses line-editor keys typed while a command runs (the shell would apply them later, unseen)', async () => {
    const h = harness(() => false);
    await h.filter.handleInput(Buffer.from('sleep 900\r'));
    await new Promise((r) => setTimeout(r, 400));
    // Ctrl-Y (yank) typed while sleep runs: the screen shows nothing useful, readline would paste its kill ring.
    await h.filter.handleInput(Buffer.from('\x19\r'));
    await h.settle(900);
    expect(h.toClient.join('')).toContain('cannot be decided');
    expect(h.ran).toEqual(['sleep 900']);
    h.filter.dispose();
  });

  it('does not take a full-screen program turning bracketed paste on for a shell announcing its prompt', async () => {
    const h = harness(() => false, { announce: false });
    await h.filter.handleInput(Buffer.from('edit\r'));
    await h.settle();
    await h.filter.handleInput(Buffer.from('q'));
    await h.settle();
    // A line-editor key (Tab) at the prompt of a shell that does not announce it is decided, not refused.
    await h.filter.handleInput(Buffer.from('echo x\t\r'));
    await h.settle();
    expect(h.toClient.join('')).not.toContain('cannot be decided');
    expect(h.decided).toEqual(['edit', 'echo x']);
    h.filter.dispose();
  });

  it('never decides keys a program read unseen (a password prompt printing `*`)', async () => {
    const h = harness(() => false);
    await h.filter.handleInput(Buffer.from('askpass\r'));
    await h.settle();
    await h.filter.handleInput(Buffer.from('hunter2\r'));
    await h.filter.handleInput(Buffer.from('echo after\r'));
    await h.settle();
    expect(h.decided).toEqual(['askpass', 'echo after']);
    h.filter.dispose();
  });

  it('decides a line typed with Ctrl-O (operate-and-get-next) and sends it as Enter', async () => {
    const h = harness((l) => l.startsWith('rm'));
    await h.filter.handleInput(Buffer.from('rm -rf /x\x0f'));
    await h.filter.handleInput(Buffer.from('echo ok\x0f'));
    await h.settle();
    expect(h.decided).toEqual(['rm -rf /x', 'echo ok']);
    expect(h.ran).toEqual(['echo ok']);
    expect(h.upstream.join('')).not.toContain('\x0f');
    h.filter.dispose();
  });
});
