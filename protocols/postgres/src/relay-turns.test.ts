import { describe, expect, it } from '@jest/globals';
import type { GatedSession, Verdict } from '@agentgate/core';
import type { SessionAnalysis } from './analysis.js';
import type { ClientRelay } from './client-relay.js';
import { FrontendMessage } from './codec/message-types.js';
import type { EngineShared } from './engine-shared.js';
import { Relay, type RelayContext } from './relay.js';
import { passThroughFilter } from './result-filter.js';
import type { SessionMasking } from './session-masking.js';

/** A Query message as the client frames it: type, length, the text and its NUL. */
function query(text: string): Buffer {
  const body = Buffer.from(text + '\0');
  const msg = Buffer.alloc(5 + body.length);
  msg[0] = FrontendMessage.Query;
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}

/** A frontend message: its type, length and `body`. */
function message(type: number, body: Buffer): Buffer {
  const msg = Buffer.alloc(5 + body.length);
  msg[0] = type;
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}

/** Parse of `text` as the unnamed statement, Bind of it to the unnamed portal, Execute of that portal. */
function extended(text: string): { parse: Buffer; bind: Buffer; execute: Buffer } {
  return {
    parse: message(FrontendMessage.Parse, Buffer.concat([Buffer.from('\0' + text + '\0'), Buffer.alloc(2)])),
    bind: message(FrontendMessage.Bind, Buffer.concat([Buffer.from('\0\0'), Buffer.alloc(6)])),
    execute: message(FrontendMessage.Execute, Buffer.concat([Buffer.from('\0'), Buffer.alloc(4)])),
  };
}

/** A relay whose gate answers with `verdict` (a plain value, or a promise of it) and whose upstream writes are kept. */
function relayWith(
  verdict: () => Verdict | Promise<Verdict>,
  client = { closed: false },
): { relay: Relay; upstream: Buffer[]; recorded: [string, unknown][] } {
  const upstream: Buffer[] = [];
  const recorded: [string, unknown][] = [];
  const analysis: SessionAnalysis = {
    analyze: () => ({ statements: [] }),
    transactionEnded: () => undefined,
    close: () => undefined,
  };
  const session = {
    decideNow: verdict,
    decide: async () => verdict(),
    recorder: { append: () => undefined },
    record: (type: string, body: unknown) => recorded.push([type, body]),
  } as unknown as GatedSession;
  const ctx = {
    shared: {
      listener: { name: 'db', dynamicSql: 'deny', recordRows: 10, upstream: { host: '127.0.0.1', port: 1 } },
      deps: { metrics: {} },
    } as unknown as EngineShared,
    io: { writeUpstream: (buf: Buffer) => upstream.push(buf) } as unknown as ClientRelay,
    session,
    analysis,
    masking: { filter: passThroughFilter, changed: false } as unknown as SessionMasking,
    upstream: {} as RelayContext['upstream'],
    login: { database: 'app', user: 'agent' } as RelayContext['login'],
    fatal: () => undefined,
    close: () => undefined,
    connection: { isClosed: () => client.closed },
  } satisfies RelayContext;
  return { relay: new Relay(ctx), upstream, recorded };
}

describe('the relay deciding a statement', () => {
  it('forwards a Query in the turn it came in when nothing is waited for (no promise, no microtask)', () => {
    const { relay, upstream } = relayWith(() => ({ allowed: true, commandSeq: 1 }));
    const msg = query('SELECT 1');
    expect(relay.message(FrontendMessage.Query, msg)).toBeUndefined();
    expect(upstream).toEqual([msg]);
  });

  it('forwards an Execute in the turn it came in when nothing is waited for', () => {
    const { relay, upstream } = relayWith(() => ({ allowed: true, commandSeq: 1 }));
    const { parse, bind, execute } = extended('SELECT $1');
    relay.message(FrontendMessage.Parse, parse);
    relay.message(FrontendMessage.Bind, bind);
    expect(relay.message(FrontendMessage.Execute, execute)).toBeUndefined();
    expect(upstream).toEqual([parse, bind, execute]);
  });

  it('forwards it once the verdict settles when the gate has to wait (a commit, an approval)', async () => {
    let settle!: (v: Verdict) => void;
    const { relay, upstream } = relayWith(() => new Promise<Verdict>((resolve) => (settle = resolve)));
    const msg = query('SELECT 1');
    const pending = relay.message(FrontendMessage.Query, msg);
    expect(pending).toBeInstanceOf(Promise);
    await new Promise((resolve) => setImmediate(resolve));
    expect(upstream).toEqual([]);
    settle({ allowed: true, commandSeq: 1 });
    await pending;
    expect(upstream).toEqual([msg]);
  });

  it('does not forward a statement allowed after its client left, and records that it did not run', async () => {
    let settle!: (v: Verdict) => void;
    const client = { closed: false };
    const { relay, upstream, recorded } = relayWith(
      () => new Promise<Verdict>((resolve) => (settle = resolve)),
      client,
    );
    const pending = relay.message(FrontendMessage.Query, query('DELETE FROM t'));
    client.closed = true;
    settle({ allowed: true, commandSeq: 7 });
    await pending;
    expect(upstream).toEqual([]);
    expect(recorded).toEqual([
      [
        'result',
        { commandSeq: 7, error: { code: '08006', message: expect.stringContaining('did not run') } },
      ],
    ]);
  });
});
