// The light client's public surface: re-exports only (docs/style.md).
export { createLightClient, LightClient, prefixRange, preloadLightClient } from './light-client.ts';
export type { DiscoveryOptions } from './discovery.ts';
export type { LightClientOptions, CallOptions, ReadOptions, Update, GetResult, KeyRangeOption, LiveTuning, ProveResult, StatusResult, SyncTuning, VerifiedResult } from './light-client.ts';
export type { LightClientEventMap, LightClientEventName, ProgressEvent, ProgressSegment, SyncedEvent, PeerEvent, AnnouncementEvent, ErrorEvent, RoleEvent, ClientRole, LiveStateEvent, PendingStateEvent, GapFillEvent, DeltaUpdate } from './events.ts';
export {
  LightClientError,
  ClientClosed,
  NoPeers,
  InvalidRemoteProof,
  KeyOutOfScope,
  WrongDatabase,
  InsufficientStorage,
  WorkerFailed,
  ProofUnavailable,
  RemoteWorkerError,
} from './errors.ts';
export { StorageQuotaExceeded } from './idb/errors.ts';
export { verifySingleKey, singleKeyRequest } from './single-key.ts';
export { LogApi } from './history/api.ts';
export type { LogFetchOptions } from './history/api.ts';
export type { LogOperation, LogFetchProgress } from '../sync/log/fetch.ts';
export { StoredLogMismatch, LogIndexMismatch } from '../sync/log/fetch.ts';
