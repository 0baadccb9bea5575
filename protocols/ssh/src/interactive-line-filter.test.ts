import { describe, it, expect } from '@jest/globals';
import { InteractiveLineFilter, type LineVerdict } from './interactive-line-filter.js';

/** A fake line-discipline shell: echoes printable input, prints a prompt after Enter, Ctrl-U clears the line. */
function harness(deny: (line: string) => boolean) {
  const decided: string[] = [];
  const toClient: string[] = [];
  const upstream: string[] = [];
  let line = '';
  const filter: InteractiveLineFilter = new InteractiveLineFilter(80, 24, {
    toUpstream(data) {
      upstream.push(data.toString('latin1'));
      let echo = '';
      for (const ch of data.toString('latin1')) {
        if (ch === '\r') {
          echo += `\r\n${line === '' ? '' : `ran ${line}\r\n`}user@host:~$ `;
          line = '';
        } else if (ch === '\x15') {
          echo += '\r\x1b[Kuser@host:~$ ';
          line = '';
        } else if (ch >= ' ') {
          line += ch;
          echo += ch;
        }
      }
      if (echo !== '') setTimeout(() => filter.observeOutput(Buffer.from(echo), () => undefined), 2);
    },
    toClient(data) {
      toClient.push(data.toString());
    },
    async decide(l: string): Promise<LineVerdict> {
      decided.push(l);
      return deny(l) ? { allowed: false, message: `agentgate: denied by rule test` } : { allowed: true };
    },
  });
  filter.observeOutput(Buffer.from('welcome\r\nuser@host:~$ '), () => undefined);
  return { filter, decided, toClient, upstream };
}

describe('InteractiveLineFilter', () => {
  it('decides the displayed line without the prompt and cancels a denied one', async () => {
    const h = harness((l) => l.startsWith('rm'));
    await h.filter.handleInput(Buffer.from('ls -l\r'));
    await h.filter.handleInput(Buffer.from('rm -rf /x\r'));
    await h.filter.handleInput(Buffer.from('echo ok\r'));
    expect(h.decided).toEqual(['ls -l', 'rm -rf /x', 'echo ok']);
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
});
