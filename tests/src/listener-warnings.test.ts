/**
 * Many open connections are normal for a gateway: more than ten Docker or SSH connections at once — the SSH ones
 * all made with one registered key — must not make Node warn about a listener leak (each connection has its own
 * shutdown signal; a credential lease keeps its watchers in a set of its own). Checked on `agentgate serve` as its
 * own process, whose stderr shows what Node prints. Its configuration has no rules, which the gateway warns about.
 */
import { connect, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ssh2 from 'ssh2';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'many-connections-token-5c2e';
const CONNECTIONS = 30;
let dockerd: TestDockerd;
let sshd: TestSshd;
let dir: string;
let gateway: ServedGateway | undefined;

beforeAll(async () => {
  // sshd drops unauthenticated connections beyond MaxStartups (10 by default): the gateway opens one per client.
  [dockerd, sshd] = await Promise.all([startDockerd(), startSshd({ extraConfig: 'MaxStartups 100' })]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-warnings-'));
  const configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(dir, { token: TOKEN }) +
      'listeners:\n' +
      listenerYaml.docker('docker', dockerd) +
      listenerYaml.ssh('shell', sshd, dir),
  );
  gateway = await serveProcess(configFile);
}, 120_000);

afterAll(async () => {
  gateway?.process.kill('SIGKILL');
  await Promise.all([dockerd?.stop(), sshd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A keep-alive Docker API connection that has made one authenticated request (so it holds a session). */
function dockerConnection(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () =>
      socket.write(`GET /version HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`),
    );
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n\r\n')) {
        if (answer.startsWith('HTTP/1.1 200')) resolve(socket);
        else reject(new Error(`unexpected answer: ${answer.slice(0, 200)}`));
      }
    });
    socket.on('error', reject);
  });
}

/** An SSH connection authenticated with `privateKey` (its session open), kept open. */
function sshConnection(port: number, privateKey: Buffer): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('ready', () => resolve(client));
    client.on('error', reject);
    client.connect({ host: '127.0.0.1', port, username: 'agent', privateKey });
  });
}

describe('many connections at once', () => {
  it(`holds ${CONNECTIONS} Docker and ${CONNECTIONS} SSH connections open without a listener warning`, async () => {
    const gw = gateway!;
    const docker = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => dockerConnection(gw.port('docker'))),
    );
    // Every SSH connection is made with one registered key: they share its lease, watched by each session.
    const key = makeKeyPair(dir, 'registered');
    const registered = await fetch(`${gw.admin}/api/ssh-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ publicKey: key.publicKey, ttl: '1h' }),
    });
    expect(registered.status).toBe(201);
    const privateKey = readFileSync(key.path);
    const ssh = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => sshConnection(gw.port('shell'), privateKey)),
    );
    for (const socket of docker) socket.destroy();
    for (const client of ssh) client.end();
    await gw.stop();
    expect(gw.process.exitCode).toBe(0);
    expect(gw.otherLines.filter((l) => l.includes('MaxListenersExceededWarning'))).toEqual([]);
    expect(gw.logs.filter((l) => l['level'] === 'error')).toEqual([]);
  }, 180_000);

  it('says at start that a configuration without rules decides everything by the listener defaults', () => {
    // This configuration has listeners and no rules.
    expect(gateway!.logs.find((l) => String(l['msg']).startsWith('no rules are configured'))).toMatchObject({
      level: 'warn',
      listeners: ['docker', 'shell'],
    });
  });
});
