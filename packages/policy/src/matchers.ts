/**
 * Per-protocol matchers: does one rule's `match` hold for one decoded command? Pure functions, no I/O.
 * Lists match any element, case-insensitively except where a key says otherwise (`hostMounts`, `paths`, SSH and
 * Docker `pattern`; docs/configuration.md, "rules"); every given key must hold.
 */
import {
  ISOLATION_NAMESPACES,
  type DockerCommand,
  type HostNamespace,
  type PostgresCommand,
  type RuleMatch,
  type ShellSimpleCommand,
  type SqlStatementFacts,
  type SshCommand,
} from '@agentgate/core';

/** A rule compiled once: lower-cased lists and compiled regexes. */
export interface CompiledMatch {
  readonly raw: RuleMatch;
  readonly commands?: readonly string[][]; // each entry split into words
  readonly tables?: ReadonlySet<string>;
  readonly functions?: ReadonlySet<string>;
  readonly pattern?: RegExp;
  readonly patternCaseless?: RegExp;
  readonly programs?: ReadonlySet<string>;
  readonly actions?: readonly RegExp[];
  readonly images?: readonly RegExp[];
  readonly capabilities?: ReadonlySet<string>;
  /** `hostNamespaces` as the set of namespaces it names (`true`: the five that break isolation). */
  readonly hostNamespaces?: ReadonlySet<HostNamespace>;
}

const lower = (xs: readonly string[] | undefined): string[] | undefined => xs?.map((x) => x.toLowerCase());

export function compileMatch(match: RuleMatch): CompiledMatch {
  const out: { -readonly [K in keyof CompiledMatch]: CompiledMatch[K] } = { raw: match };
  if (match.commands) out.commands = match.commands.map((c) => c.trim().toUpperCase().split(/\s+/));
  if (match.tables) out.tables = new Set(lower(match.tables));
  if (match.functions) out.functions = new Set(lower(match.functions));
  if (match.pattern !== undefined) {
    out.pattern = new RegExp(match.pattern);
    // SQL keywords and identifiers are case-insensitive to the server, so a SQL pattern must be too.
    out.patternCaseless = new RegExp(match.pattern, 'i');
  }
  if (match.programs) out.programs = new Set(lower(match.programs));
  if (match.actions) out.actions = match.actions.map((a) => globToRegExp(a.toLowerCase()));
  if (match.images) out.images = match.images.map(compileImagePattern);
  if (match.capabilities) out.capabilities = new Set(match.capabilities.map(normalizeCapability));
  if (match.hostNamespaces !== undefined) {
    const named = match.hostNamespaces;
    out.hostNamespaces = new Set(named === true ? ISOLATION_NAMESPACES : named === false ? [] : named);
  }
  return out;
}

/** The namespaces a `hostNamespaces: false` rule, or an allow rule, requires to be absent. */
function isolationBreaking(namespaces: readonly HostNamespace[]): HostNamespace[] {
  return namespaces.filter((n) => ISOLATION_NAMESPACES.includes(n));
}

/** A rule image without a tag or digest matches every tag of that repository. */
function compileImagePattern(rule: string): RegExp {
  const r = rule.trim();
  const hasTag = r.includes('@') || r.lastIndexOf(':') > r.lastIndexOf('/');
  if (hasTag) return globToRegExp(normalizeImageRef(r));
  const repo = normalizeImageRef(r.endsWith('*') ? r : `${r}:latest`).replace(/:latest$/, '');
  const body = repo.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${body}(?:[:@].*)?$`, 'i');
}

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${body}$`, 'i');
}

/** `busybox` → `docker.io/library/busybox:latest`, as the daemon resolves a reference. */
export function normalizeImageRef(ref: string): string {
  let name = ref.trim().toLowerCase();
  let suffix = '';
  const at = name.indexOf('@');
  if (at >= 0) {
    suffix = name.slice(at);
    name = name.slice(0, at);
  } else {
    const lastSlash = name.lastIndexOf('/');
    const colon = name.lastIndexOf(':');
    if (colon > lastSlash) {
      suffix = name.slice(colon);
      name = name.slice(0, colon);
    } else if (!name.endsWith('*')) {
      suffix = ':latest';
    }
  }
  const first = name.split('/')[0] ?? '';
  const hasRegistry =
    name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) name = name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
  return name + suffix;
}

export function normalizeCapability(cap: string): string {
  const c = cap.trim().toUpperCase();
  return c.startsWith('CAP_') ? c.slice(4) : c;
}

/** `DROP` matches `DROP TABLE`; `ALTER SYSTEM` matches `ALTER SYSTEM`, not `ALTER TABLE`. */
function commandMatches(statementCommand: string, wanted: readonly string[][]): boolean {
  const words = statementCommand.toUpperCase().split(/\s+/);
  return wanted.some((w) => w.every((word, i) => words[i] === word));
}

/** Rule `users` matches `users` and `any_schema.users`; rule `public.users` matches `public.users` and bare `users`. */
function relationMatches(relation: string, wanted: ReadonlySet<string>): boolean {
  const rel = relation.toLowerCase();
  if (wanted.has(rel)) return true;
  const dot = rel.lastIndexOf('.');
  const bare = dot >= 0 ? rel.slice(dot + 1) : rel;
  if (wanted.has(bare)) return true;
  if (dot < 0) {
    // An unqualified name may resolve to any schema on the search_path: match qualified rules by name.
    for (const w of wanted) if (w.endsWith(`.${bare}`)) return true;
  }
  return false;
}

function anyMatch(values: readonly string[], wanted: ReadonlySet<string>, cmp = relationMatches): boolean {
  return values.some((v) => cmp(v, wanted));
}

function statementMatches(s: SqlStatementFacts, m: CompiledMatch, dynamicMatchesAll: boolean): boolean {
  // SQL that is only known at run time could be anything: it matches every key.
  if (s.dynamic && dynamicMatchesAll) return true;
  if (m.commands && !commandMatches(s.command, m.commands)) return false;
  if (m.tables && !anyMatch(s.tables, m.tables)) return false;
  if (m.functions && !anyMatch(s.functions, m.functions)) return false;
  if (m.raw.unfilteredWrites === true && !s.unfilteredWrite) return false;
  if (m.raw.unfilteredWrites === false && s.unfilteredWrite) return false;
  if (m.patternCaseless && !m.patternCaseless.test(s.text)) return false;
  return true;
}

export function matchPostgres(cmd: PostgresCommand, m: CompiledMatch, widen: boolean): boolean {
  return cmd.statements.some((s) => statementMatches(s, m, widen && cmd.unknownMatchesAll === true));
}

/** `programs` and `pattern` must hold for the same simple command. */
function simpleCommandMatches(c: ShellSimpleCommand, m: CompiledMatch, unknownMatchesAll: boolean): boolean {
  if (c.program === null && unknownMatchesAll) return true;
  if (m.programs && (c.program === null || !m.programs.has(c.program.toLowerCase()))) return false;
  if (m.pattern && !m.pattern.test(c.text)) return false;
  return true;
}

const shellKeys = (m: CompiledMatch): boolean => m.programs !== undefined || m.pattern !== undefined;

function pathUnder(path: string, prefix: string): boolean {
  const p = path.replace(/\/+$/, '');
  const pre = prefix.replace(/\/+$/, '');
  return pre === '' || p === pre || p.startsWith(pre + '/');
}

export function matchSsh(cmd: SshCommand, m: CompiledMatch, widen: boolean): boolean {
  const unknown = widen && cmd.unknownMatchesAll === true;
  if (m.raw.channels) {
    if (cmd.kind !== 'channel' || cmd.channel === undefined || !m.raw.channels.includes(cmd.channel as never))
      return false;
  }
  if (m.raw.paths) {
    if (cmd.path === undefined || !m.raw.paths.some((p) => pathUnder(cmd.path!, p))) return false;
  }
  if (shellKeys(m)) {
    if (cmd.simpleCommands.length === 0) return false;
    if (!cmd.simpleCommands.some((c) => simpleCommandMatches(c, m, unknown))) return false;
  }
  return true;
}

export function matchDocker(cmd: DockerCommand, m: CompiledMatch, widen: boolean): boolean {
  const r = m.raw;
  if (m.actions && !m.actions.some((a) => a.test(cmd.action))) return false;
  if (r.privileged !== undefined && cmd.privileged !== r.privileged) return false;
  if (r.hostNamespaces === false) {
    if (isolationBreaking(cmd.hostNamespaces).length > 0) return false;
  } else if (m.hostNamespaces && !cmd.hostNamespaces.some((n) => m.hostNamespaces!.has(n))) return false;
  if (r.hostMounts && !cmd.hostMounts.some((h) => r.hostMounts!.some((p) => pathUnder(h, p)))) return false;
  if (m.capabilities) {
    const caps = cmd.capabilities.map(normalizeCapability);
    if (!caps.some((c) => c === 'ALL' || m.capabilities!.has(c) || m.capabilities!.has('ALL'))) return false;
  }
  if (m.images) {
    const refs = cmd.images.map(normalizeImageRef);
    if (!refs.some((ref) => m.images!.some((re) => re.test(ref)))) return false;
  }
  if (shellKeys(m)) {
    const exec = cmd.exec ?? [];
    const unknown = widen && cmd.unknownMatchesAll === true;
    if (!exec.some((c) => simpleCommandMatches(c, m, unknown))) return false;
  }
  return true;
}

/** Match keys that each protocol understands; a rule without `protocol` applies where all its keys do. */
export const protocolKeys = {
  postgres: ['commands', 'tables', 'functions', 'unfilteredWrites', 'pattern'],
  ssh: ['programs', 'pattern', 'channels', 'paths'],
  docker: [
    'actions',
    'privileged',
    'hostMounts',
    'hostNamespaces',
    'capabilities',
    'images',
    'programs',
    'pattern',
  ],
} as const;

/*
 * Allow-list coverage (a listener with `default: deny`): an allow or approve rule permits a part of a command when
 * the part lies within what the rule names. Lists are read as "at most these": every table a statement touches,
 * every host path a container mounts must be named. A part whose content cannot be known before it runs (dynamic
 * SQL, a program computed at run time or given as inline code) lies within no rule that names what runs; only a
 * `pattern` on its text, as written, can permit it.
 */

/** Statements that only steer the session's transaction or read state: permitted without a rule (drivers send them). */
const SESSION_STATEMENTS: ReadonlySet<string> = new Set([
  'BEGIN',
  'START TRANSACTION',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'SET TRANSACTION',
  'SET CONSTRAINTS',
  'SHOW',
  'DISCARD',
  'DEALLOCATE',
  'FETCH',
  'MOVE',
  'CLOSE CURSOR',
]);

export function isSessionStatement(s: SqlStatementFacts): boolean {
  return !s.dynamic && SESSION_STATEMENTS.has(s.command.toUpperCase());
}

function allWithin(values: readonly string[], wanted: ReadonlySet<string>, cmp = relationMatches): boolean {
  return values.length > 0 && values.every((v) => cmp(v, wanted));
}

export function statementCovered(s: SqlStatementFacts, m: CompiledMatch): boolean {
  const namesContent =
    m.commands !== undefined ||
    m.tables !== undefined ||
    m.functions !== undefined ||
    m.raw.unfilteredWrites !== undefined;
  if (s.dynamic && namesContent) return false;
  if (m.commands && !commandMatches(s.command, m.commands)) return false;
  if (m.tables && !allWithin(s.tables, m.tables)) return false;
  if (m.functions && !allWithin(s.functions, m.functions)) return false;
  if (m.raw.unfilteredWrites !== undefined && s.unfilteredWrite !== m.raw.unfilteredWrites) return false;
  if (m.patternCaseless && !m.patternCaseless.test(s.text)) return false;
  return true;
}

/** A simple command a rule with `programs`/`pattern` permits; a rule without them names no program. */
export function simpleCommandCovered(c: ShellSimpleCommand, m: CompiledMatch): boolean {
  return shellKeys(m) && simpleCommandMatches(c, m, false);
}

/** An SSH command other than a shell command line: a forwarding channel or a file write. */
export function sshRequestCovered(cmd: SshCommand, m: CompiledMatch): boolean {
  if (cmd.kind === 'channel') {
    return (
      cmd.channel !== undefined &&
      m.raw.channels?.includes(cmd.channel as never) === true &&
      m.raw.paths === undefined &&
      !shellKeys(m)
    );
  }
  if (cmd.kind === 'file-write' || cmd.kind === 'file-read') {
    return (
      cmd.path !== undefined &&
      m.raw.paths?.some((p) => pathUnder(cmd.path!, p)) === true &&
      m.raw.channels === undefined &&
      !shellKeys(m)
    );
  }
  return false;
}

/**
 * The request itself (action, image, privilege, host access): a rule must name the risky facts it permits —
 * privileged, host mounts, capabilities and isolation-breaking host namespaces are covered only by a rule that
 * names them. A rule naming programs covers only requests that run a command.
 */
export function dockerRequestCovered(cmd: DockerCommand, m: CompiledMatch): boolean {
  const r = m.raw;
  if (m.actions && !m.actions.some((a) => a.test(cmd.action))) return false;
  if (m.images) {
    const refs = cmd.images.map(normalizeImageRef);
    if (refs.length === 0 || !refs.every((ref) => m.images!.some((re) => re.test(ref)))) return false;
  }
  if (cmd.privileged && r.privileged !== true) return false;
  if (cmd.hostMounts.some((h) => !(r.hostMounts ?? []).some((p) => pathUnder(h, p)))) return false;
  const caps = cmd.capabilities.map(normalizeCapability);
  if (caps.some((c) => !(m.capabilities?.has(c) || m.capabilities?.has('ALL')))) return false;
  const permitted = m.hostNamespaces ?? new Set<HostNamespace>();
  if (isolationBreaking(cmd.hostNamespaces).some((n) => !permitted.has(n))) return false;
  if (shellKeys(m) && (cmd.exec ?? []).length === 0) return false;
  return true;
}
