/**
 * Redaction of what is recorded: credentials in command text, event bodies and stream bytes are replaced before
 * they reach the transcript, logs, approval requests and webhooks. Decisions are made on the real text; only the
 * record is redacted (docs/configuration.md, `redact`). `@agentgate/masking` implements it; the transcript store
 * applies it to every event it records.
 */

/** A redacted value and the names of the redaction entries that fired (never the values). */
export interface Redacted<T> {
  readonly value: T;
  /** Entry names in the order they first fired, without repeats; empty when nothing was replaced. */
  readonly fired: readonly string[];
}

/** Bytes of one stream that may be recorded now. */
export interface ReleasedBytes {
  /** In stream order; secrets are overwritten with `*` of the same length (stream lengths stay intact). */
  readonly pieces: readonly Buffer[];
  readonly fired: readonly string[];
}

/**
 * One direction of one stream (a channel's stdout, a COPY's data, …). It holds back the bounded tail that may be
 * the start of a secret still arriving, so a secret split across chunks is found; it never changes what the
 * client receives, only when the record sees the bytes.
 */
export interface StreamRedactor {
  /** The bytes that can be recorded after `data`; the caller keeps `data` unchanged. */
  push(data: Buffer): ReleasedBytes;
  /**
   * Release what is held. `idle`: keep only bytes that may still become part of a secret (the stream is quiet;
   * more may come). `end`: the stream is over, everything goes (a secret cut off by the end is redacted).
   */
  release(mode: 'idle' | 'end'): ReleasedBytes;
  /** Bytes currently held back. */
  readonly held: number;
  /** Nothing held and no secret in progress: the stream can be dropped and made anew for its next bytes. */
  readonly settled: boolean;
}

export interface Redactor {
  /** False when no entry is configured: callers skip all redaction work. */
  readonly active: boolean;
  text(text: string): Redacted<string>;
  /**
   * Every string inside a JSON-like value (objects, arrays, nested). A list of strings is matched as one line (its
   * items joined by spaces) so that a flag and its value in separate argv items are recognised. Returns the same
   * object when nothing fired; never mutates its input.
   */
  body<T>(value: T): Redacted<T>;
  stream(): StreamRedactor;
}

export const noRedaction: Redactor = {
  active: false,
  text: (value) => ({ value, fired: [] }),
  body: (value) => ({ value, fired: [] }),
  stream: () => ({
    push: (data) => ({ pieces: [data], fired: [] }),
    release: () => ({ pieces: [], fired: [] }),
    held: 0,
    settled: true,
  }),
};
