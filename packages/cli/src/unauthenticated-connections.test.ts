import { describe, expect, it } from '@jest/globals';
import type { Logger } from '@agentgate/core';
import { UnauthenticatedConnections } from './unauthenticated-connections.js';

function recordingLog(): { log: Logger; lines: { msg: string; fields: Record<string, unknown> }[] } {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const put = (msg: string, fields?: Record<string, unknown>): void => {
    lines.push({ msg, fields: fields ?? {} });
  };
  const log: Logger = {
    debug: () => undefined,
    info: put,
    warn: put,
    error: put,
    child: () => log,
  };
  return { log, lines };
}

describe('UnauthenticatedConnections', () => {
  it('caps connections per source, and frees a slot when one authenticates or closes', () => {
    const { log } = recordingLog();
    const caps = new UnauthenticatedConnections({ maxConnections: 10, maxPerSource: 2 }, log);
    const a = caps.admit('10.0.0.1');
    const b = caps.admit('10.0.0.1');
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    expect(caps.admit('10.0.0.1')).toBeNull();
    // Another source has slots of its own.
    expect(caps.admit('10.0.0.2')).not.toBeNull();
    a?.authenticated();
    const c = caps.admit('10.0.0.1');
    expect(c).not.toBeNull();
    expect(caps.admit('10.0.0.1')).toBeNull();
    b?.closed();
    expect(caps.admit('10.0.0.1')).not.toBeNull();
    caps.close();
  });

  it('caps the listener in total, counting each connection once however it leaves', () => {
    const { log } = recordingLog();
    const caps = new UnauthenticatedConnections({ maxConnections: 2, maxPerSource: 2 }, log);
    const a = caps.admit('10.0.0.1');
    expect(caps.admit('10.0.0.2')).not.toBeNull();
    expect(caps.admit('10.0.0.3')).toBeNull();
    // Authenticated, then closed: released once, not twice.
    a?.authenticated();
    a?.closed();
    a?.authenticated();
    expect(caps.admit('10.0.0.3')).not.toBeNull();
    expect(caps.admit('10.0.0.4')).toBeNull();
    caps.close();
  });

  it('logs the first refusal at once and the rest as a count, not one line each', () => {
    const { log, lines } = recordingLog();
    const caps = new UnauthenticatedConnections({ maxConnections: 1, maxPerSource: 1 }, log);
    caps.admit('10.0.0.1');
    for (let i = 0; i < 50; i++) expect(caps.admit('10.0.0.1')).toBeNull();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: 'connection refused: too many unauthenticated connections',
      fields: { source: '10.0.0.1', cap: 'listener', maxConnections: 1, maxPerSource: 1 },
    });
    caps.close();
  });
});
