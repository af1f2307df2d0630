/**
 * Errors of the IndexedDB store, one class per condition with a stable `name` (STYLE.md).
 */

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
export class StorageQuotaExceeded extends Error {
  /** Always `'StorageQuotaExceeded'`. */
  override readonly name = 'StorageQuotaExceeded';
  /** Encoded page bytes the aborted batch tried to write. */
  readonly attemptedBytes: number;
  /** `navigator.storage.estimate()` after the failure, when available. */
  readonly usage: number | undefined;
  /** The origin's quota from the same estimate, when available. */
  readonly quota: number | undefined;

  constructor(details: { attemptedBytes: number; usage?: number; quota?: number; cause?: unknown }) {
    const where = details.quota !== undefined ? ` (usage ${details.usage ?? '?'} of quota ${details.quota} bytes)` : '';
    super(
      `IndexedDB quota exceeded writing ${details.attemptedBytes} bytes${where}; the batch was not applied. ` +
        'Free storage or request persistence with navigator.storage.persist() from the page, then retry.',
      { cause: details.cause },
    );
    this.attemptedBytes = details.attemptedBytes;
    this.usage = details.usage;
    this.quota = details.quota;
  }
}

/** A stored page failed validation; the database was written by something else or damaged. */
export class StorageCorrupted extends Error {
  override readonly name = 'StorageCorrupted';
}

/** The store was closed (by `close()`, or because another tab upgrades the database). */
export class StoreClosed extends Error {
  override readonly name = 'StoreClosed';
  readonly dbName: string;

  constructor(dbName: string, reason: string) {
    super(`IndexedDB store "${dbName}" is closed: ${reason}`);
    this.dbName = dbName;
  }
}
