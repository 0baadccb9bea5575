import { describe, expect, it } from '@jest/globals';
import { noopMetrics, type Logger, type SessionRecorder } from '@agentgate/core';
import { RECORDED_BODY_CAP, type AnswerSink } from './answer-record.js';
import {
  HandlerChain,
  type HandlerContext,
  bodyHandlers,
  completeWholeBody,
  isTextual,
} from './response-handlers.js';
import { canonicalizeTarget, classifyRoute } from './routes.js';

function sink(): { sink: AnswerSink; events: [string, unknown][]; io: [string, string][] } {
  const events: [string, unknown][] = [];
  const io: [string, string][] = [];
  const recorder = {
    sessionId: 's',
    append: (type: string, body: unknown) => {
      events.push([type, body]);
      return {};
    },
    io: (direction: string, data: Buffer) => io.push([direction, data.toString()]),
  } as unknown as SessionRecorder;
  const log = { warn: () => undefined } as unknown as Logger;
  const detectors = { mask: (text: string) => text.replace(/hunter2/g, '****') };
  return { sink: { recorder, detectors: detectors as AnswerSink['detectors'], log }, events, io };
}

function contextFor(
  method: string,
  target: string,
  contentType: string,
  s: AnswerSink | undefined,
  bytes: number[],
): HandlerContext {
  const req = canonicalizeTarget(method, target);
  const route = classifyRoute(req);
  const metrics = { ...noopMetrics, bytes: (_l: string, _p: string, _d: string, n: number) => bytes.push(n) };
  return {
    route,
    status: 200,
    textual: isTextual([['Content-Type', contentType]]),
    decided: s ? { req, commandSeq: 3, action: route?.action ?? 'unknown' } : undefined,
    sink: s,
    metrics,
    listener: 'docker',
  };
}

function chainFor(method: string, target: string, contentType: string, s: AnswerSink, bytes: number[]) {
  return new HandlerChain(bodyHandlers(contextFor(method, target, contentType, s, bytes)));
}

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

describe('response body handlers', () => {
  it('record a plain answer capped and masked, with its full size, and count its bytes', () => {
    const s = sink();
    const bytes: number[] = [];
    const chain = chainFor('GET', '/containers/json', 'application/json', s.sink, bytes);
    chain.onData(Buffer.from('["hunter2"'));
    chain.onData(Buffer.alloc(RECORDED_BODY_CAP, 'x'));
    chain.onComplete();
    expect(bytes).toEqual([RECORDED_BODY_CAP + 10]);
    expect(s.events).toHaveLength(1);
    const [type, body] = s.events[0]!;
    expect(type).toBe('result');
    expect(body).toMatchObject({
      method: 'GET',
      path: '/containers/json',
      action: 'container.list',
      status: 200,
      commandSeq: 3,
      bodyBytes: RECORDED_BODY_CAP + 10,
      truncated: true,
    });
    const text = (body as { body: string }).body;
    expect(text.startsWith('["****"')).toBe(true);
    expect(text).toHaveLength(RECORDED_BODY_CAP - 10 + '["****"'.length);
  });

  it('record a log stream as io, dockerd’s framing taken apart, and its size in the result', () => {
    const s = sink();
    const bytes: number[] = [];
    const chain = chainFor(
      'GET',
      '/containers/abc/logs?stdout=1',
      'application/vnd.docker.multiplexed-stream',
      s.sink,
      bytes,
    );
    const out = frame(1, 'hello\n');
    const err = frame(2, 'oops\n');
    chain.onData(out);
    chain.onData(err);
    chain.onComplete();
    expect(s.io).toEqual([
      ['out', 'hello\n'],
      ['err', 'oops\n'],
    ]);
    expect(s.events).toEqual([
      ['result', expect.objectContaining({ action: 'container.logs', bodyBytes: out.length + err.length })],
    ]);
    expect(s.events[0]![1]).not.toHaveProperty('body');
  });

  it('count a tar answer without recording its bytes as io', () => {
    const s = sink();
    const bytes: number[] = [];
    const chain = chainFor('GET', '/containers/abc/export', 'application/x-tar', s.sink, bytes);
    chain.onData(Buffer.alloc(100));
    chain.onComplete();
    expect(s.io).toEqual([]);
    expect(s.events[0]![1]).toMatchObject({ action: 'container.export', bodyBytes: 100 });
    expect(s.events[0]![1]).not.toHaveProperty('body');
  });

  it('do with a body that came whole what the chain does with it as one piece', () => {
    const cases: [string, string, string, Buffer][] = [
      ['GET', '/containers/json', 'application/json', Buffer.from('[{"Id":"hunter2"}]')],
      ['GET', '/containers/json', 'application/json', Buffer.alloc(RECORDED_BODY_CAP + 5, 'y')],
      ['GET', '/containers/abc/logs?stdout=1', 'application/vnd.docker.multiplexed-stream', frame(1, 'hi\n')],
      ['GET', '/containers/abc/export', 'application/x-tar', Buffer.alloc(100)],
    ];
    for (const [method, target, contentType, body] of cases) {
      const viaChain = sink();
      const chainBytes: number[] = [];
      const chain = chainFor(method, target, contentType, viaChain.sink, chainBytes);
      chain.onData(body);
      chain.onComplete();
      const whole = sink();
      const wholeBytes: number[] = [];
      completeWholeBody(contextFor(method, target, contentType, whole.sink, wholeBytes), body);
      expect(whole.events).toEqual(viaChain.events);
      expect(whole.io).toEqual(viaChain.io);
      expect(wholeBytes).toEqual(chainBytes);
    }
    // An answer nothing decided (`/_ping`) is only counted.
    const counted: number[] = [];
    completeWholeBody(contextFor('GET', '/_ping', 'text/plain', undefined, counted), Buffer.from('OK'));
    expect(counted).toEqual([2]);
  });
});
