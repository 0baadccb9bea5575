import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open } from 'lmdb';
import { isAgentgateError } from '@agentgate/core';
import { exportJsonl } from './exporters.js';
import { openStoreForReading } from './read-only-store.js';
import { loadOrCreateSigningKey } from './signing-key.js';
import {
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';
import type { TranscriptStore } from './transcript-store.js';
import { VerificationKeys } from './verification-keys.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

/** Record an ended session of `n` commands, with some io; returns its id. */
function recordSession(store: TranscriptStore, n = 2): string {
  const info = sessionInfo();
  const recorder = store.openSession(info);
  for (let i = 0; i < n; i++) recorder.append('command', commandBody(`SELECT ${i}`));
  recorder.io('out', Buffer.from('some output\n'));
  recorder.end(CLIENT_LEFT_END);
  return info.id;
}

async function backup(dir: string): Promise<void> {
  const reading = await openStoreForReading(temp.storePath);
  try {
    await reading.backup(dir);
  } finally {
    await reading.close();
  }
}

describe('prune', () => {
  it('removes ended sessions a backup holds, records it signed, and the store still verifies', async () => {
    let store = await temp.open();
    const old = [recordSession(store), recordSession(store, 5)];
    await store.close();
    const backupDir = join(temp.dir, 'backups', 'one');
    await backup(backupDir);

    store = await temp.open();
    const open = store.openSession(sessionInfo());
    open.append('command', commandBody('SELECT still open'));
    const after = recordSession(store); // ended, but after the backup: not covered
    await store.flush();

    const dry = await store.prune({
      before: Date.now() + 1000,
      coveredBy: [backupDir],
      by: 'test',
      dryRun: true,
    });
    expect(dry.pruned.map((p) => p.session).sort()).toEqual([...old].sort());
    expect(dry.records).toBe(0);
    expect(store.getSession(old[0]!)).toBeDefined();

    const outcome = await store.prune({ before: Date.now() + 1000, coveredBy: [backupDir], by: 'test' });
    expect(outcome.pruned.map((p) => p.session).sort()).toEqual([...old].sort());
    expect(outcome.notCovered).toEqual([after]);
    expect(outcome.records).toBe(1);
    expect(outcome.evidence[old[0]!]).toBe(backupDir);
    for (const id of old) {
      expect(store.getSession(id)).toBeUndefined();
      expect([...store.events(id)]).toEqual([]);
      expect([...store.checkpoints(id)]).toEqual([]);
    }
    expect(store.getSession(after)).toBeDefined();
    open.end(CLIENT_LEFT_END);
    const report = await store.verify();
    expect(report.problems).toEqual([]);
    expect(report.pruned.sessions).toBe(2);
    expect(report.pruned.prunes).toEqual([
      expect.objectContaining({ by: 'test', kids: [temp.signer.kid], coveredBy: [backupDir] }),
    ]);
    await store.close();

    // Read-only, with the public keys only: the same.
    const keys = new VerificationKeys(() => 'unknown');
    keys.addJwks(temp.signer.publicJwks(), 'jwks');
    const reading = await openStoreForReading(temp.storePath);
    const readOnlyReport = await reading.verify((jws) => keys.verifyCompact(jws));
    await reading.close();
    expect(readOnlyReport).toMatchObject({ ok: true, sessions: 2, pruned: { sessions: 2 } });
  });

  it('keeps sessions the evidence does not hold intact, and takes JSONL exports as evidence', async () => {
    let store = await temp.open();
    const [a, b] = [recordSession(store), recordSession(store)];
    await store.flush();
    const exportsDir = join(temp.dir, 'exports');
    await mkdir(exportsDir);
    await writeFile(join(exportsDir, `${a}.jsonl`), [...exportJsonl(store.events(a))].join(''));
    // b's export is cut short: it does not reach the session's end.
    const partial = [...exportJsonl(store.events(b))];
    await writeFile(join(exportsDir, `${b}.jsonl`), partial.slice(0, -1).join(''));
    const outcome = await store.prune({ before: Date.now() + 1000, coveredBy: [exportsDir], by: 'test' });
    expect(outcome.pruned.map((p) => p.session)).toEqual([a]);
    expect(outcome.notCovered).toEqual([b]);
    await store.close();

    // A backup whose copy of a session was altered does not hold it.
    store = await temp.open();
    const c = recordSession(store);
    await store.close();
    const backupDir = join(temp.dir, 'altered');
    await backup(backupDir);
    const env = open<string, string>({ path: backupDir, encoding: 'string', compression: false });
    const events = env.openDB<string, string>('events', { encoding: 'string', compression: false });
    const key = `${c}/${String(1).padStart(12, '0')}`;
    await events.put(key, events.get(key)!.replace('SELECT 0', 'SELECT 1'));
    await env.close();
    store = await temp.open();
    const second = await store.prune({ before: Date.now() + 1000, coveredBy: [backupDir], by: 'test' });
    // b is intact in this backup; c's copy there was altered.
    expect(second.pruned.map((p) => p.session)).toEqual([b]);
    expect(second.notCovered).toEqual([c]);
    await expect(
      store.prune({ before: Date.now(), coveredBy: [temp.storePath], by: 'test' }),
    ).rejects.toThrow(/is the store itself/);
    await expect(
      store.prune({ before: Date.now(), coveredBy: [join(temp.dir, 'none')], by: 'test' }),
    ).rejects.toThrow(/ENOENT/);
    await store.close();
  });

  it('verify reports a prune record signed by another key and a pruned session that is back', async () => {
    let store = await temp.open();
    const id = recordSession(store);
    await store.close();
    const backupDir = join(temp.dir, 'b');
    await backup(backupDir);
    store = await temp.open();
    await store.prune({ before: Date.now() + 1000, coveredBy: [backupDir], by: 'test' });
    await store.close();

    // Put the session's index record back, as if the deletion had been undone by hand.
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', compression: false });
    const sessions = env.openDB<string, string>('sessions', { encoding: 'string', compression: false });
    await sessions.put(id, JSON.stringify({ id }));
    await env.close();
    const reading = await openStoreForReading(temp.storePath);
    const own = new VerificationKeys(() => 'unknown');
    own.addJwks(temp.signer.publicJwks(), 'jwks');
    const back = await reading.verify((jws) => own.verifyCompact(jws));
    expect(back.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          session: id,
          kind: 'inserted',
          detail: 'a prune record lists this session as removed, but records of it are in the store',
        }),
      ]),
    );

    // With keys that did not sign it, the record proves nothing, and the report names the key that did.
    const other = await loadOrCreateSigningKey(join(temp.dir, 'other-key.json'));
    const keys = new VerificationKeys((kid) => `which is not among the keys given (${kid})`);
    keys.addJwks(other.publicJwks(), 'jwks');
    const report = await reading.verify((jws) => keys.verifyCompact(jws));
    await reading.close();
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: 'unknown-key', detail: expect.stringContaining(temp.signer.kid) }),
    );
    expect(report.pruned.sessions).toBe(0);
  });

  it('refuses to prune a store that cannot write', async () => {
    const store = await temp.open();
    recordSession(store);
    await store.close();
    const backupDir = join(temp.dir, 'b');
    await backup(backupDir);
    const readOnly = await temp.open({ readOnly: true });
    const error = await readOnly
      .prune({ before: Date.now() + 1000, coveredBy: [backupDir], by: 'test' })
      .catch((err: unknown) => err);
    expect(isAgentgateError(error) && error.code).toBe('RECORDING_FAILED');
    await readOnly.close();
  });
});
