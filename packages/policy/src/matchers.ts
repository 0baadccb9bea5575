/**
 * Per-protocol matchers: does one rule's `match` hold for one decoded command? Pure functions, no I/O.
 * Lists match any element, case-insensitively (SPEC §3); every given key must hold.
 */
import type {
  DockerCommand,
  PostgresCommand,
  RuleMatch,
  ShellSimpleCommand,
  SqlStatementFacts,
  SshCommand,
  TestCommand,
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
  return out;
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
  if (r.hostNamespaces !== undefined && cmd.hostNamespaces !== r.hostNamespaces) return false;
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

export function matchTest(cmd: TestCommand, m: CompiledMatch): boolean {
  if (m.pattern && !m.pattern.test(cmd.text)) return false;
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
  test: ['pattern'],
} as const;
