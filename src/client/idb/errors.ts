/**
 * Errors of the IndexedDB store, one class per condition with a stable `name` (docs/style.md).
 */
import { errorClass, ProofsyncError, registerError } from '../../core/errors.ts';

/** The figures of a quota failure. */
export type StorageQuotaFigures = {
  /** Encoded page bytes the aborted batch tried to write. */
  attemptedBytes: number;
  /** `navigator.storage.estimate()` usage after the failure, when available. */
  usage?: number;
  /** The origin's quota from the same estimate, when available. */
  quota?: number;
};

/**
 * The origin's storage quota ran out during a write. The write's transaction was aborted, so
 * none of its operations landed: the store still holds the last committed state and stays
 * readable. Free space, or ask the page to call `navigator.storage.persist()`, then retry.
 * Raised in the worker, it reaches the page as an error with this `name`: match on the name there.
 *
 * @example
 * client.on('error', async ({ error }) => {
 *   if (error.name === 'StorageQuotaExceeded') {
 *     if (await navigator.storage.persist()) await client.resume();
 *   }
 * });
 */
export class StorageQuotaExceeded extends ProofsyncError<StorageQuotaFigures> {
  /** Always `'StorageQuotaExceeded'`. */
  override readonly name = 'StorageQuotaExceeded';

  constructor(details: { attemptedBytes: number; usage?: number; quota?: number; cause?: unknown }) {
    const where = details.quota !== undefined ? ` (usage ${details.usage ?? '?'} of quota ${details.quota} bytes)` : '';
    super(
      `IndexedDB quota exceeded writing ${details.attemptedBytes} bytes${where}; the batch was not applied. ` +
        'Free storage or request persistence with navigator.storage.persist() from the page, then retry.',
      { attemptedBytes: details.attemptedBytes, usage: details.usage, quota: details.quota },
      { cause: details.cause },
    );
  }

  /** Encoded page bytes the aborted batch tried to write. */
  get attemptedBytes(): number {
    return this.details!.attemptedBytes;
  }
  /** `navigator.storage.estimate()` after the failure, when available. */
  get usage(): number | undefined {
    return this.details?.usage;
  }
  /** The origin's quota from the same estimate, when available. */
  get quota(): number | undefined {
    return this.details?.quota;
  }
}
registerError(StorageQuotaExceeded, 'StorageQuotaExceeded');

/** A stored page failed validation; the database was written by something else or damaged. */
export const StorageCorrupted = errorClass(ProofsyncError, 'StorageCorrupted');

/**
 * No proofsync store to read: the IndexedDB database does not exist, has an older schema, or
 * was created but never initialised. A read-only reader (store-reader.ts) never creates or
 * migrates a database: the worker's store does that, and answers instead.
 */
export const StoreMissing = errorClass(ProofsyncError, 'StoreMissing');

/** The store was closed (by `close()`, or because another tab upgrades the database). */
export class StoreClosed extends ProofsyncError<{ dbName: string; reason: string }> {
  override readonly name = 'StoreClosed';

  constructor(dbName: string, reason: string) {
    super(`IndexedDB store "${dbName}" is closed: ${reason}`, { dbName, reason });
  }

  /** The IndexedDB database's name. */
  get dbName(): string {
    return this.details!.dbName;
  }
}
registerError(StoreClosed, 'StoreClosed');
