import { describe, expect, it } from '@jest/globals';
import type { RedactConfig, Redactor, StreamRedactor } from '@agentgate/core';
import {
  createRedactor,
  createRedactorFromEntries,
  DEFAULT_REDACTION_NAMES,
  HOLD_LIMIT,
  REDACTED_TEXT,
} from '../index.js';

const defaults: RedactConfig = { defaults: true, disable: [], entries: [] };
const redactor = createRedactor(defaults);

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.' +
  'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const KEY_BODY = 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu';
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${KEY_BODY}\n${KEY_BODY}\n-----END RSA PRIVATE KEY-----`;
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/** [entry, input, the secret that must be gone, the text around it that must stay] */
const SHAPES: [string, string, string, string][] = [
  ['mysql-password', "mysql -pexecpw-123 -e 'select 1'", 'execpw-123', "-e 'select 1'"],
  ['mysql-password', "mysqldump -u root -p'pa ss' shop", 'pa ss', 'shop'],
  ['mysql-password', 'mariadb -h db -p"q\\"uoted"', 'q\\"uoted', 'mariadb -h db'],
  ['password-option', 'mysql --password=hunter2 shop', 'hunter2', 'shop'],
  ['password-option', 'docker login --password s3cret -u bob registry', 's3cret', 'registry'],
  ['password-option', 'wget --http-password=wgetpw1 http://x/', 'wgetpw1', 'http://x/'],
  ['password-option', 'app --db-password dbsecret9 --verbose', 'dbsecret9', '--verbose'],
  ['login-password', "sshpass -p 'sshpw-1' ssh host", 'sshpw-1', 'ssh host'],
  ['login-password', 'docker login -u bob -p dockerpw1 registry', 'dockerpw1', 'registry'],
  ['curl-user', 'curl -u bob:curlpw1 https://api.example', 'curlpw1', 'https://api.example'],
  ['curl-user', "curl --user 'bob:curl pw2' https://x", 'curl pw2', 'https://x'],
  ['credential-assignment', 'PGPASSWORD=pgpw1 psql -h db', 'pgpw1', 'psql -h db'],
  ['credential-assignment', 'export GITHUB_TOKEN=tok-1 && gh repo list', 'tok-1', 'gh repo list'],
  ['credential-assignment', 'docker run -e DB_PASSWORD=dbpw1 alpine', 'dbpw1', 'alpine'],
  ['credential-assignment', 'API_SECRET="two words" ./run', 'two words', './run'],
  ['credential-assignment', 'export SERVICE_KEY=k3y1', 'k3y1', 'export SERVICE_KEY='],
  ['credential-assignment', 'MYSQL_PWD=mpw1 mysql', 'mpw1', 'mysql'],
  ['credential-assignment', 'SECRET_KEY_BASE=skb-42 rails server', 'skb-42', 'rails server'],
  ['credential-assignment', 'DB_PASSWORD_PRIMARY=dbpp-7 ./migrate', 'dbpp-7', './migrate'],
  ['credential-assignment', '-e AWS_CREDENTIALS=awsc-3 alpine', 'awsc-3', 'alpine'],
  ['credential-assignment', '{"client_secret": "cs-123", "id": 4}', 'cs-123', '"id": 4'],
  ['credential-assignment', 'X-Api-Key: apikey-77', 'apikey-77', 'X-Api-Key'],
  ['authorization-header', "curl -H 'Authorization: Bearer abc.def-1' https://x", 'abc.def-1', 'https://x'],
  [
    'authorization-header',
    "wget --header='Proxy-Authorization: Basic dXNlcjpwYXNz' x",
    'dXNlcjpwYXNz',
    'Basic',
  ],
  [
    'authorization-header',
    'GET / HTTP/1.1\r\nauthorization: Digest u="x", r="y"\r\nHost: h\r\n',
    'u="x"',
    'Host: h',
  ],
  ['authorization-header', "SELECT 'Authorization: Bearer sqlbearer1'", 'sqlbearer1', 'SELECT'],
  ['aws-secret-key', `aws_secret_access_key = ${AWS_SECRET}`, AWS_SECRET, 'aws_secret_access_key'],
  ['aws-secret-key', `{"SecretAccessKey": "${AWS_SECRET}"}`, AWS_SECRET, 'SecretAccessKey'],
  ['credential-assignment', `AWS_SECRET_ACCESS_KEY=${AWS_SECRET}`, AWS_SECRET, 'AWS_SECRET_ACCESS_KEY='],
  ['url-credentials', 'DATABASE_URL=postgres://app:s3cr3t@db:5432/app', 's3cr3t', 'db:5432/app'],
  ['url-credentials', 'git clone https://bob:p@ss@github.com/x', 'p@ss', 'github.com/x'],
  ['aws-access-key', 'key id AKIAIOSFODNN7EXAMPLE here', 'AKIAIOSFODNN7EXAMPLE', 'here'],
  ['netrc-password', 'machine api.example.com login bob password nrc-pw1', 'nrc-pw1', 'login bob'],
  ['netrc-password', "machine git.example.com password 'nrc two' login alice", 'nrc two', 'login alice'],
  ['xml-password', '<server><id>r</id><password>mvn-pw1</password></server>', 'mvn-pw1', '</server>'],
  [
    'xml-password',
    '<add key="ClearTextPassword" value="x"/><ns:secret a="1">xs-2</ns:secret>',
    'xs-2',
    'ns:',
  ],
  ['private-key', `before\n${PEM}\nafter`, KEY_BODY, 'after'],
  ['jwt', `token ${JWT} end`, JWT, 'end'],
  ['bearer-token', 'got Bearer abcdefghijklmnop1234 back', 'abcdefghijklmnop1234', 'back'],
  ['github-token', `gh ${'ghp_' + 'a1B2'.repeat(9)} x`, 'ghp_' + 'a1B2'.repeat(9), ' x'],
  ['gitlab-token', 'PRIV glpat-abcdefghij0123456789 x', 'glpat-abcdefghij0123456789', ' x'],
  ['slack-token', 'xoxb-1234567890-abcdefghijkl', 'xoxb-1234567890-abcdefghijkl', ''],
  [
    'slack-token',
    'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX',
    'XXXXXXXXXXXXXXXXXXXX',
    'hooks',
  ],
  ['stripe-key', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', '4eC39HqLyjWDarjtT1zdp7dc', ''],
  ['google-api-key', 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', 'SyD-9tSrke72PouQMnMX', ''],
  ['llm-api-key', 'sk-proj-abcDEF123_abcDEF123_abcDEF123_', 'abcDEF123_abcDEF123_', ''],
];

/** Everything a stream releases for `chunks` (pushed one by one, then ended). */
function throughStream(
  stream: StreamRedactor,
  chunks: readonly Buffer[],
): { bytes: Buffer; fired: Set<string> } {
  const out: Buffer[] = [];
  const fired = new Set<string>();
  for (const chunk of chunks) {
    const released = stream.push(chunk);
    out.push(...released.pieces);
    for (const name of released.fired) fired.add(name);
  }
  const rest = stream.release('end');
  out.push(...rest.pieces);
  for (const name of rest.fired) fired.add(name);
  return { bytes: Buffer.concat(out), fired };
}

describe('redaction of text: the default shapes', () => {
  it.each(SHAPES)('%s: %j', (entry, input, secret, kept) => {
    const { value, fired } = redactor.text(input);
    expect(value).not.toContain(secret);
    expect(value).toContain(REDACTED_TEXT);
    expect(value).toContain(kept);
    expect(fired).toContain(`default:${entry}`);
  });

  it.each([
    'ssh -p 2222 host',
    'psql -h db -p 5432 shop',
    'scp -P 22 a b:',
    'docker run -p 8080:80 nginx',
    'docker login --password-stdin -u bob',
    'mysql --password -e "select 1"',
    'echo the token is nice and the key is blue',
    'sort key=name',
    'TOKEN_TTL=3600 KEY_ID=7 max_tokens=100',
    'secretary=bob passwordless=true',
    'export PWD=/home/x OLDPWD=/tmp',
    'https://example.com/a@b and http://host:8080/path',
    'SELECT * FROM users WHERE id = 4',
    'FATAL: password authentication failed for user "app"',
    'this machine has no password set',
    'the password is wrong',
    '<passwordPolicy/> <secretary>bob</secretary>',
    '',
  ])('leaves %j alone', (input) => {
    expect(redactor.text(input)).toEqual({ value: input, fired: [] });
  });

  it('names every built-in entry it has', () => {
    expect(DEFAULT_REDACTION_NAMES).toEqual(
      expect.arrayContaining([...new Set(SHAPES.map(([entry]) => entry))]),
    );
  });
});

describe('redaction of event bodies', () => {
  it('redacts every string, keeps the rest, and never mutates its input', () => {
    const body = {
      text: "mysql -pexecpw-123 -e 'select 1'",
      simpleCommands: [
        { program: 'mysql', argv: ['mysql', '-pexecpw-123', '-e', 'select 1'], text: 'mysql -pexecpw-123' },
      ],
      seq: 4,
      ok: true,
      nothing: null,
    };
    const frozen = JSON.stringify(body);
    const { value, fired } = redactor.body(body);
    expect(JSON.stringify(body)).toBe(frozen);
    expect(JSON.stringify(value)).not.toContain('execpw');
    expect(value.simpleCommands[0]!.argv).toEqual(['mysql', `-p${REDACTED_TEXT}`, '-e', 'select 1']);
    expect(value.seq).toBe(4);
    expect(fired).toEqual(['default:mysql-password']);
  });

  it('matches a list of strings as one line: a flag and its value in separate items', () => {
    const { value } = redactor.body({ argv: ['docker', 'login', '--password', 'pw9', 'reg'] });
    expect(value.argv).toEqual(['docker', 'login', '--password', REDACTED_TEXT, 'reg']);
    const env = redactor.body({ Env: ['PATH=/bin', 'DB_PASSWORD=dbpw2', 'LANG=C'] }).value.Env;
    expect(env).toEqual(['PATH=/bin', `DB_PASSWORD=${REDACTED_TEXT}`, 'LANG=C']);
  });

  it('replaces a value with spaces in it to the end of its item, and only a value', () => {
    const { value } = redactor.body({
      argv: ['mysql', '--password', 'pass phrase9', '-e', 'select 1'],
      Env: ['DB_PASSWORD=two words', 'LANG=C'],
      more: ['x', '--password=a b c', 'y'],
      script: ['sh', '-c', 'mysql --password pw3 db; ls -la'],
    });
    expect(value.argv).toEqual(['mysql', '--password', REDACTED_TEXT, '-e', 'select 1']);
    expect(value.Env).toEqual([`DB_PASSWORD=${REDACTED_TEXT}`, 'LANG=C']);
    expect(value.more).toEqual(['x', `--password=${REDACTED_TEXT}`, 'y']);
    // Inside a script the value ends where the pattern ends: the rest is other words.
    expect(value.script).toEqual(['sh', '-c', `mysql --password ${REDACTED_TEXT} db; ls -la`]);
  });

  it('redacts a secret however deep or wherever in a list it is, and only there', () => {
    const body = {
      statements: [{ command: 'SELECT', tables: ['t'], params: ['1', 'PGPASSWORD=pgpw7'] }],
      detail: { args: ['curl', '-u', 'bob:curlpw8', 'https://x'], note: 'ok' },
    };
    const { value, fired } = redactor.body(body);
    expect(value.statements[0]!.params).toEqual(['1', `PGPASSWORD=${REDACTED_TEXT}`]);
    expect(value.statements[0]!.tables).toBe(body.statements[0]!.tables);
    expect(value.detail.args).toEqual(['curl', '-u', `bob:${REDACTED_TEXT}`, 'https://x']);
    expect(fired).toEqual(['default:credential-assignment', 'default:curl-user']);
  });

  it('runs entries without triggers over every string of a body, words of a list as one line', () => {
    const custom = createRedactor({
      defaults: false,
      disable: [],
      entries: [{ name: 'pin', pattern: 'pin (?<secret>[0-9]{4})' }],
    });
    const { value, fired } = custom.body({ a: { b: ['x', 'pin 1234'] }, words: ['pin', '4321', 'y'] });
    expect(value).toEqual({ a: { b: ['x', `pin ${REDACTED_TEXT}`] }, words: ['pin', REDACTED_TEXT, 'y'] });
    expect(fired).toEqual(['pin']);
  });

  it('redacts long text the same however often it comes, the clean text and the text with a secret alike', () => {
    // A polling client's answer is recorded again and again: a secret in it is found every time.
    const clean = `[${'{"Id":"abc","Names":["/web"],"State":"running"},'.repeat(20)}{}]`;
    const secret = clean.replace('"running"', `"PGPASSWORD=hunter2"`);
    for (let i = 0; i < 3; i++) {
      expect(redactor.body({ body: clean })).toEqual({ value: { body: clean }, fired: [] });
      expect(redactor.text(clean)).toEqual({ value: clean, fired: [] });
      const inBody = redactor.body({ body: secret });
      expect(JSON.stringify(inBody.value)).not.toContain('hunter2');
      expect(inBody.fired).toEqual(['default:credential-assignment']);
      expect(redactor.text(secret).value).not.toContain('hunter2');
      // The same content built anew (another string object) is judged by its content.
      const rebuilt = [secret.slice(0, 100), secret.slice(100)].join('');
      expect(redactor.body([rebuilt]).value).not.toEqual([rebuilt]);
    }
    // A text another redactor found clean is still redacted by one with an entry for it (a reload).
    const pins = createRedactor({
      defaults: false,
      disable: [],
      entries: [{ name: 'state', pattern: '"State":"(?<secret>[a-z]+)"' }],
    });
    expect(pins.text(clean).value).not.toContain('running');
  });

  it('judges a long text it found clean before by its content and its own entries, never by a verdict of others', () => {
    const clean = `[${'{"Id":"abc","Names":["/web"],"State":"running"},'.repeat(8)}{}]`;
    // The same length as the clean text, and alike up to the secret near its end.
    const secret = clean.slice(0, -30) + 'PGPASSWORD=hunter2' + clean.slice(-12);
    expect(secret.length).toBe(clean.length);
    expect(redactor.body({ body: clean }).fired).toEqual([]);
    expect(JSON.stringify(redactor.body({ body: secret }).value)).not.toContain('hunter2');
    expect(redactor.body({ body: clean }).fired).toEqual([]);
    // A redactor without the JWT entry finds this text clean; one with it (a reload) must still redact it.
    const withJwt = `${clean.slice(0, -2)},{"Label":"${JWT}"}]`;
    const withoutJwtEntry = createRedactor({ defaults: true, disable: ['jwt'], entries: [] });
    for (let i = 0; i < 2; i++) {
      expect(withoutJwtEntry.body({ body: withJwt }).fired).toEqual([]);
      const redacted = redactor.body({ body: withJwt });
      expect(redacted.fired).toEqual(['default:jwt']);
      expect(JSON.stringify(redacted.value)).not.toContain(JWT);
    }
  });

  it('takes the start of a text it found clean as clean, and still redacts a text that goes on past it', () => {
    // A statement's text is its command's cut short (no `;`): the command's probe covers it.
    const command = "SELECT abalance FROM pgbench_accounts WHERE note = 'x' AND aid = 42;";
    const statement = command.slice(0, -1);
    expect(redactor.body({ text: command, statements: [{ text: statement }] })).toEqual({
      value: { text: command, statements: [{ text: statement }] },
      fired: [],
    });
    // Longer than the clean text, alike up to its end: the secret after it is found.
    const longer = command.slice(0, -1) + " AND PGPASSWORD='hunter2'";
    expect(redactor.body({ text: command, statements: [{ text: longer }] }).fired).toEqual([
      'default:credential-assignment',
    ]);
    expect(redactor.text(command + ' PGPASSWORD=hunter2').value).not.toContain('hunter2');
    // Shorter but not its start: judged by its own content.
    expect(redactor.text(command.slice(1, -1) + 'PGPASSWORD=hunter2').value).not.toContain('hunter2');
  });

  it('replaces each redacted member in its own place, and walks only own members', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto['inherited'] = 'PGPASSWORD=inherited1';
    try {
      const body = {
        a: 'x',
        b: 'PGPASSWORD=hunter2 psql',
        c: 7,
        d: { e: 'API_SECRET=s3 run', f: true },
        g: 'y',
      };
      const { value, fired } = redactor.body(body);
      expect(Object.keys(value)).toEqual(['a', 'b', 'c', 'd', 'g']);
      expect(value).toEqual({
        a: 'x',
        b: `PGPASSWORD=${REDACTED_TEXT} psql`,
        c: 7,
        d: { e: `API_SECRET=${REDACTED_TEXT} run`, f: true },
        g: 'y',
      });
      expect(fired).toEqual(['default:credential-assignment']);
      expect(Object.hasOwn(value, 'inherited')).toBe(false);
    } finally {
      delete proto['inherited'];
    }
  });

  it('returns the same object when nothing fired', () => {
    const body = { text: 'ls -la', argv: ['ls', '-la'], nested: { a: [1, 'x'] } };
    const { value, fired } = redactor.body(body);
    expect(value).toBe(body);
    expect(fired).toEqual([]);
  });
});

describe('redaction of streams', () => {
  it.each(SHAPES)('%s: found wherever the chunks are cut (%j)', (entry, input, secret) => {
    const whole = Buffer.from(input, 'latin1');
    const once = throughStream(redactor.stream(), [whole]);
    expect(once.bytes.length).toBe(whole.length);
    expect(once.bytes.toString('latin1')).not.toContain(secret);
    expect(once.fired).toContain(`default:${entry}`);
    for (let cut = 1; cut < whole.length; cut++) {
      const two = throughStream(redactor.stream(), [whole.subarray(0, cut), whole.subarray(cut)]);
      expect(two.bytes.toString('latin1')).toBe(once.bytes.toString('latin1'));
    }
    const bytewise = throughStream(
      redactor.stream(),
      [...whole].map((byte) => Buffer.from([byte])),
    );
    expect(bytewise.bytes.toString('latin1')).toBe(once.bytes.toString('latin1'));
  });

  it('keeps lengths and line breaks, and overwrites only the secret', () => {
    const input = Buffer.from('$ mysql -pexecpw-123\r\nok\r\n');
    const { bytes } = throughStream(redactor.stream(), [input]);
    expect(bytes.toString()).toBe('$ mysql -p**********\r\nok\r\n');
    const pem = throughStream(redactor.stream(), [Buffer.from(`${PEM}\n`)]).bytes.toString();
    expect(pem.split('\n').map((line) => line.length)).toEqual(`${PEM}\n`.split('\n').map((l) => l.length));
    expect(pem).not.toContain(KEY_BODY);
  });

  it('records at once what cannot be part of a secret, holds only what can', () => {
    const stream = redactor.stream();
    const first = stream.push(Buffer.from('total 0\nbuild ok\n$ mys'));
    expect(Buffer.concat(first.pieces).toString()).toBe('total 0\nbuild ok\n$ ');
    expect(stream.held).toBe(3);
    expect(Buffer.concat(stream.push(Buffer.from('ql -u root -p')).pieces).toString()).toBe('');
    expect(Buffer.concat(stream.push(Buffer.from('sec')).pieces).toString()).toBe('');
    const done = stream.push(Buffer.from('ret shop\n$ echo done\n$ '));
    expect(Buffer.concat(done.pieces).toString()).toBe('mysql -u root -p****** shop\n$ echo done\n$ ');
    expect(done.fired).toEqual(['default:mysql-password']);
    expect(stream.held).toBe(0);
    // The last word may be the beginning of a trigger, or what a pattern needs before one (`--db-`, `API_`).
    expect(Buffer.concat(stream.push(Buffer.from('$ next')).pieces).toString()).toBe('$ ');
    expect(stream.held).toBe(4);
    expect(stream.release('idle').pieces).toEqual([]);
    expect(Buffer.concat(stream.release('end').pieces).toString()).toBe('next');
  });

  it("holds back a copy, not a view of the caller's buffer, which may be reused for the next chunk", () => {
    const stream = redactor.stream();
    const reused = Buffer.alloc(64);
    const recorded: Buffer[] = [];
    for (const text of ['build ok\n$ mys', 'ql -u root -psec', 'ret shop\n']) {
      reused.fill(0x2e);
      reused.write(text);
      for (const piece of stream.push(reused.subarray(0, text.length)).pieces)
        recorded.push(Buffer.from(piece));
    }
    expect(Buffer.concat(recorded).toString()).toBe('build ok\n$ mysql -u root -p****** shop\n');
  });

  it('passes a chunk without triggers through as the same buffer', () => {
    const chunk = Buffer.from('hello world, nothing here\n');
    const released = redactor.stream().push(chunk);
    expect(released.pieces).toEqual([chunk]);
    expect(released.pieces[0]).toBe(chunk);
  });

  it('redacts a private key block split across many chunks, and one longer than the hold limit', () => {
    const body = Array.from({ length: 400 }, () => KEY_BODY).join('\n');
    const input = Buffer.from(
      `key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\nafter\n`,
    );
    expect(input.length).toBeGreaterThan(HOLD_LIMIT * 2);
    const chunks: Buffer[] = [];
    for (let at = 0; at < input.length; at += 1000) chunks.push(input.subarray(at, at + 1000));
    const { bytes, fired } = throughStream(redactor.stream(), chunks);
    expect(bytes.length).toBe(input.length);
    expect(bytes.toString()).not.toContain(KEY_BODY.slice(0, 16));
    expect(bytes.toString()).toMatch(/^key:\n\*+\n/);
    expect(bytes.toString().endsWith('\nafter\n')).toBe(true);
    expect([...fired]).toEqual(['default:private-key']);
  });

  it('a secret still growing at the hold limit is redacted to its end', () => {
    const token = 'x'.repeat(HOLD_LIMIT * 2);
    const input = Buffer.from(`export API_TOKEN=${token} done\n`);
    const chunks: Buffer[] = [];
    for (let at = 0; at < input.length; at += 512) chunks.push(input.subarray(at, at + 512));
    const { bytes } = throughStream(redactor.stream(), chunks);
    expect(bytes.toString()).toBe(`export API_TOKEN=${'*'.repeat(token.length)} done\n`);
  });

  it('releases a held secret at the end of the stream', () => {
    const stream = redactor.stream();
    expect(stream.push(Buffer.from('PGPASSWORD=abc')).pieces).toEqual([]);
    const end = stream.release('end');
    expect(Buffer.concat(end.pieces).toString()).toBe('PGPASSWORD=***');
    expect(end.fired).toEqual(['default:credential-assignment']);
  });

  it('leaves binary data intact', () => {
    const data = Buffer.alloc(64 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const { bytes } = throughStream(redactor.stream(), [data.subarray(0, 30000), data.subarray(30000)]);
    expect(bytes.equals(data)).toBe(true);
    const zeros = Buffer.alloc(256 * 1024);
    const chunks: Buffer[] = [];
    for (let at = 0; at < zeros.length; at += 32 * 1024) chunks.push(zeros.subarray(at, at + 32 * 1024));
    const stream = redactor.stream();
    const first = stream.push(chunks[0]!);
    // Zeros are one long word: its last 256 bytes wait for the next chunk.
    expect(Buffer.concat(first.pieces).length).toBe(32 * 1024 - 256);
    expect(stream.held).toBe(256);
    expect(throughStream(redactor.stream(), chunks).bytes.equals(zeros)).toBe(true);
  });

  it.each(SHAPES)(
    '%s: the same record when a long chunk follows a held word, wherever the secret lies (%j)',
    (_entry, input) => {
      // A chunk of 256 bytes or more after a held word is scanned without the word joined to it unless a trigger,
      // or the line of one, reaches back into the word: every cut around the secret must record what one push does.
      for (const gap of ['', ' ', '\n', 'x\r\n']) {
        const whole = Buffer.from(
          `${'A'.repeat(600)}${gap}${input} ${'B'.repeat(300)}\n${'C'.repeat(300)}`,
          'latin1',
        );
        const once = throughStream(redactor.stream(), [whole]).bytes.toString('latin1');
        for (let cut = 560; cut < 600 + gap.length + input.length + 40; cut++) {
          const two = throughStream(redactor.stream(), [whole.subarray(0, cut), whole.subarray(cut)]);
          expect(two.bytes.toString('latin1')).toBe(once);
        }
      }
    },
  );
});

describe('redaction of streams: a held word and the chunk after it', () => {
  it('an entry sees the whole line of its trigger even when the line began in the held word', () => {
    // Stricter than the entries' contract (what precedes a trigger is optional): the line must start the match.
    const strict = createRedactorFromEntries([
      { name: 'line', pattern: '^set-[a-z]+-zzz=(?<secret>\\S+)', ignoreCase: false, triggers: ['zzz='] },
    ]);
    const whole = Buffer.from(
      `${'A'.repeat(600)}\nset-${'a'.repeat(80)}-zzz=hunter2 done\n${'B'.repeat(300)}`,
    );
    const once = throughStream(strict.stream(), [whole]).bytes.toString();
    expect(once).toContain('-zzz=******* done');
    for (let cut = 601; cut < 700; cut++) {
      const two = throughStream(strict.stream(), [whole.subarray(0, cut), whole.subarray(cut)]);
      expect(two.bytes.toString()).toBe(once);
    }
  });
});

describe('configuration', () => {
  it('turns built-in entries off one by one or all at once', () => {
    const noMysql = createRedactor({ defaults: true, disable: ['mysql-password'], entries: [] });
    expect(noMysql.text('mysql -pexecpw-123').value).toBe('mysql -pexecpw-123');
    expect(noMysql.text('PGPASSWORD=x1').value).toBe(`PGPASSWORD=${REDACTED_TEXT}`);
    const none = createRedactor({ defaults: false, disable: [], entries: [] });
    expect(none.active).toBe(false);
    expect(none.text('PGPASSWORD=x1').value).toBe('PGPASSWORD=x1');
  });

  it('adds operator regexes (with a `secret` group or whole) and masking detectors by name', () => {
    const custom: Redactor = createRedactor({
      defaults: false,
      disable: [],
      entries: [
        { name: 'ticket', pattern: 'TKT-[0-9a-f]{8}' },
        { name: 'pin', pattern: 'pin (?<secret>[0-9]{4})', ignoreCase: true },
        { name: 'personal', detectors: ['email', 'iban'] },
      ],
    });
    const { value, fired } = custom.text('TKT-0badf00d PIN 1234 mail a.b@example.org');
    expect(value).toBe(`${REDACTED_TEXT} PIN ${REDACTED_TEXT} mail ${REDACTED_TEXT}`);
    expect(fired).toEqual(['ticket', 'pin', 'personal']);
    // Entries without triggers hold the unfinished line of a stream, so they too see a split match.
    const { bytes } = throughStream(custom.stream(), [Buffer.from('x TKT-0ba'), Buffer.from('df00d y\n')]);
    expect(bytes.toString()).toBe('x ************ y\n');
  });
});
