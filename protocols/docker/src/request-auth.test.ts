import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import {
  AgentgateError,
  noopMetrics,
  matchesPrincipal,
  type AuthFailureReason,
  type DockerListenerConfig,
  type Identity,
  type Logger,
  ReplaceableListenerAccess,
} from '@agentgate/core';
import type { Header } from './http-codec.js';
import { replyJson } from './replies.js';
import { type AuthDeps, RequestAuthenticator } from './request-auth.js';

const listener: DockerListenerConfig = {
  name: 'docker',
  protocol: 'docker',
  listen: '127.0.0.1:0',
  allow: ['group:agents'],
  upstream: { socket: '/x' },
  socketMode: 0o660,
  maxBodyBytes: 1 << 20,
  unknownPrograms: 'match-all',
  headersTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  sessionLingerMs: 2_000,
};

const TOKENS: Record<string, Identity | AgentgateError> = {
  good: { name: 'devin', groups: ['agents'], source: 'token' },
  outsider: { name: 'eve', groups: ['others'], source: 'token' },
  old: new AgentgateError('AUTH_FAILED', 'agentgate: token expired', { detail: { reason: 'expired' } }),
  forged: new AgentgateError('AUTH_FAILED', 'agentgate: bad signature', {
    detail: { reason: 'bad-signature' },
  }),
};

function deps(): {
  deps: AuthDeps;
  failures: AuthFailureReason[];
  lines: Record<string, unknown>[];
  verified: string[];
} {
  const failures: AuthFailureReason[] = [];
  const lines: Record<string, unknown>[] = [];
  const verified: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: (msg, fields) => lines.push({ msg, ...fields }),
    warn: () => undefined,
    error: () => undefined,
    child: () => log,
  };
  return {
    failures,
    lines,
    verified,
    deps: {
      log,
      metrics: { ...noopMetrics, authFailed: (_l, _p, reason) => failures.push(reason) },
      identity: {
        verifyToken: async (token) => {
          verified.push(token);
          const known = TOKENS[token];
          if (known === undefined) throw new AgentgateError('AUTH_FAILED', 'agentgate: unknown token');
          if (known instanceof AgentgateError) throw known;
          return known;
        },
        findSshKey: () => undefined,
        isAllowed: matchesPrincipal,
      },
      access: new ReplaceableListenerAccess(listener.allow),
    },
  };
}

const bearer = (token: string): Header[] => [['Authorization', `Bearer ${token}`]];
const tcp = { address: '10.0.0.7', port: 40000, local: false, tls: false };

describe('RequestAuthenticator', () => {
  it('verifies a token once per connection and header, then answers synchronously', async () => {
    const d = deps();
    const auth = new RequestAuthenticator(listener, tcp, d.deps);
    const first = auth.authenticate(bearer('good'));
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ name: 'devin' });
    expect(auth.authenticate(bearer('good'))).toMatchObject({ name: 'devin' });
    expect(d.verified).toEqual(['good']);
    expect(d.failures).toEqual([]);
  });

  it('takes the same head again as verified, and verifies a changed header on the same connection', async () => {
    const d = deps();
    const auth = new RequestAuthenticator(listener, tcp, d.deps);
    // A repeated head is the same parsed header list.
    const repeated = bearer('good');
    expect(await auth.authenticate(repeated)).toMatchObject({ name: 'devin' });
    expect(auth.authenticate(repeated)).toMatchObject({ name: 'devin' });
    await expect(Promise.resolve().then(() => auth.authenticate(bearer('outsider')))).rejects.toMatchObject({
      message: 'agentgate: eve may not use listener docker',
    });
    await expect(Promise.resolve().then(() => auth.authenticate(bearer('forged')))).rejects.toMatchObject({
      message: 'agentgate: authentication failed: bad signature',
    });
    // The connection's verified token is now another one: the first head's token is verified again.
    expect(await auth.authenticate(repeated)).toMatchObject({ name: 'devin' });
    expect(d.verified).toEqual(['good', 'outsider', 'forged', 'good']);
    expect(d.failures).toEqual(['not-allowed', 'bad-token']);
  });

  it('admits a kept-alive connection again only under the allow list in force (a reload replaced it)', async () => {
    const d = deps();
    const auth = new RequestAuthenticator(listener, tcp, d.deps);
    const head = bearer('good');
    expect(await auth.authenticate(head)).toMatchObject({ name: 'devin' });
    (d.deps.access as ReplaceableListenerAccess).replace(['group:others']);
    expect(() => auth.authenticate(head)).toThrow('agentgate: devin may not use listener docker');
    (d.deps.access as ReplaceableListenerAccess).replace(['group:agents']);
    expect(auth.authenticate(head)).toMatchObject({ name: 'devin' });
    expect(d.verified).toEqual(['good']);
    expect(d.failures).toEqual(['not-allowed']);
  });

  it.each([
    ['no header', [] as Header[], 'no-credential', 'agentgate: a Bearer token is required'],
    [
      'Basic credentials',
      [['Authorization', 'Basic eDp5']] as Header[],
      'no-credential',
      'agentgate: a Bearer token is required',
    ],
    [
      'two headers',
      [...bearer('good'), ...bearer('good')],
      'no-credential',
      'agentgate: a Bearer token is required',
    ],
    ['an unknown token', bearer('nope'), 'bad-token', 'agentgate: authentication failed: unknown token'],
    ['an expired token', bearer('old'), 'expired', 'agentgate: authentication failed: token expired'],
    ['a forged token', bearer('forged'), 'bad-token', 'agentgate: authentication failed: bad signature'],
    [
      'an identity outside allow',
      bearer('outsider'),
      'not-allowed',
      'agentgate: eve may not use listener docker',
    ],
  ] as const)('refuses %s, logging and counting the reason', async (_what, headers, reason, message) => {
    const d = deps();
    const auth = new RequestAuthenticator(listener, tcp, d.deps);
    await expect(Promise.resolve().then(() => auth.authenticate(headers))).rejects.toMatchObject({ message });
    expect(d.failures).toEqual([reason]);
    expect(d.lines).toEqual([
      expect.objectContaining({
        msg: 'docker authentication failed',
        source: '10.0.0.7',
        sourcePort: 40000,
        reason,
      }),
    ]);
    // The credential itself is never logged.
    for (const [, value] of headers) expect(JSON.stringify(d.lines)).not.toContain(value.split(' ')[1]);
  });

  it('gives a unix listener’s connections its fixed identity without a token', () => {
    const d = deps();
    const unix = { ...listener, listen: 'unix:/x.sock', identity: 'ci-runner', identityGroups: ['agents'] };
    const auth = new RequestAuthenticator(unix, { address: 'unix', local: true, tls: false }, d.deps);
    expect(auth.authenticate([])).toMatchObject({ name: 'ci-runner', source: 'socket' });
  });
});

describe('replies', () => {
  async function written(headRequest: boolean): Promise<string> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await replyJson(out, 502, 'agentgate: upstream unavailable', { close: true, headRequest });
    return Buffer.concat(chunks).toString();
  }

  it('answers a HEAD request with the headers of the JSON body but no body', async () => {
    const head = await written(true);
    const get = await written(false);
    const length = Buffer.byteLength('{"message":"agentgate: upstream unavailable"}\n');
    expect(head).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(head).toContain(`Content-Length: ${length}\r\n`);
    expect(head.endsWith('\r\n\r\n')).toBe(true);
    expect(get).toBe(head + '{"message":"agentgate: upstream unavailable"}\n');
  });
});
