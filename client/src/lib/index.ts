export { ProgressClient, ApiError } from './ProgressClient.js';
export type {
  ClientErrorInfo,
  ConnectionProblem,
  ConnectionState,
  MessageMeta,
  ProgressClientEvents,
  ProgressClientOptions,
  Transport,
} from './ProgressClient.js';
export * from './messages.js';
export { applyMessage, applySnapshot, dropFinished, isFinished, jobLabel, sortJobs } from './jobs.js';
export { activeCount, orderJobs, repeatNumbers } from './listing.js';
export type { JobMap, JobView } from './jobs.js';
export { MemoryStorage, storageKey } from './persist.js';
export type { StorageLike } from './persist.js';
export { tokenSubject } from './token.js';
export { SeqCursor } from './cursor.js';
export type { SeqOrigin, SeqVerdict } from './cursor.js';
export * from './format.js';
