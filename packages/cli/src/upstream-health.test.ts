import { describe, expect, it } from '@jest/globals';
import type { ListenerConfig, Logger, UpstreamProbeResult } from '@agentgate/core';
import { UpstreamHealth } from './upstream-health.js';

const listeners = [{ name: 'db', protocol: 'postgres' }] as unknown as ListenerConfig[];

function recordingLog(lines: string[]): Logger {
  const log: Logger = {
    debug: () => undefined,
    info: (msg) => lines.push(`info ${msg}`),
    warn: (msg, fields) => lines.push(`warn ${msg} ${String(fields?.['message'])}`),
    error: (msg) => lines.push(`error ${msg}`),
    child: () => log,
  };
  return log;
}

describe('UpstreamHealth', () => {
  it('probes at most once per max age, answers stale results at once while refreshing, and logs changes', async () => {
    let calls = 0;
    let next: UpstreamProbeResult = { ok: true, stage: 'ready', message: 'logged in', latencyMs: 1 };
    const lines: string[] = [];
    const health = new UpstreamHealth(listeners, recordingLog(lines), 50, async () => {
      calls++;
      return next;
    });

    // The first call waits for a round; concurrent callers share it.
    const [a, b] = await Promise.all([health.current(), health.current()]);
    expect(calls).toBe(1);
    expect(a['db']).toMatchObject({ ok: true });
    expect(b).toBe(a);
    expect(await health.current()).toBe(a); // fresh: no probe
    expect(calls).toBe(1);

    next = { ok: false, stage: 'login', message: 'password authentication failed', latencyMs: 1 };
    await new Promise((r) => setTimeout(r, 60));
    // Stale: answered with the last result at once, a new round started behind it.
    expect((await health.current())['db']).toMatchObject({ ok: true });
    expect(calls).toBe(2);
    await new Promise((r) => setTimeout(r, 5));
    expect((await health.current())['db']).toMatchObject({ ok: false, stage: 'login' });
    expect(lines).toEqual(['warn upstream probe failed password authentication failed']);
  });
});
