/** Helpers for this package's tests: a temp store, a signer, session infos. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  newId,
  type CommandDecision,
  type DecisionEventBody,
  type EventBody,
  type SessionEndBody,
  type SessionInfo,
  type SessionRecorder,
  type Signer,
  type TranscriptEvent,
} from '@agentgate/core';
import { loadOrCreateSigningKey } from '../src/signing-key.js';
import {
  openTranscriptStore,
  type TranscriptStore,
  type TranscriptStoreOptions,
} from '../src/transcript-store.js';

export interface TempStore {
  dir: string;
  storePath: string;
  signer: Signer;
  open(overrides?: Partial<TranscriptStoreOptions>): Promise<TranscriptStore>;
  cleanup(): Promise<void>;
}

export async function makeTempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-transcript-'));
  const storePath = join(dir, 'store');
  const signer = await loadOrCreateSigningKey(join(dir, 'keys', 'signing-key.json'));
  return {
    dir,
    storePath,
    signer,
    open: (overrides = {}) =>
      openTranscriptStore({
        path: storePath,
        failMode: 'closed',
        checkpointIntervalMs: 0,
        signer,
        reserveBytes: 16 << 20,
        ...overrides,
      }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export function sessionInfo(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: newId(),
    listener: 'prod-db',
    protocol: 'postgres',
    identity: { name: 'devin', groups: ['agents'], source: 'oidc', issuer: 'http://127.0.0.1/' },
    client: { address: '127.0.0.1', port: 50123, local: true, tls: false },
    startedAt: Date.now(),
    ...overrides,
  };
}

/** A `command` event body: an SSH exec of `text`, decided `action` when given (as the gate records it). */
export function commandBody(text: string, action?: CommandDecision['action']): EventBody['command'] {
  const body = { protocol: 'ssh', kind: 'exec', text, simpleCommands: [] } as const;
  return action === undefined ? body : { ...body, decision: { action } };
}

/**
 * Appends a decision as an event of its own, as stores written before the decision was folded into its `command`
 * hold it. The recorder's typed API no longer offers the kind, the store still stores it as given.
 */
export function appendLegacyDecision(recorder: SessionRecorder, body: DecisionEventBody): TranscriptEvent {
  const untyped = recorder as unknown as {
    append(type: 'decision', body: DecisionEventBody): TranscriptEvent;
  };
  return untyped.append('decision', body);
}

/** How the tests' sessions end. */
export const CLIENT_LEFT_END: SessionEndBody = { cause: 'client-left', reason: 'the client left' };

/** An `approval.requested` event body for approval `approvalId`. */
export function approvalRequested(approvalId: string): EventBody['approval.requested'] {
  const requestedAt = Date.now();
  return {
    approvalId,
    rule: 'deletes-need-review',
    command: 'DELETE FROM users',
    approvers: ['group:dba'],
    requestedAt,
    expiresAt: requestedAt + 60_000,
  };
}
