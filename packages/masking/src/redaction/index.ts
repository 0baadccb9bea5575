export { createRedactorFromEntries, REDACTED_TEXT } from './redactor.js';
export {
  DEFAULT_REDACTIONS,
  DEFAULT_REDACTION_NAMES,
  detectorEntry,
  type RedactionEntry,
} from './entries.js';
export { HOLD_LIMIT } from './stream-redactor.js';
export { createRedactor, redactionEntries, DEFAULT_PREFIX } from './from-config.js';
