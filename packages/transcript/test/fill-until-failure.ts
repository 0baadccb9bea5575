/**
 * Child process for the fail-mode tests: run under `ulimit -f` so LMDB's writes hit a real EFBIG/EIO (a full disk
 * as the process sees it), append until the store refuses, and print what happened as one JSON line.
 * Usage: node fill-until-failure.js <storeDir> <keyFile> <closed|open> [recover]
 * With `recover`, after the failure it prints `FAILED <pid>` and waits until the parent lifts the limit
 * (prlimit) and the store resumes, then records a little more and ends the session.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isAgentgateError } from '@agentgate/core';
import { loadOrCreateSigningKey } from '../src/signing-key.js';
import { openTranscriptStore } from '../src/transcript-store.js';
import { sessionInfo } from './test-store.js';

// Exceeding RLIMIT_FSIZE raises SIGXFSZ, which would kill the process; ignored, the write fails with EFBIG instead.
process.on('SIGXFSZ', () => {});

async function main(): Promise<void> {
  const [storePath, keyFile, failMode, recover] = process.argv.slice(2);
  if (!storePath || !keyFile || (failMode !== 'closed' && failMode !== 'open')) throw new Error('usage');
  const signer = await loadOrCreateSigningKey(keyFile);
  let writeErrors = 0;
  const writableChanges: boolean[] = [];
  const store = await openTranscriptStore({
    path: storePath,
    failMode,
    checkpointIntervalMs: 0,
    signer,
    recoveryProbeMs: recover ? 50 : 0,
    // failMode closed: the reserve is all the 1 MiB file size limit the tests set leaves
    reserveBytes: 1 << 20,
    hooks: { writeError: () => writeErrors++, writableChanged: (w) => writableChanges.push(w) },
  });
  const recorder = store.openSession(sessionInfo({ id: 'FILL' }));
  const filler = 'x'.repeat(1000);
  let appended = 0;
  let refusedCode: string | undefined;
  let lastReturnedSeq = -1;
  outer: for (let turn = 0; turn < 2000; turn++) {
    for (let i = 0; i < 20; i++) {
      try {
        lastReturnedSeq = recorder.append('result', { event: 'filler', filler, n: appended }).seq;
        appended++;
      } catch (err) {
        refusedCode = isAgentgateError(err) ? err.code : String(err);
        break outer;
      }
    }
    await nextTurn();
    if (failMode === 'open' && !store.writable && turn > 0 && appended > 0) {
      // keep appending a little while unwritable to prove nothing throws
      for (let i = 0; i < 10; i++) recorder.append('result', { event: 'filler', filler, n: appended++ });
      break;
    }
  }
  let openSessionCode: string | undefined;
  try {
    store.openSession(sessionInfo());
  } catch (err) {
    openSessionCode = isAgentgateError(err) ? err.code : String(err);
  }
  let resumedSeq: number | undefined;
  if (recover) {
    process.stdout.write(`FAILED ${process.pid}\n`);
    const deadline = Date.now() + 20_000;
    while (!store.writable && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    resumedSeq = recorder.append('result', { event: 'filler', after: 'recovery' }).seq;
    recorder.end({ cause: 'client-left', reason: 'done' });
    await store.flush();
  }
  const health = store.health;
  await store.close();
  process.stdout.write(
    JSON.stringify({
      appended,
      refusedCode,
      openSessionCode,
      lastReturnedSeq,
      resumedSeq,
      health,
      writeErrors,
      writableChanges,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ crash: String((err as Error).stack ?? err) }) + '\n');
  process.exitCode = 1;
});
