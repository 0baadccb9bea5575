/**
 * What each transcript event kind carries: one body type per kind, one spelling per field (docs/transcript.md).
 * Writers append `EventBody[K]`; the store adds the header (`session`, `seq`, `ts`, `type`, `prev`, `hash`).
 * Events written by earlier releases are read back in these shapes (the transcript store upgrades them in one
 * place when it decodes them).
 * The bodies are type aliases, not interfaces, so each is also a `Record<string, unknown>` where one is expected.
 */
import type { ApprovalOutcome } from './approvals.js';
import type { Command } from './command.js';
import type { IdentitySource } from './identity.js';
import type { ClientInfo, SessionSource } from './session.js';
import type { EndCauseKind, WithdrawCause } from './session-end.js';

/** Protocol details an engine records with `session.start`. */
export type SessionStartDetail = {
  /** PostgreSQL: the database and role asked for, and the client's application_name. */
  readonly database?: string;
  readonly user?: string;
  readonly application_name?: string | null;
  /** SSH: the user name the client logged in with, and the upstream account it is bridged to. */
  readonly username?: string;
  readonly upstream?: string;
};

export type SessionStartBody = SessionStartDetail & {
  readonly listener: string;
  /** A protocol, or `admin` for an administrative action (it has no protocol and no client connection). */
  readonly protocol: SessionSource;
  /** The identity's name. */
  readonly identity: string;
  readonly groups: readonly string[];
  readonly identitySource: IdentitySource;
  readonly issuer?: string;
  readonly client: ClientInfo;
  /** ms since the epoch */
  readonly startedAt: number;
};

/**
 * Why the session ended: a lifecycle cause, `recorded` (an administrative action's record is complete),
 * `interrupted` (the gateway stopped without ending it; closed at its next start) or `unknown` (written by a
 * release that did not record causes).
 */
export type SessionEndCause = EndCauseKind | 'recorded' | 'interrupted' | 'unknown';

export type SessionEndBody = {
  readonly cause: SessionEndCause;
  /** The cause in words. */
  readonly reason: string;
  /** credential-expired: when (ISO 8601). */
  readonly expiredAt?: string;
  /** terminated: the administrator. */
  readonly by?: string;
};

/**
 * Any recorded event names the redaction entries that replaced something in it (docs/configuration.md, `redact`);
 * the store adds it, and the gate for credentials a protocol's analysis removed (`builtin:credential-literal`).
 */
export type Redaction = {
  readonly redacted?: readonly string[];
};

/**
 * A decided command: its facts as the engine decoded them, `text` being the recorded text (credentials removed);
 * `unknownMatchesAll` is listener configuration and `recordedText` is what `text` holds. `decision` is how the gate
 * decided it, in the same event so a command costs one hashed record, not two.
 */
export type CommandEventBody = (
  | (DistributiveOmit<Command, 'unknownMatchesAll' | 'recordedText'> & {
      /** Absent only in stores written before it was folded in (read with recordedDecision). */
      readonly decision?: CommandDecision;
    })
  | AdminCommandBody
) &
  Redaction;

/** An administrative action (a configuration reload, an SSH key registered or revoked). */
export type AdminCommandBody = {
  readonly text: string;
  readonly kind: 'admin';
  readonly detail: Readonly<Record<string, unknown>>;
};

/** How the gate decided a command (a `command` event's `decision`). */
export type CommandDecision = {
  readonly action: 'allow' | 'deny' | 'approve';
  /** The deciding rule; built-in ones are `builtin:*`. */
  readonly rule?: string;
  /** Every rule that matched, in configuration order. */
  readonly matched?: readonly string[];
  readonly reason?: string;
};

/**
 * A `decision` event, as stores written before the decision was folded into its `command` event hold it (right
 * after the command). Read, never written: readers get either shape through recordedDecision.
 */
export type DecisionEventBody = CommandDecision & {
  /** seq of the `command` event decided. */
  readonly commandSeq: number;
};

export type ApprovalRequestedBody = {
  readonly approvalId: string;
  readonly rule: string;
  /** The held command's text. */
  readonly command: string;
  readonly approvers: readonly string[];
  /** ms since the epoch */
  readonly requestedAt: number;
  readonly expiresAt: number;
};

export type ApprovalDecidedBody = {
  readonly approvalId: string;
  readonly outcome: ApprovalOutcome;
  /** The approver (`webhook` for the webhook); null when nobody decided (expired, cancelled). */
  readonly by: string | null;
  readonly reason: string | null;
  /** Absent when the wait is unknown (settled by the crash recovery at the next start). */
  readonly waitedMs?: number;
  /** `cancelled`: why the held command was withdrawn (the client left, shutdown, the credential expired, ...). */
  readonly cause?: WithdrawCause['kind'];
};

/** A PostgreSQL statement's result (rows up to the listener's `recordRows`; masked as the client saw them). */
export type SqlResultBody = {
  readonly commandSeq: number | null;
  readonly rowDescription: { readonly names: readonly string[]; readonly typeOids: readonly number[] } | null;
  readonly rows: readonly (readonly unknown[])[];
  readonly rowsOmitted: number;
  readonly commandTag: string | null;
  readonly rowCount: number;
  readonly durationMs: number;
  readonly suspended?: true;
  readonly error?: { readonly code: string; readonly message: string };
};

/** A refused PostgreSQL command: the error the client got in its place. */
export type SqlRefusalBody = {
  readonly commandSeq: number;
  readonly error: { readonly code: string; readonly message: string };
};

/** A Docker API answer (body capped, masked). */
export type HttpResultBody = {
  readonly method: string;
  readonly path: string;
  readonly action: string;
  readonly status: number;
  readonly commandSeq?: number;
  readonly body?: string;
  readonly bodyBytes?: number;
  readonly truncated?: true;
  readonly maskedValues?: number;
};

/**
 * Something that happened on a connection or a channel, named by `event` (`channel.open`, `exit`, `stream.end`,
 * `identity.expired`, ...) with its details. Used by `result`, `notice` and `error` events of that form.
 */
export type OccurrenceBody = {
  readonly event: string;
  /** The SSH channel it belongs to. */
  readonly channel?: string;
  readonly [detail: string]: unknown;
};

export type ResultEventBody = SqlResultBody | SqlRefusalBody | HttpResultBody | OccurrenceBody;

/** The bodies of the event kinds writers append (`session.start`, `session.end` and `io` have their own calls). */
export type EventBody = {
  readonly command: CommandEventBody;
  readonly 'approval.requested': ApprovalRequestedBody;
  readonly 'approval.decided': ApprovalDecidedBody;
  readonly result: ResultEventBody;
  readonly notice: OccurrenceBody;
  readonly error: OccurrenceBody;
};

export type AppendableEventType = keyof EventBody;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Every recorded kind's body as read back, the two the store writes itself included. */
export type StoredEventBody = {
  readonly [K in keyof StoredKinds]: StoredKinds[K] & Redaction;
};

type StoredKinds = EventBody & {
  readonly decision: DecisionEventBody;
  readonly 'session.start': SessionStartBody;
  readonly 'session.end': SessionEndBody;
};
