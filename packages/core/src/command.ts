/**
 * A decoded command: what a protocol engine hands the gate. The facts are protocol-specific but protocol-neutral
 * in form, so the policy can match them without knowing any wire format.
 */
export type Protocol = 'postgres' | 'ssh' | 'docker';

/** One SQL statement, top-level or nested (CTE, EXPLAIN, PREPARE body, function body, DO block, ...). */
export interface SqlStatementFacts {
  /** Upper-case command words, e.g. `SELECT`, `DROP TABLE`, `ALTER SYSTEM`, `COPY`, `SET ROLE`. */
  readonly command: string;
  /** Relations referenced, lower-cased as the server folds them: `users` or `public.users`. */
  readonly tables: readonly string[];
  /** Functions called anywhere in the statement, lower-cased, optionally schema-qualified. */
  readonly functions: readonly string[];
  /** UPDATE or DELETE without a WHERE clause. */
  readonly unfilteredWrite: boolean;
  /** The statement text (the slice of the original message), used by `pattern` rules. */
  readonly text: string;
  /** `text` with credential literals replaced, when it has any: what the transcript stores (docs/transcript.md). */
  readonly recordedText?: string;
  /**
   * The statement runs SQL that cannot be known before it runs (dynamic EXECUTE of a computed string).
   * Depending on the listener setting the policy treats it as matching every postgres rule.
   */
  readonly dynamic: boolean;
}

/** One simple command of a shell command line (also used for docker exec). */
export interface ShellSimpleCommand {
  /** Basename of the program; null when it cannot be known before it runs (`$X args`, `$(cmd) args`). */
  readonly program: string | null;
  readonly argv: readonly string[];
  /** The simple command's text as written, used by `pattern` rules. */
  readonly text: string;
}

export type SshChannelKind = 'session' | 'port-forward' | 'agent-forward' | 'x11';

interface CommandBase {
  /** A one-line human-readable rendering, for logs, the approvals list and replay. */
  readonly text: string;
  /**
   * `text` with credentials removed (a role's PASSWORD literal, a `-p<password>` flag), when it had any. Decisions
   * are made on `text`; the transcript, logs and approval requests carry this instead.
   */
  readonly recordedText?: string;
  /** Set when the engine could not decode the command; the gate then denies it (never passes it silently). */
  readonly unanalysable?: string;
  /**
   * When a fact is unknown (a dynamic SQL string, a program computed at run time) this says whether the command
   * counts as matching every rule that could apply (the safe default) — from the listener's config.
   */
  readonly unknownMatchesAll?: boolean;
  /** Protocol-specific detail recorded with the command event (SQL parameters, HTTP path, ...). */
  readonly detail?: Record<string, unknown>;
}

export interface PostgresCommand extends CommandBase {
  readonly protocol: 'postgres';
  readonly statements: readonly SqlStatementFacts[];
}

export interface SshCommand extends CommandBase {
  readonly protocol: 'ssh';
  /** exec request, interactive shell line, a channel open (forwarding), or a file write (sftp/scp). */
  readonly kind: 'exec' | 'shell-line' | 'channel' | 'file-write' | 'file-read' | 'subsystem';
  readonly simpleCommands: readonly ShellSimpleCommand[];
  readonly channel?: SshChannelKind;
  readonly path?: string;
}

/** A namespace a container can share with the host (`--pid host`, `--network host`, `--cgroupns host`, ...). */
export type HostNamespace = 'pid' | 'network' | 'ipc' | 'uts' | 'userns' | 'cgroup';

/**
 * The host namespaces that break a container's isolation: what `hostNamespaces: true` means. The cgroup namespace
 * is not one of them (dockerd reports `CgroupnsMode: host` for every container on cgroup v1 hosts and on daemons
 * started with `--default-cgroupns-mode host`); a rule counts it only when it names it.
 */
export const ISOLATION_NAMESPACES: readonly HostNamespace[] = ['pid', 'network', 'ipc', 'uts', 'userns'];

export interface DockerCommand extends CommandBase {
  readonly protocol: 'docker';
  /** e.g. `container.create`, `container.exec`, `image.pull`; `unknown` for routes not classified. */
  readonly action: string;
  readonly privileged: boolean;
  readonly hostMounts: readonly string[];
  /** The host namespaces the container shares (being created, or entered by an exec), in a fixed order. */
  readonly hostNamespaces: readonly HostNamespace[];
  readonly capabilities: readonly string[];
  readonly images: readonly string[];
  /** For exec creates: the command the container will run. */
  readonly exec?: readonly ShellSimpleCommand[];
}

export type Command = PostgresCommand | SshCommand | DockerCommand;
