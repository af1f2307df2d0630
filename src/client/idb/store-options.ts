/**
 * The packed store's options (packed-store.ts), their defaults and checks, and what
 * `estimate()` reports.
 */

export interface PackedIdbStoreOptions {
  /**
   * Target size of a page record in bytes (at least 256). Default: the size the database was
   * last written with (`PageMeta.pageBytes`), else 32 KiB.
   */
  pageBytes?: number;
  /** Budget of the decoded-page cache in bytes (default 16 MiB). */
  cacheBytes?: number;
  /** Transaction durability (default 'relaxed': the batch is atomic either way). */
  durability?: IDBTransactionDurability;
  /**
   * Log records kept before they are compacted into the pages, in bytes (default 48 MiB; 0:
   * no write log, every batch rewrites its pages). The overlay holds at most this much.
   */
  logBytes?: number;
  /** Pages one compaction transaction rewrites at most (default 64, 2 MiB of 32 KiB pages). */
  compactPages?: number;
  /**
   * A batch goes to the log when writing its pages would move more than this many times its
   * own bytes (default 4; 0: every batch of at most `logBytes`).
   */
  logAmplification?: number;
}

export interface StoreEstimate {
  /** From `navigator.storage.estimate()` (the whole origin), when available. */
  usage: number | undefined;
  quota: number | undefined;
  /** quota - usage, when both are known. */
  available: number | undefined;
  /** Page records in this store, and the cache's share. */
  pages: number;
  cachedPages: number;
  cachedBytes: number;
  /** Write-log records not yet compacted, in bytes, and the keys they hold. */
  logBytes: number;
  overlayKeys: number;
  /** Compactions finished since open. */
  compactions: number;
}

/** The options with every default filled in but `pageBytes`, which may come from the database. */
export type ResolvedStoreOptions = Required<Omit<PackedIdbStoreOptions, 'pageBytes'>> & { pageBytes: number | undefined };

export const DEFAULT_PAGE_BYTES = 32 * 1024;
const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
const DEFAULT_LOG_BYTES = 48 * 1024 * 1024;
const DEFAULT_COMPACT_PAGES = 64;
/**
 * A batch goes to the log when writing its pages would move this many times its own bytes:
 * a sync's sorted range (2,048 key-values in a few pages) stays on the pages, a live delta
 * (keys all over the key space, one page each) goes to the log.
 */
const DEFAULT_LOG_AMPLIFICATION = 4;

/** Checks the options and fills in the defaults; throws `RangeError` on a value out of range. */
export function resolveStoreOptions(options: PackedIdbStoreOptions): ResolvedStoreOptions {
  const pageBytes = options.pageBytes;
  if (pageBytes !== undefined && (!Number.isInteger(pageBytes) || pageBytes < 256)) throw new RangeError(`expected pageBytes to be an integer >= 256, got ${pageBytes}`);
  const logBytes = options.logBytes ?? DEFAULT_LOG_BYTES;
  if (!(logBytes >= 0)) throw new RangeError(`expected logBytes >= 0, got ${logBytes}`);
  const compactPages = options.compactPages ?? DEFAULT_COMPACT_PAGES;
  if (!Number.isInteger(compactPages) || compactPages < 1) throw new RangeError(`expected compactPages to be an integer >= 1, got ${compactPages}`);
  const logAmplification = options.logAmplification ?? DEFAULT_LOG_AMPLIFICATION;
  if (!(logAmplification >= 0)) throw new RangeError(`expected logAmplification >= 0, got ${logAmplification}`);
  return { pageBytes, cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES, durability: options.durability ?? 'relaxed', logBytes, compactPages, logAmplification };
}
