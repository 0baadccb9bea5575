import { describe, expect, it } from '@jest/globals';
import { encodeErrorResponse, encodeParameterStatus, encodeReadyForQuery } from './codec/encode.js';
import { TransactionStatus } from './codec/message-types.js';
import { ResponseGroups, type ResponseSink, type ResultOutcome } from './response-groups.js';
import { passThroughFilter } from './result-filter.js';
import { ResultTracker } from './result-tracker.js';

function backend(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const commandComplete = (tag: string): Buffer => backend('C', Buffer.from(`${tag}\0`));
const probeError = (): Buffer => encodeErrorResponse('ERROR', '42601', 'syntax error at or near "agentgate"');
const idle = (): Buffer => encodeReadyForQuery(TransactionStatus.Idle);

function harness() {
  const written: Buffer[] = [];
  const finished: ResultOutcome[] = [];
  const ready: [number, number][] = [];
  const changed: [string, string][] = [];
  const sink: ResponseSink = {
    filter: passThroughFilter,
    writeClient: (buf) => void written.push(Buffer.from(buf)),
    finished: (_tracker, outcome) => void finished.push(outcome),
    copyOut: () => undefined,
    readyForQuery: (status, groupId) => void ready.push([status, groupId]),
    parameterChanged: (name, value) => void changed.push([name, value]),
  };
  return {
    groups: new ResponseGroups(sink),
    written,
    finished,
    ready,
    changed,
    out: () => Buffer.concat(written),
  };
}

const entry = (multiStatement = false) => ({ tracker: new ResultTracker(1, 5), multiStatement });

describe('response groups', () => {
  it('relays answers untouched in one write and records each command once', () => {
    const h = harness();
    h.groups.expect(entry(true));
    h.groups.close();
    const region = Buffer.concat([commandComplete('SELECT 1'), commandComplete('INSERT 0 1'), idle()]);
    h.groups.relay(region);
    expect(h.written).toHaveLength(1);
    expect(h.out()).toEqual(region);
    expect(h.finished).toEqual([{ commandTag: 'SELECT 1' }, { commandTag: 'INSERT 0 1' }]);
    expect(h.ready).toEqual([[TransactionStatus.Idle, 1]]);
    expect(h.groups.idle).toBe(true);
  });

  it("replaces the denial stand-in's error with the gateway's, after the answers to what came before", () => {
    const h = harness();
    const refusal = encodeErrorResponse('ERROR', '42501', 'agentgate: denied by rule no-drops');
    h.groups.expect(entry());
    h.groups.expectDenial(refusal);
    h.groups.close();
    expect(h.groups.pendingGroups).toBe(1);
    h.groups.relay(Buffer.concat([commandComplete('SELECT 1'), probeError(), idle()]));
    expect(h.out()).toEqual(Buffer.concat([commandComplete('SELECT 1'), refusal, idle()]));
    expect(h.finished).toEqual([{ commandTag: 'SELECT 1' }]);
    expect(h.groups.pendingGroups).toBe(0);
  });

  it("relays the client's own error as it is, and the refusal still reaches the client before ReadyForQuery", () => {
    const h = harness();
    const refusal = encodeErrorResponse('ERROR', '42501', 'agentgate: denied');
    const own = encodeErrorResponse('ERROR', '42P01', 'relation "nope" does not exist');
    h.groups.expectDenial(refusal);
    h.groups.close();
    h.groups.relay(Buffer.concat([own, idle()]));
    // The upstream already failed the group: the server skipped the stand-in, so no second error.
    expect(h.out()).toEqual(Buffer.concat([own, idle()]));
    const g = harness();
    g.groups.expectDenial(refusal);
    g.groups.close();
    g.groups.relay(idle());
    expect(g.out()).toEqual(Buffer.concat([refusal, idle()]));
  });

  it('reports ParameterStatus changes', () => {
    const h = harness();
    h.groups.relay(encodeParameterStatus('client_encoding', 'LATIN1'));
    expect(h.changed).toEqual([['client_encoding', 'LATIN1']]);
  });
});
