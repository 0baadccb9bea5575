/**
 * The validated configuration (docs/configuration.md). `@agentgate/config` turns YAML into this shape, with defaults applied,
 * `${env:…}` expanded and file paths resolved against the config file's directory.
 */
import type { HostNamespace, Protocol, SshChannelKind } from './command.js';
import type { PrincipalRef } from './identity.js';

export type FailMode = 'closed' | 'open';

export interface StoreConfig {
  readonly path: string;
  readonly failMode: FailMode;
  /** A signed checkpoint is written at least this often (ms) for every open session. */
  readonly checkpointIntervalMs: number;
  /**
   * Least time between the starts of two commits nothing waits for (ms): what a process crash can lose, traded
   * against the CPU every commit costs. Absent: the store's default (docs/configuration.md, store).
   */
  readonly commitWindowMs?: number;
  /** Prune sessions on a schedule, once a backup or export holds them (docs/configuration.md, store). */
  readonly retention?: RetentionConfig;
}

export interface RetentionConfig {
  /** Sessions that ended longer ago than this (ms) are pruned. */
  readonly keepMs: number;
  /** Where backups and exports of the store are: only sessions found intact there are pruned. */
  readonly coveredBy: string;
  /** How often the gateway prunes (ms). */
  readonly intervalMs: number;
}

export interface AdminConfig {
  /** `host:port`. */
  readonly listen: string;
}

/** How `serve` stops on SIGTERM (docs/configuration.md, `shutdown`). */
export interface ShutdownConfig {
  /** How long open sessions may go on after the listeners close, before they are ended (0: end them at once). */
  readonly drainTimeoutMs: number;
}

export interface OidcIssuerConfig {
  readonly issuer: string;
  readonly audience: string;
  /** An http(s) URL or a file path. */
  readonly jwks: string;
  readonly groupsClaim: string;
  /** Allowed clock skew for exp/nbf, seconds. */
  readonly clockSkewSeconds: number;
}

export interface StaticTokenConfig {
  readonly name: string;
  /** Lower-case hex SHA-256 of the token. */
  readonly sha256: string;
  readonly groups: readonly string[];
}

export interface SshKeyConfig {
  readonly name: string;
  /** `ssh-ed25519 AAAA… [comment]` */
  readonly publicKey: string;
  readonly groups: readonly string[];
}

export interface IdentityConfig {
  readonly oidc: readonly OidcIssuerConfig[];
  readonly tokens: readonly StaticTokenConfig[];
  readonly sshKeys: readonly SshKeyConfig[];
}

/**
 * `agentgate`: the documented JSON event (docs/cli.md, approval webhook). `slack`: a Slack-compatible message
 * (`text` and `blocks` with the request's links), for an incoming-webhook URL of a chat channel.
 */
export type WebhookFormat = 'agentgate' | 'slack';

export interface WebhookConfig {
  readonly url: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly format: WebhookFormat;
}

export interface ApprovalsConfig {
  readonly timeoutMs: number;
  readonly approvers: readonly PrincipalRef[];
  readonly webhook?: WebhookConfig;
}

export interface TlsConfig {
  /** PEM file paths. */
  readonly cert: string;
  readonly key: string;
}

/** What happens to a command no rule speaks of: `allow` it, or `deny` it (allow-list mode). */
export type ListenerDefaultAction = 'allow' | 'deny';

/**
 * Caps on connections that have not authenticated yet, enforced where the listener accepts sockets for the engines
 * that say when a connection has authenticated (`ConnectionControl.authenticated`). A connection over either cap is
 * closed at once.
 */
export interface UnauthenticatedLimits {
  /** Connections of the listener not authenticated yet. */
  readonly maxConnections: number;
  /** Of those, from one source address. */
  readonly maxPerSource: number;
}

/** What every listener has, whatever its protocol. */
export interface ListenerBase {
  readonly name: string;
  /** `host:port`, or `unix:/path` where the protocol supports it. */
  readonly listen: string;
  readonly allow: readonly PrincipalRef[];
  /**
   * Absent or `allow`: a command runs unless a deny or approve rule matches it. `deny`: only what allow (or
   * approve) rules permit runs; every other command is refused (docs/configuration.md, "Allow-list mode").
   */
  readonly default?: ListenerDefaultAction;
  /** Absent: connections are not limited before they authenticate (the engine has limits of its own). */
  readonly unauthenticated?: UnauthenticatedLimits;
}

export interface PostgresListenerConfig extends ListenerBase {
  readonly protocol: 'postgres';
  readonly tls?: TlsConfig;
  readonly allowCleartext: boolean;
  readonly upstream: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password?: string;
    readonly database?: string;
    readonly tls?: boolean;
  };
  /** Largest frontend message accepted, bytes. */
  readonly maxMessageBytes: number;
  /** Rows of each result recorded in the transcript; the rest are counted. */
  readonly recordRows: number;
  /** Dynamic SQL that cannot be resolved: `match-all` (treat as matching every rule) or `deny`. */
  readonly dynamicSql: 'match-all' | 'deny';
  /** How long a client may take from connecting to authenticating (ms; PostgreSQL's authentication_timeout). */
  readonly loginTimeoutMs: number;
}

export interface SshListenerConfig extends ListenerBase {
  readonly protocol: 'ssh';
  /** Path of the gateway's host key (ed25519, created if missing). */
  readonly hostKey: string;
  readonly upstream: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly privateKey?: string;
    readonly password?: string;
    /** Pinned upstream host key, `ssh-ed25519 AAAA…`. */
    readonly hostKey: string;
  };
  /** `allow` interactive shells (filtered line by line) or `deny` them (exec-only access). */
  readonly shell: 'allow' | 'deny';
  /** A program that cannot be known before it runs: `match-all` rules with `programs`, or `deny`. */
  readonly unknownPrograms: 'match-all' | 'deny';
  /** Environment variable names (globs) a client may set with `env` requests. */
  readonly envAllow: readonly string[];
  /** Failed authentication attempts a connection may make; the next one closes it (OpenSSH's MaxAuthTries). */
  readonly maxAuthTries: number;
  /** Longest delay before answering an attempt from a source with recent failures; 0 turns the penalty off. */
  readonly authPenaltyMaxMs: number;
}

export interface DockerListenerConfig extends ListenerBase {
  readonly protocol: 'docker';
  readonly tls?: TlsConfig;
  readonly upstream: { readonly socket: string };
  /** A fixed identity for a unix-socket listener (its file mode is the access control). */
  readonly identity?: string;
  /**
   * The fixed identity's groups: those of the `identity.tokens` / `identity.sshKeys` entries of the same name, so
   * `allow: [group:…]` and rules' `who:` treat it like that identity connecting with its token.
   */
  readonly identityGroups?: readonly string[];
  /** File mode for a unix socket listener, e.g. 0o660. */
  readonly socketMode: number;
  readonly maxBodyBytes: number;
  readonly unknownPrograms: 'match-all' | 'deny';
  /** How long a request head may take, from the connection's start or the request's first byte (ms; 0: no limit). */
  readonly headersTimeoutMs: number;
  /** How long a connection may wait for its next request before it is closed (ms; 0: no limit). */
  readonly keepAliveTimeoutMs: number;
  /** How long a session waits for another connection of its client after the last one closed (ms). */
  readonly sessionLingerMs: number;
}

export type ListenerConfig = PostgresListenerConfig | SshListenerConfig | DockerListenerConfig;

export interface RuleMatch {
  // postgres
  readonly commands?: readonly string[];
  readonly tables?: readonly string[];
  readonly functions?: readonly string[];
  readonly unfilteredWrites?: boolean;
  // postgres, ssh, docker exec
  readonly pattern?: string;
  // ssh, docker exec
  readonly programs?: readonly string[];
  // ssh
  readonly channels?: readonly Exclude<SshChannelKind, 'session'>[];
  /** ssh file transfers: path prefixes. */
  readonly paths?: readonly string[];
  // docker
  readonly actions?: readonly string[];
  readonly privileged?: boolean;
  readonly hostMounts?: readonly string[];
  /** `true`: any of pid, network, ipc, uts, userns; a list: any of those named (cgroup only when named). */
  readonly hostNamespaces?: boolean | readonly HostNamespace[];
  readonly capabilities?: readonly string[];
  readonly images?: readonly string[];
}

export type RuleAction = 'allow' | 'deny' | 'approve';

export interface RuleConfig {
  readonly name: string;
  /** Absent: the rule applies to every protocol whose facts its match keys speak of. */
  readonly protocol?: Protocol;
  /** Absent: every listener. */
  readonly listeners?: readonly string[];
  readonly who?: readonly PrincipalRef[];
  readonly match: RuleMatch;
  readonly action: RuleAction;
  /** Overrides `approvals.approvers` for this rule. */
  readonly approvers?: readonly PrincipalRef[];
}

export type MaskStrategy = 'replace' | 'partial' | 'hash';

export interface MaskingRuleConfig {
  readonly name: string;
  /** `table.column`, `schema.table.column`, `*` globs. */
  readonly columns: readonly string[];
  readonly detectors: readonly string[];
  readonly replacement: string;
  readonly strategy: MaskStrategy;
  readonly who?: readonly PrincipalRef[];
  readonly listeners?: readonly string[];
}

/**
 * One operator-defined redaction entry: a regex (its `secret` named group, when it has one, is the part replaced;
 * otherwise the whole match) or a list of masking content detectors by name.
 */
export interface RedactEntryConfig {
  readonly name: string;
  readonly pattern?: string;
  readonly ignoreCase?: boolean;
  readonly detectors?: readonly string[];
}

/** What is replaced before anything is recorded, logged or sent to approvers (docs/configuration.md, `redact`). */
export interface RedactConfig {
  /** The built-in entries for well-known credential shapes (on unless turned off). */
  readonly defaults: boolean;
  /** Built-in entries turned off by name. */
  readonly disable: readonly string[];
  readonly entries: readonly RedactEntryConfig[];
}

/** Sign-in to the web console through the IdP's own login page (OIDC authorization code flow with PKCE). */
export interface ConsoleOidcConfig {
  /** The IdP's issuer URL, discovered at `/.well-known/openid-configuration`; one of `identity.oidc[].issuer`. */
  readonly issuer: string;
  readonly clientId: string;
  /** Absent: a public client that authenticates with PKCE alone. */
  readonly clientSecret?: string;
  readonly scopes: readonly string[];
  /** The claim that carries groups: that of the `identity.oidc` entry of the same issuer. */
  readonly groupsClaim: string;
}

/** The web console on the admin listener (docs/configuration.md, `console`). */
export interface ConsoleConfig {
  /** The origin people open, e.g. `https://agentgate.example.com`; links in webhooks and logs start with it. */
  readonly publicUrl: string;
  /** Absent: only one-time links (`agentgate console link`) sign people in. */
  readonly oidc?: ConsoleOidcConfig;
  /** Who may read sessions, replay them and see the overview. */
  readonly auditors: readonly PrincipalRef[];
  /** Who may end a live session (and read everything auditors read). */
  readonly admins: readonly PrincipalRef[];
  /** The longest a browser session lasts; it ends earlier when the IdP token it came from expires. */
  readonly sessionTtlMs: number;
}

export interface AgentgateConfig {
  /** Absolute path of the file this was loaded from. */
  readonly file: string;
  readonly store: StoreConfig;
  readonly signingKey: string;
  readonly admin: AdminConfig;
  readonly shutdown: ShutdownConfig;
  readonly identity: IdentityConfig;
  readonly approvals: ApprovalsConfig;
  readonly listeners: readonly ListenerConfig[];
  readonly rules: readonly RuleConfig[];
  readonly masking: readonly MaskingRuleConfig[];
  readonly redact: RedactConfig;
  /** Absent: no web console. */
  readonly console?: ConsoleConfig;
  /** Absent: a single gateway; present: this replica ships its record to the fleet's PostgreSQL. */
  readonly fleet?: FleetConfig;
}

/** How a fleet replica reaches the shared PostgreSQL database (docs/configuration.md, `fleet`). */
export type FleetPostgresConfig =
  | { readonly url: string }
  | {
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly password?: string;
      /** read when connecting, so the secret stays out of the configuration */
      readonly passwordFile?: string;
      readonly database: string;
      /** true: TLS with the system's CAs; `{ ca }`: TLS trusting that PEM file */
      readonly tls?: boolean | { readonly ca: string };
    };

export interface FleetConfig {
  readonly postgres: FleetPostgresConfig;
  /** This replica's name in the fleet: unique per replica, stable across restarts. */
  readonly node: string;
  /** A command to hold while the fleet database is unreachable: refused (`closed`) or held on this replica. */
  readonly approvalsWhenDown: 'closed' | 'local';
  /** The longest wait between two shipping attempts while the fleet database is unreachable. */
  readonly shipRetryMaxMs: number;
}
