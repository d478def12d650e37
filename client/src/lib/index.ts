export { ProgressClient, ApiError } from './ProgressClient';
export type {
  ClientErrorInfo,
  ConnectionState,
  MessageMeta,
  ProgressClientEvents,
  ProgressClientOptions,
  Transport,
} from './ProgressClient';
export * from './messages';
export { applyMessage, applySnapshot, isFinished, jobLabel, sortJobs } from './jobs';
export type { JobMap, JobView } from './jobs';
export { MemoryStorage, storageKey } from './persist';
export type { StorageLike } from './persist';
export { tokenSubject } from './token';
export { SeqCursor } from './cursor';
export type { SeqOrigin, SeqVerdict } from './cursor';
export * from './format';
