/**
 * Terminal input at any speed: what agents do (write whole lines at once, before the prompt, and end their input
 * right after the last line) is decided exactly as the same lines typed slowly at the prompt, with the real OpenSSH
 * client (stdin a pipe, or a real terminal through `script`) and the ssh2 client pasting into a pty.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuleConfig } from '@agentgate/core';
import {
  makeKeyPair,
  run,
  sshClientOptions,
  startSshd,
  startStandaloneSshGateway,
  type StandaloneSshGateway,
  type TestSshd,
} from './harness/sshd.js';
import { ScriptedShell } from './harness/ssh-terminal.js';

const rules: RuleConfig[] = [{ name: 'no-rm', protocol: 'ssh', match: { programs: ['rm'] }, action: 'deny' }];

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };
let keyDir: string;
let victims = 0;

beforeAll(async () => {
  sshd = await startSshd();
  keyDir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-typeahead-'));
  agentKey = makeKeyPair(keyDir, 'agent');
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** A file a denied `rm -f` must leave in place. */
function victim(): string {
  const path = join(sshd.dir, `X-${++victims}`);
  writeFileSync(path, 'keep me');
  return path;
}

const sshTt = (): string[] => [...sshClientOptions(gw.port, agentKey.path), '-tt', 'agent@127.0.0.1'];

/** The lines printed by the commands themselves (`$((…))` makes them differ from the echo of what was typed). */
function printed(out: string, prefix: string): string[] {
  const line = new RegExp(`^(${prefix})-\\d+$`);
  return out
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r\n|\r|\n/)
    .filter((l) => line.test(l));
}

function commandTexts(): string[] {
  return gw.transcript.all('command').map((c) => String(c['text']));
}

describe('terminal input written faster than the shell reads it', () => {
  for (const [name, eol] of [
    ['LF', '\n'],
    ['CR LF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`runs lines piped into ssh -tt (${name}), refuses the denied one between them, and the shell ends`, async () => {
      const x = victim();
      const input = ['echo one-$((0+1))', `rm -f ${x}`, 'echo two-$((1+1))', 'exit'].join(eol) + eol;
      const r = await run('ssh', sshTt(), { input, timeoutMs: 60_000 });
      const out = r.stdout.toString();
      expect(printed(out, 'one|two')).toEqual(['one-1', 'two-2']);
      expect(out).toContain('agentgate: denied by rule no-rm');
      expect(existsSync(x)).toBe(true);
      expect(r.code).toBe(0);
      expect(commandTexts()).toEqual(
        expect.arrayContaining(['echo one-$((0+1))', `rm -f ${x}`, 'echo two-$((1+1))']),
      );
    });
  }

  it('runs a 50-line script piped into ssh -tt in order, with a denied line in the middle', async () => {
    const x = victim();
    const lines = Array.from({ length: 50 }, (_, i) => (i === 24 ? `rm -f ${x}` : `echo line-$((${i}+1))`));
    const r = await run('ssh', sshTt(), { input: [...lines, 'exit', ''].join('\n'), timeoutMs: 120_000 });
    const out = r.stdout.toString();
    const expected = Array.from({ length: 50 }, (_, i) => `line-${i + 1}`).filter((l) => l !== 'line-25');
    expect(printed(out, 'line')).toEqual(expected);
    expect(out.match(/agentgate: denied by rule no-rm/g)).toHaveLength(1);
    expect(existsSync(x)).toBe(true);
    expect(r.code).toBe(0);
  }, 150_000);

  it('decides lines typed ahead while a command runs like the same lines at the prompt', async () => {
    const x = victim();
    const input = ['sleep 1', `rm -f ${x}`, 'echo after-$((2+2))', 'exit', ''].join('\n');
    const r = await run('ssh', sshTt(), { input, timeoutMs: 60_000 });
    const out = r.stdout.toString();
    expect(printed(out, 'after')).toEqual(['after-4']);
    expect(out).toContain('agentgate: denied by rule no-rm');
    expect(existsSync(x)).toBe(true);
    expect(r.code).toBe(0);
  });

  it('runs lines written into a real terminal running ssh -tt (script), with its modes and size', async () => {
    const x = victim();
    const ssh = ['ssh', ...sshTt()].map((a) => `'${a}'`).join(' ');
    const input = ['echo pty-$((3*3))', `rm -f ${x}`, 'echo pty-$((4*4))', 'exit', ''].join('\n');
    const r = await run('script', ['-qec', `stty cols 100 rows 30; exec ${ssh}`, '/dev/null'], {
      input,
      timeoutMs: 60_000,
    });
    const out = r.stdout.toString();
    expect(printed(out, 'pty')).toEqual(['pty-9', 'pty-16']);
    expect(out).toContain('agentgate: denied by rule no-rm');
    expect(existsSync(x)).toBe(true);
    expect(r.code).toBe(0);
    const pty = gw.transcript.all('result').filter((e) => e['event'] === 'pty');
    expect(pty.at(-1)).toMatchObject({ width: 100, height: 30 });
  });

  it('runs a 50-line bracketed paste sent before the first prompt, then the input ends', async () => {
    const x = victim();
    const lines = Array.from({ length: 50 }, (_, i) => (i === 9 ? `rm -f ${x}` : `echo paste-$((${i}+1))`));
    const sh = await ScriptedShell.open({ port: gw.port, privateKeyPath: agentKey.path }, false);
    const closed = sh.closed();
    sh.write(`\x1b[200~${lines.join('\r')}\r\x1b[201~exit\r`);
    sh.endInput();
    expect(await closed).toBe(0);
    const expected = Array.from({ length: 50 }, (_, i) => `paste-${i + 1}`).filter((l) => l !== 'paste-10');
    expect(printed(sh.output, 'paste')).toEqual(expected);
    expect(sh.output.match(/agentgate: denied by rule no-rm/g)).toHaveLength(1);
    expect(existsSync(x)).toBe(true);
  }, 150_000);
});
