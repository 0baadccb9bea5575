/**
 * The seam where values leave the gateway toward the client: RowDescription, DataRow, CopyData, ErrorResponse,
 * NoticeResponse and NotificationResponse pass through a ResultFilter. Masking (src/masking/) plugs in here without
 * touching the session state machine; the default filter is inactive, so bytes are forwarded untouched.
 */
import type { SessionMasker } from '@agentgate/core';
import type { FieldDescription } from './codec/decode.js';

export interface ResultFilterContext {
  /** The RowDescription in force for DataRow messages (null when the client did not Describe). */
  readonly fields: readonly FieldDescription[] | null;
  /** What `checkStatement` returned as `plan` for the command these messages answer. */
  readonly plan?: unknown;
}

export type StatementCheckResult = { readonly refusal: string } | { readonly plan: unknown };

export interface ResultFilter {
  /** False: the session skips the filter entirely and forwards upstream bytes as received (the fast path). */
  readonly active: boolean;
  /**
   * Called with one whole message (type byte, length, body) of the kinds listed above; returns the message to send
   * (the same Buffer when unchanged) or a replacement, e.g. an ErrorResponse refusing a result it cannot make safe.
   */
  filter(type: number, message: Buffer, ctx: ResultFilterContext): Buffer;
  /** Awaited once before the session's first ReadyForQuery (e.g. to load a catalog); a failure ends the session. */
  prepare?(): Promise<void>;
  /**
   * Called for each allowed Query / Execute text before it is forwarded: a `refusal` denies it (42501, the
   * refusal as message); a `plan` is handed back in `ctx.plan` for the messages that answer it.
   */
  checkStatement?(text: string): StatementCheckResult | Promise<StatementCheckResult>;
}

export const passThroughFilter: ResultFilter = { active: false, filter: (_type, message) => message };

export interface ResultFilterSession {
  readonly masker: SessionMasker;
  readonly listener: string;
  readonly database: string;
}

/** Builds a session's filter; the masking package provides one for active maskers. */
export type ResultFilterFactory = (session: ResultFilterSession) => ResultFilter;
