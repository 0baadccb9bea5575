/**
 * Forwarding through agentgate (RFC 4254 §7, OpenSSH agent/x11 requests): denied unless a rule with `channels:`
 * allows it; allowed channels carry their bytes and are counted in the transcript.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { RuleConfig } from '@agentgate/core';
import {
  makeKeyPair,
  startSshd,
  startStandaloneSshGateway,
  type StandaloneSshGateway,
  type TestSshd,
} from './harness/sshd.js';

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let echo: Server;
let echoPort: number;
let devinKey: { path: string; publicKey: string };
let forwarderKey: { path: string; publicKey: string };
let dir: string;

const rules: RuleConfig[] = [
  {
    name: 'forwarder-may-tunnel',
    protocol: 'ssh',
    who: ['identity:forwarder'],
    match: { channels: ['port-forward'] },
    action: 'allow',
  },
];

function login(keyPath: string): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c)).on('error', reject);
    c.connect({ host: '127.0.0.1', port: gw.port, username: 'agent', privateKey: readFileSync(keyPath) });
  });
}

function roundTrip(stream: NodeJS.ReadWriteStream & { end(): void }, payload: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    stream.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= payload.length) {
        stream.end();
        resolve(got);
      }
    });
    stream.write(payload);
  });
}

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-fwd-'));
  devinKey = makeKeyPair(dir, 'devin');
  forwarderKey = makeKeyPair(dir, 'forwarder');
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: {
      keys: [
        { name: 'devin', publicKey: devinKey.publicKey, groups: ['agents'] },
        { name: 'forwarder', publicKey: forwarderKey.publicKey, groups: ['agents'] },
      ],
    },
  });
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await new Promise<void>((r) => (echo ? echo.close(() => r()) : r()));
});

describe('port forwarding through agentgate', () => {
  it('denies direct-tcpip (ssh -L) without a channels rule and records the decision', async () => {
    const c = await login(devinKey.path);
    try {
      await expect(
        new Promise((resolve, reject) =>
          c.forwardOut('127.0.0.1', 5000, '127.0.0.1', echoPort, (err, ch) =>
            err ? reject(err) : resolve(ch),
          ),
        ),
      ).rejects.toThrow();
    } finally {
      c.end();
    }
    const d = gw.transcript.decisions().find((x) => x['rule'] === 'builtin:forwarding-not-allowed');
    expect(d).toBeDefined();
  });

  it('allows direct-tcpip for an identity a rule allows, relays and counts the bytes', async () => {
    const c = await login(forwarderKey.path);
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        c.forwardOut('127.0.0.1', 5000, '127.0.0.1', echoPort, (err, s) => (err ? reject(err) : resolve(s))),
      );
      const payload = 'x'.repeat(100_000);
      expect(await roundTrip(ch, payload)).toBe(payload);
      await new Promise((r) => ch.on('close', r));
    } finally {
      c.end();
    }
    await new Promise((r) => setTimeout(r, 100));
    const closed = gw.transcript.all('result').find((x) => x['event'] === 'channel.closed');
    expect(closed).toMatchObject({ bytesToUpstream: 100_000, bytesToClient: 100_000 });
  });

  it('remote forwarding (ssh -R): denied for devin, allowed and relayed for forwarder', async () => {
    const denied = await login(devinKey.path);
    await expect(
      new Promise((resolve, reject) =>
        denied.forwardIn('127.0.0.1', 0, (err, port) => (err ? reject(err) : resolve(port))),
      ),
    ).rejects.toThrow();
    denied.end();

    const c = await login(forwarderKey.path);
    try {
      c.on('tcp connection', (_info, accept) => {
        const ch = accept();
        ch.pipe(ch); // the client side answers as an echo service
      });
      const port = await new Promise<number>((resolve, reject) =>
        c.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))),
      );
      expect(port).toBeGreaterThan(0);
      // Connect to the port sshd opened upstream: the bytes come back through sshd, the gateway and the client.
      const sock = connect(port, '127.0.0.1');
      expect(await roundTrip(sock, 'hello remote')).toBe('hello remote');
      sock.destroy();
    } finally {
      c.end();
    }
  });

  it('denies x11 and agent forwarding requests unless allowed, and the session still runs', async () => {
    const c = await login(devinKey.path);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        c.exec('echo with-x11', { x11: true }, (err, ch) => {
          if (err) return reject(err);
          let o = '';
          ch.on('data', (d: Buffer) => (o += d.toString()));
          ch.on('close', () => resolve(o));
        });
      });
      expect(out).toBe('with-x11\n');
    } finally {
      c.end();
    }
    const x11 = gw.transcript.all('command').find((x) => x['kind'] === 'channel' && x['channel'] === 'x11');
    expect(x11).toBeDefined();
    expect(
      gw.transcript.decisions().filter((d) => d['rule'] === 'builtin:forwarding-not-allowed').length,
    ).toBeGreaterThanOrEqual(2);
  });
});
