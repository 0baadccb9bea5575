/**
 * COPY through the postgres relay while the recorder says its stream bytes wait for commits
 * (SessionRecorder.ioBackpressure), with psql and a real PostgreSQL: the side sending COPY data stops being read,
 * the copy stalls, and once the recorder lets it go it completes with every row, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  runPsql,
  startPgGateway,
  startPostgres,
  type PgGateway,
  type TestPostgres,
} from './harness/postgres.js';
import { holdRecording, stalled } from './harness/io-hold.js';

let server: TestPostgres;
let gw: PgGateway;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server);
  await server.psql(['-d', 'app', '-U', 'app'], {
    input: 'CREATE TABLE copied (n int, pad text);',
    env: { PGPASSWORD: 'app-secret' },
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
});

const rows = 100_000;
/** ~21 MB of COPY text: well past the store's 4 MiB per-session bound. */
const copyText = Array.from({ length: rows }, (_, n) => `${n}\t${'x'.repeat(200)}\n`).join('');
const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** psql as `devin` through the gateway running `command`, stdout collected, stdin from `input`. */
function startPsql(command: string, input?: string) {
  const child = spawn(
    'psql',
    [
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      gw.host,
      '-p',
      String(gw.port),
      '-U',
      'devin',
      '-d',
      'app',
      '-c',
      command,
    ],
    { env: { ...process.env, PGPASSWORD: gw.token('devin'), PGSSLMODE: 'disable' }, stdio: 'pipe' },
  );
  const out: Buffer[] = [];
  let received = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    out.push(d);
    received += d.length;
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input ?? '');
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    received: () => received,
    stdout: () => Buffer.concat(out),
    stderr: () => stderr,
    exited,
    kill: () => child.kill(),
  };
}

/** Bytes of COPY data the gateway has recorded in `direction` so far. */
function recordedCopyBytes(direction: 'in' | 'out'): number {
  let bytes = 0;
  for (const e of gw.events) {
    if (e.type === 'io' && e['direction'] === direction && e['channel'] === 'copy')
      bytes += Buffer.byteLength(e['data'] as string, 'base64');
  }
  return bytes;
}

describe('postgres COPY under the recorder’s backpressure', () => {
  it('stops reading the server during COPY TO STDOUT, then delivers every row in order', async () => {
    const query = `COPY (SELECT n, repeat('x', 200) FROM generate_series(0, ${rows - 1}) n ORDER BY n) TO STDOUT`;
    const hold = holdRecording(gw.recording);
    const psql = startPsql(query);
    try {
      const at = await stalled(psql.received);
      expect(at).toBeLessThan(copyText.length / 2);
      expect(hold.asked()).toBeGreaterThan(0);
      hold.letGo();
      expect(await psql.exited).toBe(0);
      expect(sha256(psql.stdout())).toBe(sha256(copyText));
      expect(recordedCopyBytes('out')).toBe(copyText.length);
    } finally {
      psql.kill();
      gw.recording.ioBackpressure = undefined;
    }
  }, 60_000);

  it('stops reading the client during COPY FROM STDIN, then stores every row', async () => {
    const before = recordedCopyBytes('in');
    const hold = holdRecording(gw.recording);
    const psql = startPsql('COPY copied FROM STDIN', copyText);
    try {
      const at = await stalled(() => recordedCopyBytes('in') - before);
      expect(at).toBeLessThan(copyText.length / 2);
      expect(hold.asked()).toBeGreaterThan(0);
      hold.letGo();
      expect(await psql.exited).toBe(0);
      expect(psql.stderr()).toBe('');
      expect(recordedCopyBytes('in') - before).toBe(copyText.length);
      const stored = await runPsql(server.host, server.port, ['-U', 'app', '-d', 'app', '-qtA'], {
        input: 'COPY (SELECT n, pad FROM copied ORDER BY n) TO STDOUT;',
        env: { PGPASSWORD: 'app-secret' },
      });
      expect(sha256(stored)).toBe(sha256(copyText));
    } finally {
      psql.kill();
      gw.recording.ioBackpressure = undefined;
    }
  }, 60_000);
});
