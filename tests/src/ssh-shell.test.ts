/**
 * Interactive pty shells through agentgate: a script drives a real bash (via sshd) with the ssh2 client. The gateway
 * decides each line as the screen shows it, cancels denied lines and the shell goes on.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

const rules: RuleConfig[] = [
  { name: 'no-rm-rf', protocol: 'ssh', match: { programs: ['rm'], pattern: '-[a-zA-Z]*r' }, action: 'deny' },
];

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };
let victim: string;
let keyDir: string;

const openShell = (env?: Record<string, string>): Promise<ScriptedShell> =>
  ScriptedShell.open({ port: gw.port, privateKeyPath: agentKey.path, ...(env ? { env } : {}) });

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
    const sh = await openShell({ LANG: 'C.UTF-8' });
    await sh.type('echo first-$((40+2))\r', /first-42/);
    const denied = await sh.type(`rm -rf ${victim}\r`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(denied).toContain('agentgate: denied by rule no-rm-rf');
    expect(existsSync(victim)).toBe(true);
    await sh.type('echo after-$((1+1))\r', /after-2/);
    expect(await sh.exit()).toBe(0);
  });

  it('decides the line as displayed after line editing, not the raw keystrokes', async () => {
    const sh = await openShell();
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
    const sh = await openShell();
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

  it('keeps what was typed before Ctrl-D or an ignored Ctrl-C in the line that runs', async () => {
    const sh = await openShell();
    // Ctrl-D in a non-empty line is readline's delete-char: the line goes on, and `x` Enter runs all of it. (Keys
    // are sent once readline has echoed the line: a signal key flushes what the terminal has not handed on yet.)
    await sh.type(`rm -rf ${victim} #`, / #$/);
    await sh.type(`\x04x\r`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(existsSync(victim)).toBe(true);
    // With SIGINT ignored Ctrl-C does not drop the line either.
    await sh.type(`trap '' INT\r`, /[#$] $/);
    await sh.type(`rm -rf ${victim} #`, / #$/);
    await sh.type(`\x03x\r`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(existsSync(victim)).toBe(true);
    // Where Ctrl-C does drop the line, the next one is decided on its own.
    await sh.type(`trap - INT\r`, /[#$] $/);
    await sh.type(`rm -rf ${victim}`, new RegExp(`${victim}$`));
    await sh.type(`\x03`, /\^C[\s\S]*[#$] $/);
    await sh.type('echo fresh-$((3+4))\r', /fresh-7/);
    expect(existsSync(victim)).toBe(true);
    expect(await sh.exit()).toBe(0);
  });

  it('decides a line run with Ctrl-O (operate-and-get-next) like one run with Enter', async () => {
    const sh = await openShell();
    await sh.type(`rm -rf ${victim}\x0f`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(existsSync(victim)).toBe(true);
    await sh.type('echo via-ctrl-o-$((5*5))\x0f', /via-ctrl-o-25[\s\S]*[#$] $/);
    expect(await sh.exit()).toBe(0);
  });

  it('refuses line-editor keys typed ahead while a command runs (readline would apply them unseen)', async () => {
    const sh = await openShell();
    // Ctrl-U at the prompt puts the line into readline's kill ring; Ctrl-Y typed during `sleep` would yank it back
    // when the prompt returns, where the screen showed only `^Y`.
    await sh.type(`rm -rf ${victim}\x15`, /[#$] (\x1b\[K)?$/);
    await sh.type('sleep 2\r', /sleep 2\r\n/);
    const out = await sh.type('\x19\r', /cannot be decided[\s\S]*[#$] $/, 15_000);
    expect(out).toContain('agentgate: keys typed while no prompt was shown');
    await sh.type('echo still-$((1))-here\r', /still-1-here/);
    expect(existsSync(victim)).toBe(true);
    expect(await sh.exit()).toBe(0);
  });

  it('decides a line typed at the shell prompt with echo off on its keys', async () => {
    const sh = await openShell();
    await sh.type('stty -echo\r', /[#$] $/);
    const out = await sh.type(`rm -rf ${victim}\r`, /agentgate: denied by rule no-rm-rf[\s\S]*[#$] $/);
    expect(out).not.toContain(victim);
    expect(existsSync(victim)).toBe(true);
    await sh.type('echo unseen-$((6+6))\r', /unseen-12/);
    await sh.type('stty echo\r', /[#$] $/);
    expect(await sh.exit()).toBe(0);
  });

  it('records shell lines, decisions and the pty size, and no terminal input', async () => {
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
    // What was typed is in the output as the terminal echoed it; the keys themselves are not recorded.
    expect(pty?.body).toMatchObject({ inputRecorded: false });
    expect(session!.io.filter((x) => x.direction === 'in')).toEqual([]);
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

  it('permits shell lines with redirects and comments in allow-list mode (no junk reading of `> file`)', async () => {
    const allowListed = await startStandaloneSshGateway({
      sshd,
      rules: [
        { name: 'basics', protocol: 'ssh', match: { programs: ['echo', 'cat', 'exit'] }, action: 'allow' },
      ],
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      listener: { name: 'allow-listed', default: 'deny' },
    });
    const file = join(sshd.dir, 'allow-listed-out');
    try {
      const sh = await ScriptedShell.open({ port: allowListed.port, privateKeyPath: agentKey.path });
      await sh.type(`echo hi-$((1+1)) > ${file}\r`, /[#$] $/);
      await sh.type(`cat ${file} 2> /dev/null # show it\r`, /hi-2\r\n[\s\S]*[#$] $/);
      await sh.type(`echo 50% done >> ${file}\r`, /[#$] $/);
      expect(readFileSync(file, 'utf8')).toBe('hi-2\n50% done\n');
      const refused = await sh.type(`rm -f ${file}\r`, /default-deny[\s\S]*[#$] $/);
      expect(refused).toContain('no allow rule matches program rm');
      expect(existsSync(file)).toBe(true);
      expect(await sh.exit()).toBe(0);
      const decisions = allowListed.transcript.decisions().map((d) => d['action']);
      expect(decisions).toEqual(['allow', 'allow', 'allow', 'deny', 'allow']);
    } finally {
      await allowListed.stop();
    }
  });

  it('keeps a script shell in order: lines after one held for approval wait, and so does the EOF', async () => {
    const reviewed = await startStandaloneSshGateway({
      sshd,
      rules: [{ name: 'review-touch', protocol: 'ssh', match: { programs: ['touch'] }, action: 'approve' }],
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      listener: { name: 'reviewed' },
      approve: async () => {
        await new Promise((r) => setTimeout(r, 1000));
        return true;
      },
    });
    const file = join(sshd.dir, 'approved-in-script');
    try {
      const r = await run(
        'ssh',
        [...sshClientOptions(reviewed.port, agentKey.path), '-T', 'agent@127.0.0.1'],
        {
          input: `echo one\ntouch ${file} && echo touched\necho two\n`,
        },
      );
      expect(r.stdout.toString()).toBe('one\ntouched\ntwo\n');
      expect(existsSync(file)).toBe(true);
    } finally {
      await reviewed.stop();
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
