export { loadOrCreateSigningKey, verifyWithJwks } from './signing-key.js';
export {
  openTranscriptStore,
  isDeniedDecision,
  type TranscriptStore,
  type TranscriptStoreOptions,
  type TranscriptStoreHooks,
  type SessionSummary,
  type SessionFilter,
  type StoreHealth,
} from './transcript-store.js';
export type { VerifyReport, VerifyProblem, ProblemKind } from './verify.js';
export { jsonlLineHashMatches, type CheckpointRecord } from './event-codec.js';
export { exportJsonl, exportAsciicast, type AsciicastOptions } from './exporters.js';
export { canonicalJson } from './canonical-json.js';
export { ioMaxBytes, ioMaxDelayMs } from './session-recorder.js';
