/**
 * Upstream truth: `/readyz` probes each listener's upstream (connect and log in with the gateway's own credentials)
 * and `agentgate check-config --probe` does it once from the command line. Real PostgreSQL, sshd and dockerd; one
 * listener of each kind configured right, and a PostgreSQL listener with a wrong password, an SSH listener pinning
 * another host key and a Docker listener on a socket nobody serves.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from './harness/cli.js';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { makeKeyPair, startSshd, type TestSshd } from './harness/sshd.js';

let postgres: TestPostgres;
let sshd: TestSshd;
let dockerd: TestDockerd;
let dir: string;
let listenersYaml: string;
let gw: TestGateway;

beforeAll(async () => {
  [postgres, sshd, dockerd] = await Promise.all([startPostgres(), startSshd(), startDockerd()]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-probe-'));
  const otherHostKey = makeKeyPair(dir, 'not-the-host').publicKey.split(' ').slice(0, 2).join(' ');
  const pg = (name: string, password: string): string => `  - name: ${name}
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "${password}", database: app }
`;
  const ssh = (name: string, hostKey: string): string => `  - name: ${name}
    protocol: ssh
    listen: "127.0.0.1:0"
    hostKey: ${join(dir, `${name}_host_key`)}
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${hostKey}" }
`;
  const docker = (name: string, socket: string): string => `  - name: ${name}
    protocol: docker
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { socket: ${socket} }
`;
  listenersYaml =
    'listeners:\n' +
    pg('db', PASSWORD) +
    pg('db-wrong-password', 'not-the-password') +
    ssh('shell', sshd.hostKeyLine) +
    ssh('shell-wrong-host-key', otherHostKey) +
    docker('docker', dockerd.socket) +
    docker('docker-no-daemon', join(dir, 'nobody.sock'));
  gw = await startTestGateway(listenersYaml);
}, 180_000);

afterAll(async () => {
  await gw?.stop();
  await Promise.all([postgres?.stop(), sshd?.stop(), dockerd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('upstream probes', () => {
  it('/readyz names each upstream, and a wrong upstream password makes the gateway not ready', async () => {
    const res = await fetch(`${gw.adminUrl}/readyz`);
    const body = (await res.json()) as {
      status: string;
      checks: Record<string, boolean>;
      upstreams: Record<string, { ok: boolean; stage: string; message: string; checkedAt: string }>;
    };
    expect(res.status).toBe(503);
    expect(body.status).toBe('not ready');
    expect(body.checks).toMatchObject({
      store: true,
      'upstream:db': true,
      'upstream:db-wrong-password': false,
      'upstream:shell': true,
      'upstream:shell-wrong-host-key': false,
      'upstream:docker': true,
      'upstream:docker-no-daemon': false,
    });
    expect(body.upstreams['db']).toMatchObject({ ok: true, stage: 'ready' });
    expect(body.upstreams['db-wrong-password']).toMatchObject({
      ok: false,
      stage: 'login',
      message: expect.stringContaining('password authentication failed for user "app"'),
    });
    expect(body.upstreams['db-wrong-password']!.message).toContain('SQLSTATE 28P01');
    expect(body.upstreams['shell-wrong-host-key']).toMatchObject({
      ok: false,
      stage: 'login',
      message: expect.stringContaining('not the pinned one'),
    });
    expect(body.upstreams['docker-no-daemon']).toMatchObject({ ok: false, stage: 'connect' });

    // Cached: asked again at once, the same measurement answers (probes are bounded, not per request).
    const again = (await (await fetch(`${gw.adminUrl}/readyz`)).json()) as typeof body;
    expect(again.upstreams['db']!.checkedAt).toBe(body.upstreams['db']!.checkedAt);
  }, 60_000);

  it('check-config --probe logs in to each upstream once and fails naming the broken ones', async () => {
    const file = join(dir, 'probe.yaml');
    writeFileSync(
      file,
      `store: { path: ${join(dir, 'store')} }\nsigningKey: ${join(dir, 'signing-key.json')}\n` +
        listenersYaml,
    );
    const probed = await runCli(['check-config', '--config', file, '--probe']);
    expect(probed.code).toBe(1);
    const lines = probed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^OK: /);
    expect(lines.slice(1).map((l) => l.replace(/ \[\d+ ms\]$/, ''))).toEqual([
      expect.stringMatching(/^ok {5}db \(postgres\): logged in as app to app on 127\.0\.0\.1:\d+$/),
      expect.stringMatching(
        /^FAILED db-wrong-password \(postgres\): login: .*password authentication failed for user "app".*28P01/,
      ),
      expect.stringMatching(/^ok {5}shell \(ssh\): logged in as /),
      expect.stringMatching(
        /^FAILED shell-wrong-host-key \(ssh\): login: the upstream host key is not the pinned one/,
      ),
      expect.stringMatching(/^ok {5}docker \(docker\): dockerd answers on /),
      expect.stringMatching(/^FAILED docker-no-daemon \(docker\): connect: /),
    ]);
    expect(probed.stderr).toContain('3 of 6 upstream(s) failed the probe');

    // Without --probe nothing is contacted: the file is valid.
    expect((await runCli(['check-config', '--config', file])).code).toBe(0);
  }, 60_000);
});
