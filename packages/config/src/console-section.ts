import type { ConsoleConfig, ConsoleOidcConfig, IdentityConfig } from '@agentgate/core';
import { child, type Checker } from './checker.js';
import { didYouMean } from './did-you-mean.js';

const DEFAULT_SESSION_TTL_MS = 8 * 3_600_000;
const DEFAULT_SCOPES = ['openid', 'profile', 'email'];

/** Plain http is accepted only where nothing can listen in: the loopback interface. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** An http(s) URL; http only on loopback. Returns the parsed URL or undefined after reporting. */
function readUrl(checker: Checker, value: unknown, path: string): URL | undefined {
  const text = checker.string(value, path);
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    checker.expected(path, 'an http:// or https:// URL', text);
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    checker.expected(path, 'an http:// or https:// URL', text);
    return undefined;
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    checker.expected(path, 'an https:// URL (plain http only on a loopback address)', text);
    return undefined;
  }
  return url;
}

function readPublicUrl(checker: Checker, value: unknown, path: string): string | undefined {
  const url = readUrl(checker, value, path);
  if (url === undefined) return undefined;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    checker.expected(path, 'an origin such as https://agentgate.example.com (no path or query)', value);
    return undefined;
  }
  return url.origin;
}

function readOidc(
  checker: Checker,
  value: unknown,
  path: string,
  identity: IdentityConfig,
): ConsoleOidcConfig | undefined {
  const m = checker.mapping(value, path, ['issuer', 'clientId', 'clientSecret', 'scopes']);
  if (m === undefined) return undefined;
  const issuerUrl = readUrl(checker, m.issuer, child(path, 'issuer'));
  const clientId = checker.string(m.clientId, child(path, 'clientId'));
  const clientSecret = checker.optionalString(m.clientSecret, child(path, 'clientSecret'), { secret: true });
  const scopes = checker.strings(m.scopes, child(path, 'scopes'), DEFAULT_SCOPES);
  if (scopes !== undefined && !scopes.includes('openid'))
    checker.expected(child(path, 'scopes'), 'a list that includes openid', m.scopes);
  if (issuerUrl === undefined || clientId === undefined || scopes === undefined) return undefined;
  // The issuer is written as the IdP writes it in tokens (`iss`), so compare the text, not the normalised URL.
  const issuer = String(m.issuer);
  const known = identity.oidc.find((o) => o.issuer === issuer);
  if (known === undefined) {
    const names = identity.oidc.map((o) => o.issuer);
    const hint = didYouMean(issuer, names);
    checker.report(
      child(path, 'issuer'),
      `expected one of the identity.oidc issuers (${names.join(', ') || 'none configured'}), found "${issuer}"` +
        (hint === undefined ? '' : ` (did you mean "${hint}"?)`),
    );
    return undefined;
  }
  return {
    issuer,
    clientId,
    ...(clientSecret === undefined ? {} : { clientSecret }),
    scopes: scopes.includes('openid') ? scopes : ['openid', ...scopes],
    groupsClaim: known.groupsClaim,
  };
}

/** The optional `console` section. Absent: the admin listener serves no console. */
export function readConsole(
  checker: Checker,
  value: unknown,
  identity: IdentityConfig,
): ConsoleConfig | undefined {
  const m = checker.mapping(value, 'console', ['publicUrl', 'oidc', 'auditors', 'admins', 'sessionTtl']);
  if (m === undefined) return undefined;
  const publicUrl = readPublicUrl(checker, m.publicUrl, 'console.publicUrl');
  const oidc = m.oidc === undefined ? undefined : readOidc(checker, m.oidc, 'console.oidc', identity);
  const auditors = checker.principals(m.auditors, 'console.auditors', []);
  const admins = checker.principals(m.admins, 'console.admins', []);
  const sessionTtlMs = checker.duration(m.sessionTtl, 'console.sessionTtl', DEFAULT_SESSION_TTL_MS);
  if (sessionTtlMs !== undefined && sessionTtlMs < 60_000)
    checker.expected('console.sessionTtl', 'a duration of at least 1m', m.sessionTtl);
  if (
    publicUrl === undefined ||
    (m.oidc !== undefined && oidc === undefined) ||
    auditors === undefined ||
    admins === undefined ||
    sessionTtlMs === undefined
  )
    return undefined;
  return { publicUrl, ...(oidc === undefined ? {} : { oidc }), auditors, admins, sessionTtlMs };
}
