/**
 * Redaction entries: what a secret looks like, and the trigger literals that let the pre-filter skip everything
 * else. The built-in entries (on by default, recorded as `default:NAME`) cover well-known credential shapes; the
 * operator adds regexes and masking detectors by name (docs/configuration.md, `redact`).
 *
 * Every match of an entry contains one of its triggers, and its secret part starts at or after that trigger: what
 * comes before the trigger (a variable name's prefix, `--` or `https`) is optional in the pattern. A stream can
 * then record everything before the earliest trigger of an unfinished line (stream-redactor.ts) and still find a
 * secret whose beginning arrived in an earlier chunk.
 */
import { detectorByName, type DetectorDefinition } from '../detectors.js';

export interface RedactionEntry {
  /** Recorded in `redacted` when the entry fired. */
  readonly name: string;
  /** Regex source. Named groups starting with `secret` mark the part replaced; without one, the whole match. */
  readonly pattern: string;
  readonly ignoreCase: boolean;
  /** Literals (ASCII, 3+ characters, any case) one of which every match contains; absent: scanned everywhere. */
  readonly triggers?: readonly string[];
  /** The match may span lines (a private key block); else matches end at a line break. */
  readonly multiline?: boolean;
  /**
   * Regex source for how a secret goes on after a stream had to be recorded in the middle of it (its held tail
   * grew past the bound): the bytes it matches at the start of the next chunk are redacted too. Default: the rest
   * of the word.
   */
  readonly continuation?: string;
  /** Rejects near misses after the regex matched (the whole match). */
  readonly validate?: (match: string) => boolean;
}

/** A quoted or bare value: `'…'`, `"…"` (with escapes) or a word (quotes and whitespace end it). */
const VALUE = String.raw`(?:'(?<secret>[^'\n]*)'|"(?<secret2>(?:[^"\\\n]|\\.)*)"|(?<secret3>(?:[^\s'"\\]|\\.)+))`;
/** Between a program and its option: anything up to the end of the simple command. */
const SAME_COMMAND = String.raw`[^\n\r;&|]*?`;

/** How a masking detector can be used for redaction: its literal triggers, when it has a usable set. */
const DETECTOR_TRIGGERS: Readonly<Record<string, readonly string[]>> = {
  private_key: ['-----begin'],
  jwt: ['eyj'],
  bearer_token: ['bearer'],
  aws_access_key: ['akia', 'asia', 'agpa', 'aida', 'aroa', 'aipa', 'anpa', 'anva', 'abia', 'acca'],
  github_token: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  gitlab_token: [
    'glpat-',
    'gloas-',
    'gldt-',
    'glrt-',
    'glcbt-',
    'glptt-',
    'glft-',
    'glimt-',
    'glagent-',
    'glsoat-',
    'glffct-',
  ],
  stripe_key: ['sk_live', 'sk_test', 'rk_live', 'rk_test', 'pk_live', 'pk_test'],
  google_api_key: ['aiza'],
  llm_api_key: ['sk-'],
  // password_in_url, slack_token (its webhook URL), email, credit_card, us_ssn, iban, api_key: no literal that
  // every match starts at; they are scanned everywhere.
};

const PRIVATE_KEY_REST = String.raw`[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`;

/** A masking detector as a redaction entry (its `(?<S>…)` part, when it has one, is what is replaced). */
export function detectorEntry(detector: DetectorDefinition, name: string): RedactionEntry {
  const triggers = DETECTOR_TRIGGERS[detector.name];
  return {
    name,
    pattern: detector.pattern.replace('(?<S>', '(?<secret>'),
    ignoreCase: false,
    ...(triggers !== undefined ? { triggers } : {}),
    ...(detector.name === 'private_key' ? { multiline: true, continuation: PRIVATE_KEY_REST } : {}),
    ...(detector.validate !== undefined ? { validate: detector.validate } : {}),
  };
}

function fromDetector(detector: string): Omit<RedactionEntry, 'name'> {
  const definition = detectorByName(detector);
  if (definition === undefined) throw new Error(`no masking detector ${detector}`);
  const { name: _name, ...entry } = detectorEntry(definition, detector);
  return entry;
}

/** The built-in entries, by their short name (recorded as `default:NAME`). */
export const DEFAULT_REDACTIONS: Readonly<Record<string, Omit<RedactionEntry, 'name'>>> = {
  // mysql and its tools take the password glued to -p (`-p secret` prompts, and `secret` is the database); -p is a
  // port for ssh, scp, psql and most others, so only these programs are read this way.
  'mysql-password': {
    pattern: String.raw`\b(?:mysql|mariadb)[A-Za-z_-]*\b${SAME_COMMAND}[ \t]-p${VALUE}`,
    ignoreCase: false,
    triggers: ['mysql', 'mariadb'],
  },
  // --password=X, --password X, --db-password X, -password X; not --password-stdin or --password-file.
  'password-option': {
    pattern: String.raw`(?<![A-Za-z0-9_-])--?(?:[A-Za-z0-9]+[-_])*pass(?:word|wd)(?:=|[ \t]+(?=[^\s-]))${VALUE}`,
    ignoreCase: true,
    triggers: ['passw'],
  },
  // sshpass -p X; docker/podman/nerdctl/helm … login -p X.
  'login-password': {
    pattern: String.raw`\b(?:sshpass|login)\b${SAME_COMMAND}[ \t]-p(?:=|[ \t]+(?=[^\s-]))?${VALUE}`,
    ignoreCase: false,
    triggers: ['sshpass', 'login'],
  },
  // curl -u user:password, --user, --proxy-user, -U.
  'curl-user': {
    pattern: String.raw`\bcurl\b${SAME_COMMAND}[ \t](?:-[uU]|--(?:proxy-)?user)(?:=|[ \t]*)['"]?[^\s:'"]*:(?<secret>(?:[^\s'"\\]|\\.)+)`,
    ignoreCase: false,
    triggers: ['curl'],
  },
  // PGPASSWORD=X, export API_TOKEN=X, -e DB_PASSWORD=X, MYSQL_PWD=X, AWS_SECRET_ACCESS_KEY = X, "client_secret": "X",
  // X-Api-Key: X (shell, env files, JSON, YAML, headers). A password, secret or credentials word names a secret
  // wherever it stands in the name (SECRET_KEY_BASE, DB_PASSWORD_PRIMARY), as in Docker's inspect Env masking; token
  // and key only at its end (TOKEN_TTL, KEY_ID are not secrets). That alternative checks the word by lookahead and
  // then takes the whole name at once (a lookahead and its backreference), so a long name costs one pass.
  'credential-assignment': {
    pattern:
      String.raw`(?<![A-Za-z0-9_.-])(?:(?=[A-Za-z0-9_.-]*?(?:password|passwd|secret|credentials?)(?![A-Za-z0-9]))(?=([A-Za-z0-9_.-]+))\1|` +
      String.raw`[A-Za-z0-9_.-]*(?:token|apikey|api_key|api-key)|(?:[A-Za-z0-9]+[_.-])+(?:pwd|key))` +
      String.raw`\\?["']?[ \t]*[:=][ \t]*(?![=\s])${VALUE}`,
    ignoreCase: true,
    triggers: [
      'passw',
      'token',
      'secret',
      'credential',
      'apikey',
      'api_key',
      'api-key',
      '_pwd',
      '.pwd',
      '-pwd',
      '_key',
      '.key',
      '-key',
    ],
  },
  // Authorization / Proxy-Authorization header values (curl -H, wget --header, raw HTTP, JSON): the credential after
  // a one-word scheme, or the whole value for other schemes.
  'authorization-header': {
    pattern: String.raw`(?:proxy-)?authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?(?:(?:bearer|basic|token|bot)[ \t]+(?<secret>[^\s"'\\]+)|(?<secret2>[^\r\n"'\\]+))`,
    ignoreCase: true,
    triggers: ['authorization'],
  },
  // aws_secret_access_key = X (credentials file), "SecretAccessKey": "X" (aws sts, aws iam create-access-key).
  'aws-secret-key': {
    pattern: String.raw`(?:aws_?)?secret_?access_?key\\?["']?[ \t]*[:=][ \t]*\\?["']?(?<secret>[A-Za-z0-9/+=]{16,})`,
    ignoreCase: true,
    triggers: ['secret'],
  },
  // scheme://user:password@host (the scheme is optional here, so a URL split between chunks is still found).
  'url-credentials': {
    pattern: String.raw`://[^\s:/?#@'"]+:(?<secret>[^\s/?#'"]+)@`,
    ignoreCase: false,
    triggers: ['://'],
  },
  // ~/.netrc (curl, git, ftp) written one machine per line: `machine HOST [login U] [account A] [port P] password X`.
  // Keyed on `machine`: a bare `password X` is everyday prose ("FATAL: password authentication failed").
  'netrc-password': {
    pattern: String.raw`\bmachine[ \t]+\S+(?:[ \t]+(?:login|account|port)[ \t]+\S+)*[ \t]+password[ \t]+${VALUE}`,
    ignoreCase: false,
    triggers: ['machine'],
  },
  // <password>X</password>, <secret>, <passwd> (Maven settings.xml, NuGet, SOAP), with attributes or a namespace.
  'xml-password': {
    pattern: String.raw`(?:password|passwd|secret)(?:\s[^<>\n]*)?>(?<secret>[^<\n]+)</`,
    ignoreCase: true,
    triggers: ['passw', 'secret'],
  },
  'private-key': fromDetector('private_key'),
  jwt: fromDetector('jwt'),
  'bearer-token': fromDetector('bearer_token'),
  'aws-access-key': fromDetector('aws_access_key'),
  'github-token': fromDetector('github_token'),
  'gitlab-token': fromDetector('gitlab_token'),
  'slack-token': {
    pattern: String.raw`\bxox[abposre]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/(?<secret>[A-Za-z0-9/_-]{20,})`,
    ignoreCase: false,
    triggers: ['xox', 'hooks.slack.com/services/'],
  },
  'stripe-key': fromDetector('stripe_key'),
  'google-api-key': fromDetector('google_api_key'),
  'llm-api-key': fromDetector('llm_api_key'),
};

export const DEFAULT_REDACTION_NAMES: readonly string[] = Object.keys(DEFAULT_REDACTIONS);
