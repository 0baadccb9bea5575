import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseConfig } from '@agentgate/config';
import { newId } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';
import { storeWriteOptions } from './store-write-options.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-store-options-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether an event appended after the session's first commit is on disk `afterMs` later, with this store section. */
async function committedAfter(storeSection: string, afterMs: number): Promise<boolean> {
  const path = join(dir, newId());
  const config = parseConfig(
    `store: { path: ${path}, ${storeSection} }\nsigningKey: ${join(dir, 'key.json')}\n`,
    join(dir, 'agentgate.yaml'),
    {},
  );
  const store = await openTranscriptStore({
    ...storeWriteOptions(config.store),
    signer: await loadOrCreateSigningKey(config.signingKey),
  });
  try {
    const session = store.openSession({
      id: newId(),
      listener: 'db',
      protocol: 'postgres',
      identity: { name: 'agent', groups: [], source: 'oidc' },
      client: { address: '127.0.0.1', port: 40000, local: true, tls: false },
      startedAt: Date.now(),
    });
    await store.flush(); // session.start on disk: the next commit waits for the window
    session.append('notice', { event: 'test', text: 'appended after the first commit' });
    await sleep(afterMs);
    return [...store.events(session.sessionId)].some((e) => e.type === 'notice');
  } finally {
    await store.close();
  }
}

describe('store.commitWindow reaches the store', () => {
  it('holds a commit nothing waits for until the configured window has passed', async () => {
    expect(await committedAfter('commitWindow: 1s', 300)).toBe(false);
    expect(await committedAfter('failMode: closed', 300)).toBe(true);
  });
});
