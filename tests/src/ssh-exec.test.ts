/**
 * SSH exec through agentgate against a real OpenSSH sshd, driven by the OpenSSH client and the ssh2 client:
 * rules applied to every nesting, SPEC §4 denial rendering, exit codes, stdin/stdout integrity, approvals,
 * authentication, and robustness (pinned upstream host key, unreachable upstream, garbage banner).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { RuleConfig } from '@agentgate/core';
import {
  freePort,
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
  { name: 'no-wget', protocol: 'ssh', match: { programs: ['wget'] }, action: 'deny' },
  {
    name: 'touch-needs-review',
    protocol: 'ssh',
    match: { programs: ['touch'], pattern: 'reviewed' },
    action: 'approve',
  },
];

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let keys: string;
let agentKey: { path: string; publicKey: string };
let strangerKey: { path: string; publicKey: string };
let outsiderKey: { path: string; publicKey: string };
let victim: string;

function ssh(command: string, options: { input?: Buffer | string; key?: string; port?: number } = {}) {
  return run(
    'ssh',
    [...sshClientOptions(options.port ?? gw.port, options.key ?? agentKey.path), 'agent@127.0.0.1', command],
    options.input === undefined ? {} : { input: options.input },
  );
}

beforeAll(async () => {
  sshd = await startSshd();
  keys = mkdtempSync(join(tmpdir(), 'agentgate-ssh-keys-'));
  agentKey = makeKeyPair(keys, 'agent');
  strangerKey = makeKeyPair(keys, 'stranger');
  outsiderKey = makeKeyPair(keys, 'outsider');
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: {
      keys: [
        { name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] },
        { name: 'outsider', publicKey: outsiderKey.publicKey, groups: ['visitors'] },
      ],
      tokens: [{ name: 'ci-bot', token: 'token-of-ci-bot', groups: ['agents'] }],
    },
    approve: async (command) => !command.text.includes('rejected'),
  });
  victim = join(sshd.dir, 'victim');
  mkdirSync(victim);
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keys) rmSync(keys, { recursive: true, force: true });
});

describe('ssh exec through agentgate', () => {
  it('runs an allowed command and returns its output and exit status', async () => {
    const r = await ssh('echo hello; echo oops >&2; exit 7');
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr).toContain('oops');
    expect(r.code).toBe(7);
  });

  it('passes stdin and stdout through byte for byte', async () => {
    const input = randomBytes(3 * 1024 * 1024);
    const r = await ssh('sha256sum', { input });
    expect(r.code).toBe(0);
    expect(r.stdout.toString().split(' ')[0]).toBe(createHash('sha256').update(input).digest('hex'));
    const big = await ssh('head -c 5000000 /dev/zero; exit 3');
    expect(big.stdout.length).toBe(5_000_000);
    expect(big.code).toBe(3);
  });

  it('passes only allow-listed environment variables (listener envAllow)', async () => {
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: require_('fs').readFileSync(agentKey.path),
      });
    });
    // sshd accepts AGENTGATE_*; the gateway only AGENTGATE_OK*.
    const out = await new Promise<string>((resolve, reject) =>
      c.exec(
        'echo "$AGENTGATE_OK_1:$AGENTGATE_BLOCKED"',
        { env: { AGENTGATE_OK_1: 'yes', AGENTGATE_BLOCKED: 'no' } },
        (err, ch) => {
          if (err) return reject(err);
          let o = '';
          ch.on('data', (d: Buffer) => (o += d.toString()));
          ch.on('close', () => resolve(o));
        },
      ),
    );
    c.end();
    expect(out).toBe('yes:\n');
  });

  it('allows harmless nesting', async () => {
    const r = await ssh(`echo abc | tr a x && sh -c 'echo $((1+2))' && echo "$(echo sub)"`);
    expect(r.stdout.toString()).toBe('xbc\n3\nsub\n');
    expect(r.code).toBe(0);
  });

  const nestings: [string, string][] = [
    ['plain', 'rm -rf VICTIM'],
    ['pipeline', 'true | rm -rf VICTIM'],
    ['and-list', 'true && rm -rf VICTIM'],
    ['or-list', 'false || rm -r VICTIM'],
    ['sequence', 'echo hi; rm -fr VICTIM'],
    ['subshell', '(rm -rf VICTIM)'],
    ['command substitution', 'echo $(rm -rf VICTIM)'],
    ['backticks', 'echo `rm -rf VICTIM`'],
    ['sh -c', "sh -c 'rm -rf VICTIM'"],
    ['bash -c nested', `bash -c "sh -c 'rm -rf VICTIM'"`],
    ['sudo', 'sudo rm -rf VICTIM'],
    ['env', 'env FOO=1 rm -rf VICTIM'],
    ['nice', 'nice -n 5 rm -rf VICTIM'],
    ['timeout', 'timeout 5 rm -rf VICTIM'],
    ['xargs', 'echo VICTIM | xargs rm -rf'],
    ['find -exec', 'find VICTIM -maxdepth 0 -exec rm -rf {} +'],
  ];
  it.each(nestings)('denies rm -rf nested in %s with exit 126 and the SPEC text', async (_name, template) => {
    const r = await ssh(template.split('VICTIM').join(victim));
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('agentgate: denied by rule no-rm-rf');
    expect(r.stdout.length).toBe(0);
    expect(existsSync(victim)).toBe(true);
  });

  it('denies a command it cannot parse', async () => {
    const r = await ssh("echo 'unterminated");
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/agentgate: denied/);
  });

  it('treats a program computed at run time as matching every programs rule', async () => {
    const r = await ssh('P=wget; $P --version');
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('agentgate: denied by rule');
  });

  it('holds a command for approval and runs it once approved', async () => {
    const file = join(sshd.dir, 'reviewed-ok');
    const r = await ssh(`touch ${file}`);
    expect(r.code).toBe(0);
    expect(existsSync(file)).toBe(true);
    const rejected = await ssh(`touch ${join(sshd.dir, 'reviewed-rejected')}`);
    expect(rejected.code).toBe(126);
    expect(rejected.stderr).toMatch(/agentgate: approval appr-\d+ rejected/);
    expect(existsSync(join(sshd.dir, 'reviewed-rejected'))).toBe(false);
    expect(gw.approvals.map((c) => c.text)).toEqual([
      `touch ${file}`,
      `touch ${join(sshd.dir, 'reviewed-rejected')}`,
    ]);
  });

  it('records the session, commands, decisions, output and exit statuses', async () => {
    await ssh('echo recorded-marker; exit 5');
    const session = gw.transcript.sessions.find((s) =>
      s.events.some((e) => e.type === 'command' && e.body['text'] === 'echo recorded-marker; exit 5'),
    );
    expect(session).toBeDefined();
    // session.end is appended when the client connection closes, right after ssh exits.
    for (let i = 0; i < 50 && !session!.ended; i++) await new Promise((r) => setTimeout(r, 20));
    const types = session!.events.map((e) => e.type);
    expect(types[0]).toBe('session.start');
    expect(session!.events.find((e) => e.type === 'command')?.body['decision']).toMatchObject({
      action: 'allow',
    });
    expect(types[types.length - 1]).toBe('session.end');
    expect(session!.info.identity.name).toBe('devin');
    const exit = session!.events.find((e) => e.type === 'result' && e.body['event'] === 'exit');
    expect(exit?.body['exitStatus']).toBe(5);
    expect(
      Buffer.concat(session!.io.filter((x) => x.direction === 'out').map((x) => x.data)).toString(),
    ).toBe('recorded-marker\n');
  });
});

describe('ssh authentication', () => {
  it('refuses a key that is not registered', async () => {
    const r = await ssh('echo hi', { key: strangerKey.path });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it('refuses an identity outside the listener allow list', async () => {
    const r = await ssh('echo hi', { key: outsiderKey.path });
    expect(r.code).toBe(255);
  });

  it('accepts the token as password (ssh2 client) and refuses a wrong one', async () => {
    const exec = (password: string) =>
      new Promise<string>((resolve, reject) => {
        const c = new ssh2.Client();
        c.on('ready', () => {
          c.exec('whoami', (err, ch) => {
            if (err) return reject(err);
            let out = '';
            ch.on('data', (d: Buffer) => (out += d.toString()));
            ch.on('close', () => {
              c.end();
              resolve(out.trim());
            });
          });
        });
        c.on('error', (err) => reject(err));
        c.connect({ host: '127.0.0.1', port: gw.port, username: 'ci', password, tryKeyboard: false });
      });
    await expect(exec('token-of-ci-bot')).resolves.toBe('root');
    await expect(exec('not-the-token')).rejects.toThrow(/authentication methods failed/);
  });

  it('rejects a signature that was not made by the offered key', async () => {
    // A client that offers the registered public key but signs with another key must not get in.
    const offered = ssh2.utils.parseKey(agentKey.publicKey);
    const signer = ssh2.utils.parseKey(require_('fs').readFileSync(strangerKey.path));
    if (offered instanceof Error || signer instanceof Error) throw new Error('keys');
    const forged = Object.create(signer) as typeof signer;
    Object.defineProperty(forged, 'getPublicSSH', { value: () => offered.getPublicSSH() });
    const attempt = new Promise<void>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('ready', () => {
        c.end();
        resolve();
      });
      c.on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        authHandler: [{ type: 'publickey', username: 'agent', key: forged }],
      } as never);
    });
    await expect(attempt).rejects.toThrow(/authentication methods failed/);
  });
});

describe('ssh robustness', () => {
  it('refuses an upstream whose host key does not match the pin, and records it', async () => {
    const other = makeKeyPair(keys, 'not-the-host-key');
    const pinned = await startStandaloneSshGateway({
      sshd,
      rules,
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      listener: { upstream: { ...gw.listener.upstream, hostKey: other.publicKey } },
    });
    try {
      const r = await ssh('echo should-not-run', { port: pinned.port });
      expect(r.code).toBe(255);
      expect(r.stderr).toContain('host key does not match');
      expect(r.stdout.length).toBe(0);
      expect(pinned.transcript.all('error').some((e) => e['event'] === 'upstream.host-key-mismatch')).toBe(
        true,
      );
    } finally {
      await pinned.stop();
    }
  });

  it('gives a clean error when the upstream is unreachable', async () => {
    const closedPort = await freePort();
    const down = await startStandaloneSshGateway({
      sshd,
      rules,
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      listener: { upstream: { ...gw.listener.upstream, port: closedPort } },
    });
    try {
      const r = await ssh('echo hi', { port: down.port });
      expect(r.code).toBe(255);
      expect(r.stderr).toContain('agentgate: upstream unavailable');
    } finally {
      await down.stop();
    }
  });

  it('drops a client that sends garbage instead of an SSH banner', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect(gw.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      const timer = setTimeout(() => resolve(false), 10_000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    expect(closed).toBe(true);
    const r = await ssh('echo still-serving');
    expect(r.stdout.toString()).toBe('still-serving\n');
  });

  it('bounds memory when the client reads slower than the upstream writes (flow control)', async () => {
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: require_('fs').readFileSync(agentKey.path),
      });
    });
    const before = process.memoryUsage().arrayBuffers;
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      c.exec('head -c 50000000 /dev/zero', (err, s) => (err ? reject(err) : resolve(s))),
    );
    ch.pause(); // a client that stops reading: its window closes, the gateway must stop reading upstream
    await new Promise((r) => setTimeout(r, 1500));
    const grown = process.memoryUsage().arrayBuffers - before;
    let received = 0;
    ch.on('data', (d: Buffer) => (received += d.length));
    const done = new Promise<number | null>((resolve) =>
      ch.on('exit', (code: number | null) => resolve(code)),
    );
    const closed = new Promise((r) => ch.on('close', r));
    ch.resume();
    expect(await done).toBe(0);
    await closed;
    c.end();
    expect(received).toBe(50_000_000);
    // ssh2 buffers at most a window plus its 2 MiB highWaterMark per hop; far below the 50 MB the upstream offered.
    expect(grown).toBeLessThan(32 * 1024 * 1024);
  });

  it('survives a client that drops mid-transfer, and the upstream command is ended', async () => {
    const marker = `${Date.now()}`;
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: require_('fs').readFileSync(agentKey.path),
      });
    });
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      c.exec(`cat /dev/zero # ${marker}`, (err, s) => (err ? reject(err) : resolve(s))),
    );
    await new Promise<void>((resolve) => ch.once('data', () => resolve()));
    c.on('error', () => undefined);
    (c as unknown as { _sock: { destroy(): void } })._sock.destroy();
    let running = true;
    for (let i = 0; i < 50 && running; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ps = await run('pgrep', ['-f', marker]);
      running = ps.code === 0;
    }
    expect(running).toBe(false);
    const r = await ssh('echo alive');
    expect(r.stdout.toString()).toBe('alive\n');
  });

  it('forwards an exit signal, and survives the upstream connection dropping mid-transfer', async () => {
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: require_('fs').readFileSync(agentKey.path),
      });
    });
    const firstLine = (ch: ssh2.ClientChannel): Promise<string> =>
      new Promise((resolve) => {
        let buf = '';
        const onData = (d: Buffer): void => {
          buf += d.toString('latin1');
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            ch.off('data', onData);
            ch.resume();
            resolve(buf.slice(0, nl));
          }
        };
        ch.on('data', onData);
      });
    const open = (cmd: string) =>
      new Promise<ssh2.ClientChannel>((resolve, reject) =>
        c.exec(cmd, (err, s) => (err ? reject(err) : resolve(s))),
      );

    const sleeper = await open('echo $$; exec sleep 30');
    const signalled = new Promise<unknown[]>((resolve) =>
      sleeper.on('exit', (...args: unknown[]) => resolve(args)),
    );
    process.kill(Number(await firstLine(sleeper)), 'SIGTERM');
    const [code, signal] = await signalled;
    expect(code).toBeNull();
    expect(signal).toBe('SIGTERM'); // ssh2 reports RFC 4254 §6.10's "TERM" with the SIG prefix

    // $PPID of the command is sshd's per-connection process: killing it drops the gateway's upstream connection.
    const streamer = await open('echo $PPID; exec cat /dev/zero');
    const closed = new Promise<void>((resolve) => streamer.on('close', () => resolve()));
    process.kill(Number(await firstLine(streamer)), 'SIGKILL');
    await closed;
    c.end();
    const r = await ssh('echo upstream-reconnected');
    expect(r.stdout.toString()).toBe('upstream-reconnected\n');
  });

  it('serves more than MaxSessions (10) concurrent channels on one client connection', async () => {
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: require_('fs').readFileSync(agentKey.path),
      });
    });
    const one = (i: number) =>
      new Promise<string>((resolve, reject) => {
        c.exec(`sleep 0.5; echo ${i}`, (err, ch) => {
          if (err) return reject(err);
          let out = '';
          ch.on('data', (d: Buffer) => (out += d.toString()));
          ch.on('close', () => resolve(out.trim()));
        });
      });
    const outs = await Promise.all(Array.from({ length: 14 }, (_, i) => one(i)));
    c.end();
    expect(outs).toEqual(Array.from({ length: 14 }, (_, i) => String(i)));
  });
});

import { createRequire } from 'node:module';
const require_ = createRequire(import.meta.url);
