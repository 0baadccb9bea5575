/**
 * @agentgate/masking: column rules and content detectors behind the protocol-neutral core `MaskingService`.
 * Compile once (`createMaskingService`), pick per session (`forSession`), look up per column (`forColumn`,
 * cached), apply per value (`mask` returns the same string object when nothing matched).
 */
export { createMaskingService, DEFAULT_REPLACEMENT, type MaskingServiceOptions } from './masking-service.js';
export { KNOWN_DETECTORS, DETECTORS, luhnValid, ibanValid, type DetectorDefinition } from './detectors.js';
export { compileColumnPattern, type ColumnPattern } from './column-pattern.js';
export {
  createRedactor,
  createRedactorFromEntries,
  redactionEntries,
  DEFAULT_REDACTIONS,
  DEFAULT_REDACTION_NAMES,
  DEFAULT_PREFIX,
  REDACTED_TEXT,
  HOLD_LIMIT,
  type RedactionEntry,
} from './redaction/index.js';
