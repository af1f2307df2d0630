/** The light client's IndexedDB storage: schema, packed KVStore, sync lock and channel. */
export { PackedIdbStore, type PackedIdbStoreOptions, type StoreEstimate } from './packed-store.ts';
export { StorageCorrupted, StorageQuotaExceeded, StoreClosed, StoreMissing } from './errors.ts';
export { StoreReader } from './store-reader.ts';
export {
  migrations,
  openProofsyncDatabase,
  PAGE_META_KEY,
  SCHEMA_VERSION,
  toBinaryKey,
  type BinaryKey,
  type OpenSchemaOptions,
  type PageMeta,
  type PendingDeltaRecord,
  type ProofsyncDatabase,
  type ProofsyncSchema,
  type ProofsyncStoreName,
} from './schema.ts';
export { acquireSyncLock, SyncChannel, syncChannelName, syncLockName, waitForSyncLock, type SyncEvent, type SyncLock, type SyncLockOptions } from './locks.ts';
