import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError, loadFleetLocation, parseConfig } from './index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-section-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = 'store: { path: ./t }\nsigningKey: ./k.json\n';

function issues(fleet: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(`${base}fleet: ${fleet}\n`, join(dir, 'a.yaml'), env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

describe('fleet', () => {
  it('is absent unless configured', () => {
    expect(parseConfig(base, join(dir, 'a.yaml'), {}).fleet).toBeUndefined();
  });

  it('reads a URL, or the fields with a password file resolved against the config file; approvalsWhenDown defaults to closed, shipRetryMax to 15s', () => {
    const url = parseConfig(
      `${base}fleet: { node: gw-1, postgres: "postgres://gw:\${env:FLEET_PW}@db:5432/fleet" }\n`,
      join(dir, 'a.yaml'),
      { FLEET_PW: 's3cret' },
    );
    expect(url.fleet).toEqual({
      node: 'gw-1',
      postgres: { url: 'postgres://gw:s3cret@db:5432/fleet' },
      approvalsWhenDown: 'closed',
      shipRetryMaxMs: 15_000,
    });
    const fields = parseConfig(
      `${base}fleet: { node: gw.2, approvalsWhenDown: local, shipRetryMax: 2s, postgres: { host: db, user: gw, passwordFile: ./pw, database: fleet, tls: { ca: ./ca.pem } } }\n`,
      join(dir, 'a.yaml'),
      {},
    );
    expect(fields.fleet).toEqual({
      node: 'gw.2',
      approvalsWhenDown: 'local',
      shipRetryMaxMs: 2000,
      postgres: {
        host: 'db',
        port: 5432,
        user: 'gw',
        passwordFile: join(dir, 'pw'),
        database: 'fleet',
        tls: { ca: join(dir, 'ca.pem') },
      },
    });
  });

  it('names every missing or wrong key, never echoing a password', () => {
    expect(issues('{}')).toEqual([
      'fleet.postgres: expected the fleet database: a postgres:// URL or {host, port, user, password|passwordFile, database, tls}, found nothing',
      "fleet.node: expected this replica's name in the fleet (e.g. gw-1), found nothing",
    ]);
    expect(
      issues('{ node: "gw 1", postgres: "mysql://x", approvalsWhenDown: open, shipRetryMax: 500ms }'),
    ).toEqual([
      'fleet.postgres: expected a postgres:// or postgresql:// URL, found a string of another form',
      'fleet.node: expected a name of letters, digits, ".", "_" and "-" (at most 63, starting with a letter or digit), found "gw 1"',
      'fleet.approvalsWhenDown: expected one of closed, local, found "open"',
      'fleet.shipRetryMax: expected a duration from 1s to 10m, found "500ms"',
    ]);
    expect(issues('{ node: a, postgres: "postgres://db/f", shipRetryMax: 11m }')).toEqual([
      'fleet.shipRetryMax: expected a duration from 1s to 10m, found "11m"',
    ]);
    const found = issues(
      '{ node: a, postgres: { host: db, user: gw, password: hunter2, passwordFile: ./pw, port: 0 } }',
    );
    expect(found).toEqual([
      'fleet.postgres.database: expected database, found nothing',
      'fleet.postgres.port: expected an integer from 1 to 65535, found number 0',
      'fleet.postgres.passwordFile: expected either password or passwordFile, found both',
    ]);
    expect(found.join('\n')).not.toContain('hunter2');
    expect(
      issues('{ node: a, postgres: { host: db, user: gw, database: f, sslmode: require } }')[0],
    ).toContain('found unknown key "sslmode"');
  });

  it('loadFleetLocation reads fleet without a store (an auditor), and says when there is neither', async () => {
    const auditor = join(dir, 'auditor.yaml');
    writeFileSync(auditor, 'fleet: { node: auditor, postgres: "postgres://auditor@db/fleet" }\n');
    const location = await loadFleetLocation(auditor, {});
    expect(location.fleet?.node).toBe('auditor');
    expect(location.store).toBeUndefined();
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, 'admin: { listen: "127.0.0.1:0" }\n');
    await expect(loadFleetLocation(empty, {})).rejects.toThrow(
      'expected a fleet or a store section, found neither',
    );
  });
});
