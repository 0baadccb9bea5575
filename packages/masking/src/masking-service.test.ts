import { describe, expect, it } from '@jest/globals';
import type { Identity, MaskingRuleConfig, SessionMasker } from '@agentgate/core';
import { isAgentgateError } from '@agentgate/core';
import { createMaskingService, ibanValid, KNOWN_DETECTORS, luhnValid } from './index.js';

const agent: Identity = { name: 'devin', groups: ['agents'], source: 'token' };
const dba: Identity = { name: 'dora', groups: ['dba'], source: 'token' };

function rule(overrides: Partial<MaskingRuleConfig> & { name: string }): MaskingRuleConfig {
  return { columns: [], detectors: [], replacement: '****', strategy: 'replace', ...overrides };
}

function detectorsFor(...names: string[]): SessionMasker {
  return createMaskingService([rule({ name: 'd', detectors: names })]).forSession(agent, 'db');
}

function maskWith(detector: string, text: string): string {
  return detectorsFor(detector).detectors!.mask(text);
}

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.' +
  'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----';

describe('content detectors: true positives', () => {
  it.each([
    ['email', 'mail alice@example.com now', 'mail **** now'],
    ['email', 'bob.smith+tag@mail.example.co.uk.', '****.'],
    ['credit_card', 'card 4111 1111 1111 1111 ok', 'card **** ok'],
    ['credit_card', '4111-1111-1111-1111', '****'],
    ['credit_card', 'amex 378282246310005', 'amex ****'],
    ['credit_card', '5555555555554444', '****'],
    ['us_ssn', 'ssn: 123-45-6789', 'ssn: ****'],
    ['iban', 'iban DE89 3704 0044 0532 0130 00 end', 'iban **** end'],
    ['iban', 'GB82WEST12345698765432', '****'],
    ['aws_access_key', 'key=AKIAIOSFODNN7EXAMPLE', 'key=****'],
    ['aws_access_key', 'ASIAY34FZKBOKMUTVV7A', '****'],
    ['private_key', `before\n${PEM}\nafter`, 'before\n****\nafter'],
    ['private_key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA (truncated', '****'],
    ['jwt', `token ${JWT} end`, 'token **** end'],
    ['bearer_token', 'Authorization: Bearer abcdefghijklmnop1234', 'Authorization: Bearer ****'],
    [
      'password_in_url',
      'DATABASE_URL=postgres://app:s3cr3t@db:5432/app',
      'DATABASE_URL=postgres://app:****@db:5432/app',
    ],
    ['github_token', 'ghp_' + 'a1B2'.repeat(9), '****'],
    ['github_token', 'github_pat_' + 'A'.repeat(22) + '_' + 'b'.repeat(59), '****'],
    ['slack_token', 'xoxb-1234567890-abcdefghijkl', '****'],
    ['stripe_key', 'sk_live_' + '4eC39HqLyjWDarjtT1zdp7dc', '****'],
    ['google_api_key', 'AIza' + 'SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', '****'],
    ['llm_api_key', 'OPENAI=sk-proj-' + 'abcDEF123_'.repeat(3), 'OPENAI=****'],
    ['api_key', 'API_KEY=abcd1234efgh', 'API_KEY=****'],
    ['api_key', '{"password": "hunter22", "user": "x"}', '{"password": "****", "user": "x"}'],
    ['api_key', 'db_password: correct-horse', 'db_password: ****'],
  ])('%s masks %j', (detector, input, expected) => {
    expect(maskWith(detector, input)).toBe(expected);
  });
});

describe('content detectors: near misses stay untouched', () => {
  it.each([
    ['email', ['foo@bar', '@handle', 'a@b', 'user at example dot com']],
    [
      'credit_card',
      ['4111111111111112', '1234567812345670', '2024010112345678', '4111 1111 1111', 'order 12345'],
    ],
    [
      'us_ssn',
      [
        '000-12-3456',
        '666-12-3456',
        '900-12-3456',
        '123-00-4567',
        '123-45-0000',
        '2024-01-01',
        '123456789',
        '1123-45-67890',
      ],
    ],
    ['iban', ['DE89 3704 0044 0532 0130 01', 'GB82WEST12345698765431', 'AB12']],
    ['aws_access_key', ['AKIAIOSFODNN7EXAMPL', 'akiaiosfodnn7example', 'XAKIAIOSFODNN7EXAMPLEX']],
    ['private_key', ['-----BEGIN PUBLIC KEY-----\nMFww\n-----END PUBLIC KEY-----', 'BEGIN RSA PRIVATE KEY']],
    ['jwt', ['eyJub3RhbGciOjF9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln', 'eyJhbGciOiJIUzI1NiJ9', 'not.a.jwt']],
    ['bearer_token', ['Bearer short', 'bearer', 'the bearer of news']],
    [
      'password_in_url',
      ['https://example.com/a@b', 'user@host', 'https://user@example.com/', 'http://host:8080/path'],
    ],
    ['github_token', ['ghp_short', 'ghx_' + 'a'.repeat(36)]],
    ['api_key', ['password: x', 'tokens are fine', 'the secret is out']],
  ])('%s', (detector, inputs) => {
    for (const input of inputs as string[]) expect(maskWith(detector, input)).toBe(input);
  });

  it('only enabled detectors run', () => {
    expect(maskWith('email', 'ssn 123-45-6789')).toBe('ssn 123-45-6789');
  });

  it('checksums', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(ibanValid('DE89370400440532013000')).toBe(true);
    expect(ibanValid('DE89370400440532013001')).toBe(false);
  });
});

describe('combined scanning', () => {
  it('masks several detectors in one value and counts hits per rule and detector', () => {
    const counted: [string, string, number][] = [];
    const service = createMaskingService(
      [
        rule({ name: 'pii', detectors: ['email', 'us_ssn'] }),
        rule({ name: 'secrets', detectors: ['aws_access_key', 'email'], replacement: '[secret]' }),
      ],
      { onMasked: (r, d, n) => counted.push([r, d, n]) },
    );
    const detectors = service.forSession(agent, 'db').detectors!;
    const out = detectors.mask('a@example.com, b@example.org, 123-45-6789, AKIAIOSFODNN7EXAMPLE');
    expect(out).toBe('****, ****, ****, [secret]');
    expect(counted.sort()).toEqual([
      ['pii', 'email', 2],
      ['pii', 'us_ssn', 1],
      ['secrets', 'aws_access_key', 1],
    ]);
    counted.length = 0;
    expect(detectors.mask('nothing to see 42')).toBe('nothing to see 42');
    expect(counted).toEqual([]);
  });

  it('knows every detector it implements', () => {
    for (const name of [
      'email',
      'credit_card',
      'us_ssn',
      'iban',
      'aws_access_key',
      'private_key',
      'jwt',
      'bearer_token',
      'password_in_url',
      'github_token',
      'slack_token',
      'api_key',
    ]) {
      expect(KNOWN_DETECTORS).toContain(name);
    }
  });

  it('rejects unknown detectors with CONFIG_INVALID', () => {
    let thrown: unknown;
    try {
      createMaskingService([rule({ name: 'x', detectors: ['emial'] })]);
    } catch (err) {
      thrown = err;
    }
    expect(isAgentgateError(thrown, 'CONFIG_INVALID')).toBe(true);
  });
});

describe('strategies', () => {
  it('partial keeps the last 4 characters of long values only', () => {
    const masker = createMaskingService([
      rule({ name: 'p', columns: ['cards.number'], detectors: ['credit_card'], strategy: 'partial' }),
    ]).forSession(agent, 'db');
    const column = masker.forColumn({ schema: 'public', table: 'cards', column: 'number' })!;
    expect(column.mask('4111111111111111')).toBe('****1111');
    expect(column.mask('1234567')).toBe('****');
    expect(masker.detectors!.mask('pay 4111 1111 1111 1111')).toBe('pay ****1111');
  });

  it('hash is keyed, deterministic and truncated, so equal values still join', () => {
    const make = (key: string) =>
      createMaskingService([rule({ name: 'h', columns: ['users.email'], strategy: 'hash' })], {
        hashKey: Buffer.from(key),
      })
        .forSession(agent, 'db')
        .forColumn({ schema: 'public', table: 'users', column: 'email' })!;
    const first = make('k1');
    const a = first.mask('alice@example.com');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(first.mask('alice@example.com')).toBe(a);
    expect(first.mask('bob@example.com')).not.toBe(a);
    expect(make('k1').mask('alice@example.com')).toBe(a);
    expect(make('k2').mask('alice@example.com')).not.toBe(a);
  });

  it('column masks count as detector "column"', () => {
    const counted: string[] = [];
    const masker = createMaskingService([rule({ name: 'pii', columns: ['users.ssn'] })], {
      onMasked: (r, d, n) => counted.push(`${r}/${d}/${n}`),
    }).forSession(agent, 'db');
    expect(masker.forColumn({ schema: 'public', table: 'users', column: 'ssn' })!.mask('123-45-6789')).toBe(
      '****',
    );
    expect(counted).toEqual(['pii/column/1']);
  });
});

describe('column rules', () => {
  const service = createMaskingService([
    rule({
      name: 'pii',
      columns: ['users.email', 'billing.cards.number', '*.api_key', 'cust*.e?ail', 'token'],
    }),
  ]);
  const masker = service.forSession(agent, 'db');
  const has = (schema: string, table: string, column: string) =>
    masker.forColumn({ schema, table, column }) !== undefined;

  it('matches table.column in any schema and schema.table.column exactly', () => {
    expect(has('public', 'users', 'email')).toBe(true);
    expect(has('app', 'users', 'email')).toBe(true);
    expect(has('public', 'users', 'name')).toBe(false);
    expect(has('billing', 'cards', 'number')).toBe(true);
    expect(has('public', 'cards', 'number')).toBe(false);
  });

  it('supports * and ? globs on each part, case-insensitively, and bare column names', () => {
    expect(has('public', 'anything', 'api_key')).toBe(true);
    expect(has('public', 'customers', 'email')).toBe(true);
    expect(has('public', 'customers', 'emails')).toBe(false);
    expect(has('public', 'Users', 'EMAIL')).toBe(true);
    expect(has('x', 'y', 'token')).toBe(true);
    expect(has('x', 'y', 'tokens')).toBe(false);
  });

  it('caches lookups and returns the same masker', () => {
    const source = { schema: 'public', table: 'users', column: 'email' };
    expect(masker.forColumn(source)).toBe(masker.forColumn(source));
    expect(service.forSession(agent, 'db')).toBe(masker);
  });

  it('coversColumn treats * in the question as any name', () => {
    expect(masker.coversColumn({ schema: 'public', table: 'users', column: '*' })).toBe(true);
    expect(masker.coversColumn({ schema: 'public', table: 'orders', column: '*' })).toBe(true); // *.api_key
    expect(masker.coversColumn({ schema: '*', table: '*', column: 'email' })).toBe(true);
    expect(masker.coversColumn({ schema: 'public', table: 'users', column: 'name' })).toBe(false);
    const narrow = createMaskingService([rule({ name: 'n', columns: ['users.email'] })]).forSession(
      agent,
      'db',
    );
    expect(narrow.coversColumn({ schema: 'public', table: 'orders', column: '*' })).toBe(false);
    expect(narrow.coversColumn({ schema: 'public', table: '*', column: 'email' })).toBe(true);
  });
});

describe('scoping', () => {
  const service = createMaskingService([
    rule({ name: 'agents-only', columns: ['users.email'], who: ['group:agents'] }),
    rule({ name: 'prod-only', columns: ['users.ssn'], listeners: ['prod-db'] }),
  ]);

  it('applies who and listeners like policy rules', () => {
    const agentProd = service.forSession(agent, 'prod-db');
    expect(agentProd.active).toBe(true);
    expect(agentProd.forColumn({ schema: 'public', table: 'users', column: 'email' })).toBeDefined();
    expect(agentProd.forColumn({ schema: 'public', table: 'users', column: 'ssn' })).toBeDefined();

    const agentStaging = service.forSession(agent, 'staging-db');
    expect(agentStaging.forColumn({ schema: 'public', table: 'users', column: 'ssn' })).toBeUndefined();

    const dbaProd = service.forSession(dba, 'prod-db');
    expect(dbaProd.forColumn({ schema: 'public', table: 'users', column: 'email' })).toBeUndefined();
    expect(dbaProd.detectors).toBeUndefined();

    const dbaStaging = service.forSession(dba, 'staging-db');
    expect(dbaStaging.active).toBe(false);
  });

  it('matches identity: references', () => {
    const only = createMaskingService([rule({ name: 'x', detectors: ['email'], who: ['identity:devin'] })]);
    expect(only.forSession(agent, 'db').active).toBe(true);
    expect(only.forSession(dba, 'db').active).toBe(false);
  });
});

describe('adversarial input', () => {
  it('scans long crafted values in linear time (no regex backtracking blow-up)', () => {
    const all = createMaskingService([rule({ name: 'all', detectors: [...KNOWN_DETECTORS] })]).forSession(
      agent,
      'db',
    );
    const n = 30_000;
    const inputs = [
      'a'.repeat(n) + '@',
      'a.'.repeat(n / 2) + '@x',
      'x@' + 'a-'.repeat(n / 2),
      '1'.repeat(n),
      'AB12'.repeat(n / 4),
      'x_'.repeat(n / 2) + 'token:',
      'a://'.repeat(n / 4) + 'b:c',
      '-----BEGIN RSA PRIVATE KEY-----' + 'A'.repeat(n),
      'password='.repeat(n / 9),
    ];
    for (const input of inputs) {
      const started = performance.now();
      all.detectors!.mask(input);
      // Linear scans take a few ms; the quadratic patterns this guards against took seconds at this size.
      expect(performance.now() - started).toBeLessThan(750);
    }
  });
});
