/**
 * Content detectors: patterns for secrets and personal data found in free text (any column, notices, container
 * env values, terminal output). Each detector is a regex fragment with an optional `secret` named part (only that
 * part is masked: `postgres://app:****@db`, `Bearer ****`), a cheap trigger used to skip values that cannot hold a
 * match, and an optional checksum validation that rejects near misses (Luhn for cards, ISO 13616 mod-97 for IBANs,
 * a JSON header for JWTs).
 */

import type { TextFeatures } from './text-features.js';

export interface DetectorDefinition {
  readonly name: string;
  /** Regex source; may contain one `(?<S>…)` group marking the secret part (renamed when combined). */
  readonly pattern: string;
  /** Regex source for a substring every match contains; values without any trigger are skipped. */
  readonly trigger: string;
  /** Shortest string a match can be; shorter values are skipped. */
  readonly minLength: number;
  /** First pre-filter stage: false when the value's features rule this detector out (see text-features.ts). */
  readonly candidate: (features: TextFeatures) => boolean;
  /** Rejects near misses after the regex matched. Receives the whole match. */
  readonly validate?: (match: string) => boolean;
}

/** `password` → `[pP][aA]…`: JS regexes (Node 20) have no inline `(?i:)`, and only some detectors ignore case. */
function anyCase(word: string): string {
  return [...word].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c)).join('');
}

/** Luhn (ISO/IEC 7812-1 annex B) over the digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes and lengths of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay). */
function plausibleCard(digits: string): boolean {
  const n = digits.length;
  if (/^4/.test(digits)) return n === 13 || n === 16 || n === 19;
  if (/^(5[1-5]|2(2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))/.test(digits)) return n === 16;
  if (/^3[47]/.test(digits)) return n === 15;
  if (/^(6011|65|64[4-9]|62)/.test(digits)) return n >= 16 && n <= 19;
  if (/^35(2[89]|[3-8]\d)/.test(digits)) return n >= 16 && n <= 19;
  if (/^3(0[0-5]|[689])/.test(digits)) return n >= 14 && n <= 19;
  return false;
}

function validCreditCard(match: string): boolean {
  const digits = match.replace(/[ -]/g, '');
  return digits.length >= 13 && digits.length <= 19 && plausibleCard(digits) && luhnValid(digits);
}

/** IBAN check digits: move the first four characters to the end, letters → 10..35, the number mod 97 is 1. */
export function ibanValid(candidate: string): boolean {
  const iban = candidate.replace(/ /g, '').toUpperCase();
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    const value = code >= 65 ? String(code - 55) : char;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

/** A JWT's first segment is base64url JSON with an `alg` (RFC 7519 §7.2, RFC 7515 §4.1.1). */
function validJwt(match: string): boolean {
  const header = match.slice(0, match.indexOf('.'));
  try {
    const decoded = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as unknown;
    return typeof decoded === 'object' && decoded !== null && 'alg' in decoded;
  } catch {
    return false;
  }
}

const SECRET_KEY_NAMES = [
  'api_key',
  'api-key',
  'apikey',
  'secret',
  'token',
  'passwd',
  'password',
  'pwd',
  'access_key',
  'access-key',
  'private_key',
  'client_secret',
  'auth',
];

export const DETECTORS: readonly DetectorDefinition[] = [
  {
    // PEM / OpenSSH / PGP private key blocks; an unterminated block (truncated output) is masked to the end.
    name: 'private_key',
    candidate: (f) => f.dashRun >= 5,
    pattern:
      '-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\\s\\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)',
    trigger: '-----BEGIN',
    minLength: 30,
  },
  {
    name: 'jwt',
    candidate: (f) => f.dots >= 2 && f.length >= 20 && f.value.includes('eyJ'),
    pattern: '(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*',
    trigger: 'eyJ',
    minLength: 20,
    validate: validJwt,
  },
  {
    // RFC 6750 §2.1 `Authorization: Bearer b64token`.
    name: 'bearer_token',
    candidate: (f) => f.length >= 23 && f.value.includes('earer'),
    pattern: '\\b[Bb]earer[ \\t]+(?<S>[A-Za-z0-9\\-._~+/]{16,}=*)',
    trigger: '[Bb]earer',
    minLength: 23,
  },
  {
    // RFC 3986 §3.2.1 userinfo `user:password@`.
    name: 'password_in_url',
    candidate: (f) => f.at && f.colon,
    pattern: '(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\\s:/?#@]+:(?<S>[^\\s/?#@]+)@',
    trigger: '://',
    minLength: 8,
  },
  {
    name: 'aws_access_key',
    candidate: (f) => f.upperDigitRun >= 20,
    pattern: '\\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\\b',
    trigger: 'A(?:KI|SI|GP|ID|RO|IP|NP|NV|BI|CC)A',
    minLength: 20,
  },
  {
    name: 'github_token',
    candidate: (f) => f.underscore && f.length >= 40,
    pattern: '\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\\b',
    trigger: 'gh[pousr]_|github_pat_',
    minLength: 40,
  },
  {
    // GitLab's prefixed tokens: personal/project/group access, OAuth secrets, deploy, runner, CI job, trigger,
    // feed, incoming mail, agent, SCIM and feature-flag tokens.
    name: 'gitlab_token',
    candidate: (f) => f.length >= 25 && f.value.includes('gl'),
    pattern: '\\bgl(?:pat|oas|dt|rt|cbt|ptt|ft|imt|agent|soat|ffct)-[A-Za-z0-9_.-]{20,}',
    trigger: 'gl(?:pat|oas|dt|rt|cbt|ptt|ft|imt|agent|soat|ffct)-',
    minLength: 25,
  },
  {
    name: 'slack_token',
    candidate: (f) => f.value.includes('xox') || f.value.includes('hooks.slack'),
    pattern: '\\bxox[abposre]-[A-Za-z0-9-]{10,}|https://hooks\\.slack\\.com/services/[A-Za-z0-9/_-]{20,}',
    trigger: 'xox|hooks\\.slack\\.com',
    minLength: 15,
  },
  {
    name: 'stripe_key',
    candidate: (f) => f.underscore,
    pattern: '\\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\\b',
    trigger: '[srp]k_(?:live|test)_',
    minLength: 24,
  },
  {
    name: 'google_api_key',
    candidate: (f) => f.length >= 39 && f.value.includes('AIza'),
    pattern: '\\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])',
    trigger: 'AIza',
    minLength: 39,
  },
  {
    // OpenAI (`sk-…`, `sk-proj-…`) and Anthropic (`sk-ant-…`) API keys.
    name: 'llm_api_key',
    candidate: (f) => f.length >= 23 && f.value.includes('sk-'),
    pattern: '\\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{20,}',
    trigger: 'sk-',
    minLength: 23,
  },
  {
    // `password=…`, `API_KEY: …`, `"client_secret": "…"` in env files, logs, JSON and YAML.
    name: 'api_key',
    candidate: (f) => (f.colon || f.equals) && f.letters >= 3,
    pattern:
      `(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*?(?:${SECRET_KEY_NAMES.map(anyCase).join('|')})["']?[ \\t]*[:=][ \\t]*["']?` +
      `(?<S>[^\\s"',;&}]{6,})`,
    trigger: `${SECRET_KEY_NAMES.map(anyCase).join('|')}`,
    minLength: 10,
  },
  {
    name: 'email',
    candidate: (f) => f.at,
    // The look-behind lets only the start of a run try the local part: without it a long run of word characters
    // before an `@` is rescanned from every position (quadratic).
    pattern: '(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\\b',
    trigger: '@',
    minLength: 6,
  },
  {
    name: 'credit_card',
    candidate: (f) => f.digitsInCardRun >= 13,
    pattern: '(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])',
    trigger: '[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}',
    minLength: 13,
    validate: validCreditCard,
  },
  {
    // SSA rules: area not 000/666/9xx, group not 00, serial not 0000. Dashes required: bare 9-digit numbers are
    // far too often something else.
    name: 'us_ssn',
    candidate: (f) => f.digitsInDashRun >= 9,
    pattern: '(?<![0-9-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![0-9-])',
    trigger: '[0-9]{3}-[0-9]{2}-[0-9]{4}',
    minLength: 11,
  },
  {
    name: 'iban',
    candidate: (f) => f.ibanStart && f.length >= 15,
    pattern: '\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b',
    trigger: '[A-Z]{2}[0-9]{2}',
    minLength: 15,
    validate: ibanValid,
  },
];

export const KNOWN_DETECTORS: readonly string[] = DETECTORS.map((detector) => detector.name);

const BY_NAME = new Map(DETECTORS.map((detector) => [detector.name, detector]));

export function detectorByName(name: string): DetectorDefinition | undefined {
  return BY_NAME.get(name);
}
