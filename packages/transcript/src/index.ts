export {
  loadOrCreateSigningKey,
  loadSigningKey,
  readSigningKeyPublicJwks,
  rotateSigningKey,
  verifyWithJwks,
  type RotatedKey,
} from './signing-key.js';
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
export { openStoreForReading, type StoreForReading } from './read-only-store.js';
export type {
  CommitFeed,
  FeedBatch,
  FeedCheckpoint,
  FeedCommit,
  FeedEvent,
  FeedReadOptions,
  FeedRemoval,
  FeedSpan,
} from './feed-reader.js';
export {
  openSessionIndex,
  sessionIndexPath,
  type ActivityBucket,
  type SessionIndex,
  type SessionIndexOptions,
  type SessionIndexStatus,
} from './session-index/session-index.js';
export type {
  IndexFilter,
  IndexPage,
  IndexPageRequest,
  IndexedSession,
} from './session-index/index-query.js';
export { searchTerms } from './session-index/text-search.js';
export {
  verifyStore,
  type VerifyReport,
  type VerifyProblem,
  type ProblemKind,
  type VerifySource,
} from './verify.js';
export type { StoreVerifyReport } from './store-verification.js';
export type { PruneOptions, PruneOutcome } from './prune.js';
export type { PrunedSession, PrunedSummary, PruneReport } from './prune-records.js';
export type { RecordedKey } from './key-history.js';
export { storeLockHolder } from './store-lock.js';
export {
  VerificationKeys,
  UnknownKeyError,
  loadJwks,
  type KeyInfo,
  type KeySource,
} from './verification-keys.js';
export { isDeniedApproval } from './session-counts.js';
export { upgradeLegacyProtocol } from './legacy-events.js';
export {
  jsonlLineHashMatches,
  eventKey,
  decodeEvent,
  attachIoData,
  hasExternalIoData,
  type CheckpointRecord,
} from './event-codec.js';
export { exportJsonl, exportAsciicast, hasTerminalOutput, type AsciicastOptions } from './exporters.js';
export { canonicalJson } from './canonical-json.js';
export { jwsKeyId } from './jws-key-id.js';
export { ioMaxBytes, ioMaxDelayMs } from './session-recorder.js';
