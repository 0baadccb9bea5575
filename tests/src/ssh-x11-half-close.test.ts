/**
 * An X11 channel is a TCP connection carried over SSH: one side's EOF closes only its direction (RFC 4254 §5.3).
 * The upstream X client here sends its request, shuts its writing side and then reads the reply; the gateway must
 * pass that on as EOF alone, not close the agent's channel (a server-mode ssh2 channel's end() sends CLOSE too).
 * Real sshd with X11 forwarding (xauth), socat as the X client, ssh2 as the agent with its own "display".
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { startAgentSshFixture, type AgentSshFixture, type StandaloneSshGateway } from './harness/sshd.js';

let fixture: AgentSshFixture;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };

beforeAll(async () => {
  fixture = await startAgentSshFixture({
    x11: true,
    rules: [{ name: 'may-x11', protocol: 'ssh', match: { channels: ['x11'] }, action: 'allow' }],
  });
  ({ gw, agentKey } = fixture);
});

afterAll(async () => {
  await fixture?.stop();
});

describe('x11 forwarding through the gateway', () => {
  it('keeps a half-closed X11 connection open for the reply', async () => {
    const client = await new Promise<ssh2.Client>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('ready', () => resolve(c)).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'agent',
        privateKey: readFileSync(agentKey.path),
      });
    });
    try {
      // The agent's "X server": reads the request to its EOF, then answers and ends.
      const requests: string[] = [];
      client.on('x11', (_info, accept) => {
        const display = accept();
        let request = '';
        display.on('data', (d: Buffer) => (request += d.toString()));
        display.on('end', () => {
          requests.push(request);
          display.end(`reply to ${request}`);
        });
      });
      const command =
        'd=${DISPLAY#*:}; d=${d%.*}; printf request | socat -t 10 - TCP:localhost:$((6000 + d)); echo " done"';
      const output = await new Promise<string>((resolve, reject) => {
        client.exec(command, { x11: true }, (err, channel) => {
          if (err) return reject(err);
          let out = '';
          channel.on('data', (d: Buffer) => (out += d.toString()));
          channel.stderr.on('data', (d: Buffer) => (out += d.toString()));
          channel.on('close', () => resolve(out));
        });
      });
      expect(requests).toEqual(['request']);
      expect(output).toBe('reply to request done\n');
    } finally {
      client.end();
    }
  }, 30_000);
});
