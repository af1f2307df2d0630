/**
 * The IndexedDB layout of a proofsync light client: ONE schema type from which every store's
 * types flow (idb's `DBSchema`), and the migrations that build it. docs/design.md "Storage in the
 * browser".
 *
 * - `pages`: the verified state as packed key-value pages (page.ts), keyed by each page's
 *   fence (its lowest possible key, as binary). Keys of the KVStore seam, including trie nodes,
 *   values, history and sync progress, all live here, so one transaction covers data + progress.
 * - `meta`: small named records about the database itself (format, page size, commit `seq`).
 * - `log` (version 2): the packed store's write log (write-log.ts): one record per small
 *   scattered batch, keyed by the `seq` of the commit that wrote it, replayed over the pages at
 *   open; records below `PageMeta.logBase` are compacted into the pages and deleted.
 * - `pending`: received deltas whose parents are missing (docs/design.md "Trust model"), never read
 *   as state; bounded by its owner, which expires the oldest through the `by-received` index.
 *
 * To add version 3: bump `SCHEMA_VERSION` and add `migrations[3]`; `upgrade` runs every step
 * from the stored version up, inside the one versionchange transaction.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';

export const SCHEMA_VERSION = 2;

/** Binary keys come back from IndexedDB as `ArrayBuffer`; they sort byte-wise (unsigned). */
export type BinaryKey = ArrayBuffer;

/** The `meta` record describing the pages store. */
export const PAGE_META_KEY = 'pages';

export interface PageMeta {
  /** Page format of page.ts. */
  format: number;
  /** Target page size of the last write to the pages; a store opened without `pageBytes` takes it. */
  pageBytes: number;
  /**
   * Incremented by every committed write, in the same transaction. A connection whose index
   * was loaded at another `seq` is stale (another tab or worker wrote) and reloads it.
   */
  seq: number;
  /** The `seq` of the last commit that changed page records (absent: `seq` of version 1). */
  pageSeq?: number;
  /** Log records below this are in the pages (absent: 0). */
  logBase?: number;
}

export interface PendingDeltaRecord {
  /** The encoded delta, exactly as received (its id is re-derived from it). */
  delta: Uint8Array;
  /** Milliseconds since the epoch, from the caller's clock. */
  receivedAt: number;
}

export interface ProofsyncSchema extends DBSchema {
  pages: { key: BinaryKey; value: Uint8Array };
  meta: { key: typeof PAGE_META_KEY; value: PageMeta };
  log: { key: number; value: Uint8Array };
  pending: { key: BinaryKey; value: PendingDeltaRecord; indexes: { 'by-received': number } };
}

export type ProofsyncStoreName = StoreNames<ProofsyncSchema>;
export type ProofsyncDatabase = IDBPDatabase<ProofsyncSchema>;
type UpgradeTransaction = IDBPTransaction<ProofsyncSchema, ProofsyncStoreName[], 'versionchange'>;
type Migration = (db: ProofsyncDatabase, tx: UpgradeTransaction) => void;

/** `migrations[v]` turns a version v-1 database into version v. */
export const migrations: Readonly<Record<number, Migration>> = {
  1: (db) => {
    db.createObjectStore('pages');
    db.createObjectStore('meta');
    db.createObjectStore('pending').createIndex('by-received', 'receivedAt');
  },
  2: (db) => {
    db.createObjectStore('log');
  },
};

/** Runs every migration after `oldVersion` up to `newVersion`, in order. */
export function upgrade(db: ProofsyncDatabase, oldVersion: number, newVersion: number, tx: UpgradeTransaction): void {
  for (let v = oldVersion + 1; v <= newVersion; v++) {
    const step = migrations[v];
    if (!step) throw new RangeError(`no migration to schema version ${v}`);
    step(db, tx);
  }
}

/** Converts a key to the exact `ArrayBuffer` IndexedDB compares (a view's bytes only). */
export function toBinaryKey(key: Uint8Array): BinaryKey {
  return key.byteOffset === 0 && key.byteLength === key.buffer.byteLength && key.buffer instanceof ArrayBuffer
    ? key.buffer
    : (key.slice().buffer as ArrayBuffer);
}

export interface OpenSchemaOptions {
  /** Another connection holds an older version open; it must close before this one opens. */
  onBlocked?: () => void;
  /** This connection blocks a newer version (another tab upgrading): close it promptly. */
  onBlocking?: () => void;
  /** The browser closed the connection abnormally. */
  onTerminated?: () => void;
}

/**
 * Opens (creating or migrating) a proofsync database.
 *
 * @example
 * const db = await openProofsyncDatabase('proofsync:mydb');
 * await db.put('pending', { delta, receivedAt: Date.now() }, toBinaryKey(id));
 */
export function openProofsyncDatabase(name: string, options: OpenSchemaOptions = {}): Promise<ProofsyncDatabase> {
  return openDB<ProofsyncSchema>(name, SCHEMA_VERSION, {
    upgrade: (db, oldVersion, newVersion, tx) => upgrade(db, oldVersion, newVersion ?? SCHEMA_VERSION, tx),
    blocked: options.onBlocked,
    blocking: options.onBlocking,
    terminated: options.onTerminated,
  });
}
