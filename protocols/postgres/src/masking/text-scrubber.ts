/**
 * Scrubs values out of texts that are not result columns: ErrorResponse / NoticeResponse fields, NOTIFY payloads,
 * ParameterStatus values and COPY rows. Three layers: content detectors; values this session already masked in
 * rows (an error can quote a value the client was shown masked); and, for statements that read masked relations,
 * the value-quoting shapes of PostgreSQL's own messages (quoted literals that are not known identifiers,
 * `Failing row contains (…)`, `Key (…)=(…)`) and numbers, which messages print unquoted (`date out of range:
 * 8675309-01-01`, `large object 8675309 does not exist`, `PID 8675309 is not a PostgreSQL backend process`).
 */
import type { ValueMasker } from '@agentgate/core';

/** Remembered masked values per session (bounded), shortest remembered value. */
const MAX_KNOWN_VALUES = 2000;
const MIN_KNOWN_VALUE_LENGTH = 4;
const REDACTED = '****';
/** A number standing alone (not part of a name like `int4` or a parameter like `$1`). */
const UNQUOTED_NUMBER = /(?<![\w$.])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])/gi;
const WITHHELD = '(detail withheld by agentgate: the statement reads masked columns)';

export class TextScrubber {
  private readonly known = new Set<string>();

  constructor(
    private readonly detectors: ValueMasker | undefined,
    private readonly identifiers: () => ReadonlySet<string>,
  ) {}

  /** Hot path (every masked value): a bounded set, filled once, never churned. */
  remember(value: string): void {
    if (this.known.size < MAX_KNOWN_VALUES && value.length >= MIN_KNOWN_VALUE_LENGTH) this.known.add(value);
  }

  /** Detectors and known values. */
  scrub(text: string): string {
    let out = this.detectors ? this.detectors.mask(text) : text;
    if (this.known.size > 0) {
      for (const value of this.known) if (out.includes(value)) out = out.split(value).join(REDACTED);
    }
    return out;
  }

  /**
   * Details (and internal queries) of errors from statements that read masked relations may quote a value without
   * quotes (`xmlparse` shows the offending input line): kept only in the shapes known to be redactable.
   */
  scrubDetail(text: string): string {
    if (/^(Failing row contains |Key \()/.test(text)) return this.scrubHard(text);
    return WITHHELD;
  }

  /** As `scrub`, plus the value-quoting shapes of server messages. */
  scrubHard(text: string): string {
    const ids = this.identifiers();
    const out = this.scrub(text)
      .replace(/(Failing row contains )\(.*\)/gs, `$1(${REDACTED})`)
      .replace(/(Key \([^)]*\)=)\(.*?\)( already exists| is not present| conflicts)/gs, `$1(${REDACTED})$2`)
      .replace(/"((?:[^"]|"")*)"/g, (whole, inner: string) =>
        ids.has(inner.toLowerCase()) || inner === REDACTED ? whole : `"${REDACTED}"`,
      )
      .replace(UNQUOTED_NUMBER, REDACTED);
    return out;
  }
}
