import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError, loadStoreLocation, parseConfig } from './index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-store-section-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('store.retention', () => {
  it('reads keep, coveredBy and interval (default 1h), paths against the file', () => {
    const config = parseConfig(
      'store: { path: ./t, retention: { keep: 90d, coveredBy: ./backups } }\nsigningKey: ./k.json\n',
      join(dir, 'a.yaml'),
      {},
    );
    expect(config.store.retention).toEqual({
      keepMs: 90 * 86_400_000,
      coveredBy: join(dir, 'backups'),
      intervalMs: 3_600_000,
    });
  });

  it('names what is missing or wrong', () => {
    const issues = (retention: string): string[] => {
      try {
        parseConfig(
          `store: { path: ./t, retention: ${retention} }\nsigningKey: ./k.json\n`,
          join(dir, 'b.yaml'),
          {},
        );
      } catch (err) {
        return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
      }
      return [];
    };
    expect(issues('{ coveredBy: ./b }')).toEqual([
      'store.retention.keep: expected a duration such as 90d, found nothing',
    ]);
    expect(issues('{ keep: 30d }')).toEqual([
      'store.retention.coveredBy: expected the directory your backups (agentgate backup) or exports are written to, found nothing',
    ]);
    expect(issues('{ keep: 30d, coveredBy: ./b, interval: 10ms }')).toEqual([
      'store.retention.interval: expected a duration of at least 1s, found "10ms"',
    ]);
    expect(issues('{ keep: 30d, coverdBy: ./b }')).toContain(
      'store.retention.coverdBy: expected one of the keys keep, coveredBy, interval, found unknown key "coverdBy" (did you mean "coveredBy"?)',
    );
  });
});

describe('loadStoreLocation', () => {
  it('reads store and signingKey only: unset variables and missing files elsewhere do not matter', async () => {
    const file = write(
      'auditor.yaml',
      `store: { path: ./transcripts }
signingKey: ./signing-key.json
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:5432
    allow: [group:agents]
    upstream: { host: db, user: app, password: "\${env:AGENTGATE_TEST_UNSET_PASSWORD}" }
    tls: { cert: ./no-such-cert.pem, key: ./no-such-key.pem }
rules: [{ name: broken, match: {}, action: nope }]
`,
    );
    const location = await loadStoreLocation(file, {});
    expect(location).toEqual({
      file,
      store: { path: join(dir, 'transcripts'), failMode: 'closed', checkpointIntervalMs: 60_000 },
      signingKey: join(dir, 'signing-key.json'),
    });
  });

  it('still reports problems in the store section itself', async () => {
    const file = write('bad.yaml', 'store: { path: "${env:AGENTGATE_TEST_UNSET_STORE}" }\n');
    await expect(loadStoreLocation(file, {})).rejects.toThrow(
      /store\.path: expected environment variable AGENTGATE_TEST_UNSET_STORE to be set/,
    );
    await expect(loadStoreLocation(write('none.yaml', 'signingKey: ./k.json\n'), {})).rejects.toThrow(
      /store: expected the store section, found nothing/,
    );
  });
});

describe('store.commitWindow', () => {
  const parse = (store: string) =>
    parseConfig(`store: ${store}\nsigningKey: ./k.json\n`, join(dir, 'c.yaml'), {}).store;
  const issues = (store: string): string[] => {
    try {
      parse(store);
    } catch (err) {
      return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    }
    return [];
  };

  it('is absent unless set (the store keeps its default), and read as a duration', () => {
    expect(parse('{ path: ./t }').commitWindowMs).toBeUndefined();
    expect(parse('{ path: ./t, commitWindow: 25ms }').commitWindowMs).toBe(25);
    expect(parse('{ path: ./t, commitWindow: 1s }').commitWindowMs).toBe(1000);
  });

  it('refuses a window outside 1ms to 1s, or not a duration', () => {
    expect(issues('{ path: ./t, commitWindow: 0ms }')).toEqual([
      'store.commitWindow: expected a duration from 1ms to 1s, found "0ms"',
    ]);
    expect(issues('{ path: ./t, commitWindow: 2s }')).toEqual([
      'store.commitWindow: expected a duration from 1ms to 1s, found "2s"',
    ]);
    expect(issues('{ path: ./t, commitWindow: soon }')).toEqual([
      'store.commitWindow: expected a duration such as 500ms, 120s, 5m, 8h or 1h30m, found "soon"',
    ]);
  });
});
