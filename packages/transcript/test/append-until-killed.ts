/**
 * Child process for the commit feed's crash test: appends to many sessions as fast as commits allow, printing
 * `READY` once some commits are on disk, until the parent kills it with SIGKILL.
 * Usage: node append-until-killed.js <storeDir> <keyFile>
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadOrCreateSigningKey } from '../src/signing-key.js';
import { openTranscriptStore } from '../src/transcript-store.js';
import { CLIENT_LEFT_END, commandBody, sessionInfo } from './test-store.js';

async function main(): Promise<void> {
  const [storePath, keyFile] = process.argv.slice(2);
  if (!storePath || !keyFile) throw new Error('usage');
  const signer = await loadOrCreateSigningKey(keyFile);
  const store = await openTranscriptStore({
    path: storePath,
    failMode: 'closed',
    checkpointIntervalMs: 5,
    signer,
  });
  let ready = false;
  store.feed.onCommit((position) => {
    if (position >= 20 && !ready) {
      ready = true;
      process.stdout.write('READY\n');
    }
  });
  const recorders = Array.from({ length: 8 }, () => store.openSession(sessionInfo()));
  for (let turn = 0; ; turn++) {
    for (const [i, recorder] of recorders.entries()) {
      recorder.append('command', commandBody(`SELECT ${turn}`, 'allow'));
      recorder.io('out', Buffer.from(`row ${turn}\n`));
      if (turn % 50 === i) {
        recorder.end(CLIENT_LEFT_END);
        recorders[i] = store.openSession(sessionInfo());
      }
    }
    await nextTurn();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
