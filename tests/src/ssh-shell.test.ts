/**
 * Interactive pty shells through agentgate: a script drives a real bash (via sshd) with the ssh2 client. The gateway
 * decides each line as the screen shows it, cancels denied lines and the shell goes on.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
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

const rules: RuleConfig[] = [
  { name: 'no-rm-rf', protocol: 'ssh', match: { programs: ['rm'], pattern: '-[a-zA-Z]*r' }, action: 'deny' },
];

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };
let victim: string;
let keyDir: string;

class ScriptedShell {
  output = '';
  private constructor(
    private readonly client: ssh2.Client,
    private readonly channel: ssh2.ClientChannel,
  ) {
    channel.on('data', (d: Buffer) => {
      this.output += d.toString('utf8');
    });
  }

  static async open(port: number, env?: Record<string, string>): Promise<ScriptedShell> {
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.on('ready', resolve).on('error', reject);
      client.connect({ host: '127.0.0.1', port, username: 'agent', privateKey: readFileSync(agentKey.path) });
    });
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.shell({ term: 'xterm', cols: 100, rows: 30 }, env === undefined ? {} : { env }, (err, ch) =>
        err ? reject(err) : resolve(ch),
      ),
    );
    const shell = new ScriptedShell(client, channel);
    await shell.waitFor(/[#$] $/m);
    return shell;
  }

  /** Send keystrokes and wait until the output (after this point) matches. */
  async type(keys: string, until: RegExp, timeoutMs = 5000): Promise<string> {
    const mark = this.output.length;
    this.channel.write(keys);
    return this.waitFor(until, timeoutMs, mark);
  }

  async waitFor(re: RegExp, timeoutMs = 5000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const seen = this.output.slice(from);
      if (re.test(seen)) return seen;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${re}; output was:\n${JSON.stringify(this.output.slice(from))}`);
  }

  exit(): Promise<number | null> {
    return new Promise((resolve) => {
      let code: number | null = null;
      this.channel.on('exit', (c: number | null) => (code = c));
      this.channel.on('close', () => {
        this.client.end();
        resolve(code);
      });
      this.channel.write('exit\r');
    });
  }
}

beforeAll(async () => {
  sshd = await startSshd();
  keyDir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-keys-'));
  agentKey = makeKeyPair(keyDir, 'agent');
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
  });
  victim = join(sshd.dir, 'victim');
  mkdirSync(victim);
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

describe('interactive shell through agentgate', () => {
  it('runs allowed lines, cancels a denied line with the SPEC text, and the shell goes on', async () => {
    const sh = await ScriptedShell.open(gw.port, { LANG: 'C.UTF-8' });
    await sh.type('echo first-$((40+2))\r', /first-42/);
    const denied = await sh.type(`rm -rf ${victim}\r`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(denied).toContain('agentgate: denied by rule no-rm-rf');
    expect(existsSync(victim)).toBe(true);
    await sh.type('echo after-$((1+1))\r', /after-2/);
    expect(await sh.exit()).toBe(0);
  });

  it('decides the line as displayed after line editing, not the raw keystrokes', async () => {
    const sh = await ScriptedShell.open(gw.port);
    // Typed "echo safe", killed it with Ctrl-U, then typed the dangerous command: the screen shows only rm.
    const out = await sh.type(`echo safe\x15rm -rf ${victim}\r`, /agentgate: denied by rule no-rm-rf/);
    expect(out).not.toContain('\nsafe');
    expect(existsSync(victim)).toBe(true);
    // The reverse: a dangerous command typed then erased is not what runs.
    await sh.type(`rm -rf ${victim}\x15echo edited-$((2*3))\r`, /edited-6/);
    // History recall: the recalled line is what the screen shows.
    await sh.type('\x1b[A\r', /edited-6/);
    expect(await sh.exit()).toBe(0);
  });

  it('decides a multi-line bracketed paste line by line', async () => {
    const sh = await ScriptedShell.open(gw.port);
    const out = await sh.type(
      `\x1b[200~echo paste-$((1))\rrm -rf ${victim}\recho paste-$((3))\r\x1b[201~`,
      /paste-3/,
      8000,
    );
    expect(out).toContain('paste-1');
    expect(out).toContain('agentgate: denied by rule no-rm-rf');
    expect(existsSync(victim)).toBe(true);
    expect(await sh.exit()).toBe(0);
  });

  it('records shell lines, decisions, the pty size and terminal io', async () => {
    const session = gw.transcript.sessions.find((s) =>
      s.events.some((e) => e.type === 'command' && String(e.body['text']).startsWith('echo first-')),
    );
    expect(session).toBeDefined();
    const pty = session!.events.find((e) => e.type === 'result' && e.body['event'] === 'pty');
    expect(pty?.body).toMatchObject({ width: 100, height: 30 });
    const commands = session!.events.filter((e) => e.type === 'command').map((e) => e.body);
    expect(commands.map((c) => c['kind'])).toEqual(['shell-line', 'shell-line', 'shell-line', 'shell-line']);
    expect(commands[1]!['text']).toBe(`rm -rf ${victim}`);
    const out = Buffer.concat(session!.io.filter((x) => x.direction === 'out').map((x) => x.data)).toString();
    expect(out).toContain('first-42');
    const input = Buffer.concat(
      session!.io.filter((x) => x.direction === 'in').map((x) => x.data),
    ).toString();
    expect(input).toContain('echo first-$((40+2))');
  });

  it('refuses shells on a listener with shell: deny while exec still works', async () => {
    const execOnly = await startStandaloneSshGateway({
      sshd,
      rules,
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      listener: { shell: 'deny', name: 'exec-only' },
    });
    try {
      const shell = await run(
        'ssh',
        [...sshClientOptions(execOnly.port, agentKey.path), '-tt', 'agent@127.0.0.1'],
        { input: 'echo hi\n' },
      );
      expect(shell.code).toBe(126);
      expect(shell.stdout.toString() + shell.stderr).toContain('interactive shells are disabled');
      const exec = await run('ssh', [
        ...sshClientOptions(execOnly.port, agentKey.path),
        'agent@127.0.0.1',
        'echo exec-ok',
      ]);
      expect(exec.stdout.toString()).toBe('exec-ok\n');
    } finally {
      await execOnly.stop();
    }
  });

  it('filters a shell without a pty line by line (a script on stdin)', async () => {
    const r = await run('ssh', [...sshClientOptions(gw.port, agentKey.path), '-T', 'agent@127.0.0.1'], {
      input: `echo script-1\nrm -rf ${victim}\necho script-2\n`,
    });
    expect(r.stdout.toString()).toBe('script-1\nscript-2\n');
    expect(r.stderr).toContain('agentgate: denied by rule no-rm-rf');
    expect(existsSync(victim)).toBe(true);
  });
});
