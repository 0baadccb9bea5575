/**
 * Credential literals in SQL, found in the parse tree and replaced in the text the transcript records
 * (docs/transcript.md): role passwords (`CREATE/ALTER ROLE|USER … [ENCRYPTED] PASSWORD '…'`, including the SCRAM
 * verifier psql's \password sends), options named like a password or secret (`USER MAPPING`, `SERVER`, foreign
 * data wrappers, foreign tables), connection strings with a password (subscriptions, and any function argument:
 * dblink, dblink_connect, dblink_exec…), the key arguments of pgcrypto functions, and settings named like a secret.
 * Decisions are made on the real text; only what is stored is redacted.
 *
 * The tree says which values are secret; the text is then rewritten token by token (PostgreSQL's own scanner), so
 * a secret inside a nested body (a DO block, an EXECUTE string, a function body) is replaced where it is written
 * and the SQL keeps its shape: `PASSWORD '[REDACTED]'`, `'host=db password=[REDACTED]'`.
 */
import { scanSql, type SqlToken } from './pg-parser.js';

type Node = Record<string, unknown>;

export const REDACTED = '[REDACTED]';

/** A value the tree shows to be a credential. */
export type Secret =
  | { readonly kind: 'literal'; readonly value: string }
  /** A connection string: only its password parts are replaced. */
  | { readonly kind: 'conninfo'; readonly value: string; readonly passwords: readonly string[] }
  /** A Bind parameter (`$n`, 1-based) in a credential position. */
  | { readonly kind: 'param'; readonly number: number };

/** Option and setting names that hold credentials (`password`, `sslpassword`, `client_secret`, `api_key`…). */
const SECRET_NAME = /passw(or)?d|^pwd$|secret|token|credential|api_?key|private_?key|passphrase/i;
const NOT_SECRET_NAME = /_required$|_file$|^passfile$/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_SECRET_NAME.test(name);
}

/** pgcrypto arguments that are passwords or keys (0-based), by function name. */
const SECRET_ARGUMENTS: Readonly<Record<string, readonly number[]>> = {
  crypt: [0],
  pgp_sym_encrypt: [1],
  pgp_sym_encrypt_bytea: [1],
  pgp_sym_decrypt: [1],
  pgp_sym_decrypt_bytea: [1],
  pgp_pub_decrypt: [1, 2],
  pgp_pub_decrypt_bytea: [1, 2],
  hmac: [1],
  encrypt: [1],
  decrypt: [1],
  encrypt_iv: [1],
  decrypt_iv: [1],
};

/** dblink functions whose arguments may be connection strings (a parameter there may carry a password). */
const CONNECTION_FUNCTIONS = new Set([
  'dblink',
  'dblink_connect',
  'dblink_connect_u',
  'dblink_exec',
  'dblink_open',
  'dblink_send_query',
  'dblink_get_connections',
]);

/** The text of a string constant node (`'x'`, `'x'::text`), or undefined. */
function stringConstant(node: unknown): string | undefined {
  let current = node as Node | undefined;
  for (let i = 0; i < 4 && current !== undefined; i++) {
    const cast = current['TypeCast'] as Node | undefined;
    if (cast === undefined) break;
    current = cast['arg'] as Node | undefined;
  }
  const direct = current?.['String'] as Node | undefined;
  if (typeof direct?.['sval'] === 'string') return direct['sval'];
  const sval = ((current?.['A_Const'] as Node | undefined)?.['sval'] as Node | undefined)?.['sval'];
  return typeof sval === 'string' ? sval : undefined;
}

function paramNumber(node: unknown): number | undefined {
  let current = node as Node | undefined;
  const cast = current?.['TypeCast'] as Node | undefined;
  if (cast !== undefined) current = cast['arg'] as Node | undefined;
  const n = (current?.['ParamRef'] as Node | undefined)?.['number'];
  return typeof n === 'number' ? n : undefined;
}

/** A value in a credential position: a string literal or a parameter. */
function secretValue(node: unknown, out: Secret[]): void {
  const text = stringConstant(node);
  if (text !== undefined && text !== '') out.push({ kind: 'literal', value: text });
  const n = paramNumber(node);
  if (n !== undefined) out.push({ kind: 'param', number: n });
}

/** `DefElem` options: role passwords and every option named like a credential. */
export function defElemSecrets(def: Node, out: Secret[]): void {
  const name = typeof def['defname'] === 'string' ? def['defname'] : '';
  if (!isSecretName(name)) return;
  secretValue(def['arg'], out);
}

/** A function call's arguments: connection strings with a password, pgcrypto keys. */
export function functionCallSecrets(name: string, args: readonly unknown[], out: Secret[]): void {
  for (const [i, arg] of args.entries()) {
    const text = stringConstant(arg);
    if (text !== undefined) {
      const passwords = connectionStringPasswords(text);
      if (passwords.length > 0) out.push({ kind: 'conninfo', value: text, passwords });
    }
    if (CONNECTION_FUNCTIONS.has(name)) {
      const n = paramNumber(arg);
      if (n !== undefined) out.push({ kind: 'param', number: n });
    }
    if (SECRET_ARGUMENTS[name]?.includes(i)) secretValue(arg, out);
  }
  if (name === 'set_config' && isSecretName(stringConstant(args[0]) ?? '')) secretValue(args[1], out);
}

/** `SET app.api_token = '…'`. */
export function settingSecrets(body: Node, out: Secret[]): void {
  const name = typeof body['name'] === 'string' ? body['name'] : '';
  if (!isSecretName(name)) return;
  for (const arg of (body['args'] as unknown[] | undefined) ?? []) secretValue(arg, out);
}

/** `CREATE/ALTER SUBSCRIPTION … CONNECTION '…'`. */
export function connectionSecrets(conninfo: unknown, out: Secret[]): void {
  if (typeof conninfo !== 'string') return;
  const passwords = connectionStringPasswords(conninfo);
  if (passwords.length > 0) out.push({ kind: 'conninfo', value: conninfo, passwords });
}

// ---- connection strings (libpq "Connection Strings": keyword/value pairs and URIs) ---------------------------

interface ConninfoValue {
  readonly key: string;
  /** [start, end) of the value as written (quotes included). */
  readonly start: number;
  readonly end: number;
  readonly value: string;
}

const URI = /^postgres(?:ql)?:\/\//i;

/** Keyword/value pairs (`host=a password='x y'`); undefined when the text is not one. */
function keywordValues(text: string): ConninfoValue[] | undefined {
  const out: ConninfoValue[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    const keyStart = i;
    while (i < n && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    while (i < n && /\s/.test(text[i]!)) i++;
    if (key === '' || text[i] !== '=') return undefined;
    i++;
    while (i < n && /\s/.test(text[i]!)) i++;
    const start = i;
    let value = '';
    if (text[i] === "'") {
      i++;
      while (i < n && text[i] !== "'") {
        if (text[i] === '\\' && i + 1 < n) i++;
        value += text[i];
        i++;
      }
      if (i >= n) return undefined;
      i++;
    } else {
      while (i < n && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < n) i++;
        value += text[i];
        i++;
      }
    }
    out.push({ key: key.toLowerCase(), start, end: i, value });
  }
  return out.length > 0 ? out : undefined;
}

/** The passwords a connection string carries (keyword `password`, a URI's user:password@ or ?password=). */
export function connectionStringPasswords(text: string): string[] {
  if (URI.test(text)) {
    const out: string[] = [];
    const userinfo = /^[a-z]+:\/\/([^@/?#]*)@/i.exec(text)?.[1];
    const colon = userinfo?.indexOf(':') ?? -1;
    if (userinfo !== undefined && colon >= 0) out.push(decodeUriPart(userinfo.slice(colon + 1)));
    const query = text.indexOf('?');
    if (query >= 0) {
      for (const pair of text.slice(query + 1).split('&')) {
        const [k, v] = pair.split('=');
        if (k !== undefined && isSecretName(decodeUriPart(k)) && v !== undefined) out.push(decodeUriPart(v));
      }
    }
    return out.filter((p) => p !== '');
  }
  return (keywordValues(text) ?? [])
    .filter((kv) => isSecretName(kv.key) && kv.value !== '')
    .map((kv) => kv.value);
}

function decodeUriPart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The connection string with each password replaced. */
export function redactConnectionString(text: string): string {
  if (URI.test(text)) {
    return text
      .replace(/^([a-z]+:\/\/[^@/?#:]*:)[^@/?#]*@/i, `$1${REDACTED}@`)
      .replace(/([?&])([^=&]*)=([^&#]*)/g, (all, sep: string, k: string) =>
        isSecretName(decodeUriPart(k)) ? `${sep}${k}=${REDACTED}` : all,
      );
  }
  const pairs = keywordValues(text);
  if (pairs === undefined) return REDACTED;
  let out = '';
  let copied = 0;
  for (const kv of pairs) {
    if (!isSecretName(kv.key)) continue;
    out += text.slice(copied, kv.start) + REDACTED;
    copied = kv.end;
  }
  return out + text.slice(copied);
}

// ---- rewriting the text ----------------------------------------------------------------------------------------

/** Secrets shorter than this are replaced only where they stand as a whole literal, never as a substring. */
const MIN_SUBSTRING_SECRET = 4;

/** The values whose presence anywhere in a text means it still holds a secret. */
function secretStrings(secrets: readonly Secret[]): string[] {
  const out: string[] = [];
  for (const s of secrets) {
    if (s.kind === 'literal') out.push(s.value);
    else if (s.kind === 'conninfo') out.push(...s.passwords);
  }
  return out.filter((v) => v.length >= MIN_SUBSTRING_SECRET);
}

/**
 * `text` with every credential literal replaced, or undefined when it holds none. A string literal that equals a
 * secret is replaced; one that is a connection string has its passwords replaced; one that contains a secret
 * (the body of a DO block, an EXECUTE string) is rewritten the same way inside. Whatever the scanner cannot read,
 * or a secret still found anywhere afterwards (a comment, an identifier), is replaced as a whole.
 */
export function redactText(text: string, secrets: readonly Secret[]): string | undefined {
  const values = secrets.filter((s) => s.kind !== 'param');
  if (values.length === 0) return undefined;
  const rewritten = rewriteLiterals(text, values, 0) ?? text;
  let out = rewritten;
  for (const v of secretStrings(values)) out = out.split(v).join(REDACTED);
  return out === text ? undefined : out;
}

const MAX_NESTING = 8;

function rewriteLiterals(text: string, secrets: readonly Secret[], depth: number): string | undefined {
  let tokens: SqlToken[];
  try {
    tokens = scanSql(text);
  } catch {
    return undefined;
  }
  const substrings = secretStrings(secrets);
  let out = '';
  let copied = 0;
  for (const token of tokens) {
    if (!token.isString) continue;
    const value = token.value;
    let replacement: string | undefined;
    if (value === undefined) {
      // A literal the gateway cannot decode (U&'…' UESCAPE): replaced when it may hold a secret.
      if (substrings.some((s) => token.text.includes(s))) replacement = `'${REDACTED}'`;
    } else if (secrets.some((s) => s.kind === 'literal' && s.value === value)) {
      replacement = `'${REDACTED}'`;
    } else if (secrets.some((s) => s.kind === 'conninfo' && s.value === value)) {
      replacement = requote(token.text, redactConnectionString(value));
    } else if (substrings.some((s) => value.includes(s))) {
      const inner = depth < MAX_NESTING ? rewriteLiterals(value, secrets, depth + 1) : undefined;
      replacement = requote(token.text, inner ?? REDACTED);
    }
    if (replacement === undefined) continue;
    out += text.slice(copied, token.start) + replacement;
    copied = token.end;
  }
  return copied === 0 ? undefined : out + text.slice(copied);
}

/** `value` quoted as the original literal was where possible (a dollar tag is kept), else as a standard string. */
function requote(original: string, value: string): string {
  const tag = /^\$[A-Za-z_0-9]*\$/.exec(original)?.[0];
  if (tag !== undefined && !value.includes(tag)) return `${tag}${value}${tag}`;
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Secrets of a text the parser rejected, read from its tokens: the token after PASSWORD (quoted or not, or a
 * parameter), a string after an option named like a secret, connection strings with a password. Undefined when
 * even the scanner fails: the caller then records nothing of a text that may hold a credential.
 */
export function secretsOfUnparsedText(text: string, depth = 0): Secret[] | undefined {
  let tokens: SqlToken[];
  try {
    tokens = scanSql(text).filter((t) => !t.isComment);
  } catch {
    return undefined;
  }
  const out: Secret[] = [];
  for (const [i, token] of tokens.entries()) {
    if (token.isString && token.value !== undefined) {
      const passwords = connectionStringPasswords(token.value);
      if (passwords.length > 0) out.push({ kind: 'conninfo', value: token.value, passwords });
      // A body (DO, CREATE FUNCTION, EXECUTE '…') is SQL too; parameters inside it are not the client's.
      if (depth < MAX_NESTING && /\s/.test(token.value))
        out.push(...(secretsOfUnparsedText(token.value, depth + 1) ?? []).filter((s) => s.kind !== 'param'));
    }
    const next = tokens[i + 1];
    if (next === undefined || !isSecretName(token.text.replace(/^"|"$/g, ''))) continue;
    if (next.isString && next.value !== undefined) out.push({ kind: 'literal', value: next.value });
    else if (next.isParam) out.push({ kind: 'param', number: Number(next.text.slice(1)) });
    else if (next.isIdentifier) out.push({ kind: 'literal', value: next.text });
  }
  return out;
}

/** What the record carries of a text that may hold a credential but cannot even be scanned. */
export const UNREADABLE_REDACTED = `${REDACTED} (unreadable text that may hold a credential)`;

/** Does an unreadable text look as if it may hold a credential? */
export function mayHoldSecret(text: string): boolean {
  return SECRET_NAME.test(text) || URI.test(text.trim());
}

/** Parameters with the secret ones replaced, or undefined when none is. */
export function redactParams(
  params: readonly unknown[],
  secrets: readonly Secret[],
  all = false,
): unknown[] | undefined {
  if (!all && secrets.length === 0) return undefined; // the common case, without the set below
  const numbers = new Set(secrets.flatMap((s) => (s.kind === 'param' ? [s.number] : [])));
  if (!all && numbers.size === 0) return undefined;
  if (params.length === 0) return undefined;
  const out = params.map((p, i) => (p !== null && (all || numbers.has(i + 1)) ? REDACTED : p));
  return out.some((p, i) => p !== params[i]) ? out : undefined;
}
