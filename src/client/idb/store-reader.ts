/**
 * A read-only view of a packed store's database (packed-store.ts) for the page's main thread:
 * a warm restart answers `get(key, { consistency: 'local' })` from it while the worker is still
 * loading, instead of waiting for the worker's entry to compile and evaluate and its store to
 * open (issue 18: 630-950 ms from navigation to the first local get at 1M keys, the worker's
 * boot nearly all of it; bench/startup-trace.ts).
 *
 * What it reads is what the worker's store reads (docs/design.md "Trust model"): the `pages`
 * with the `log` records from `meta.logBase` on replayed over them, every value of which a
 * sync or a live group verified against a signed root before it was written. Never `pending`
 * (deltas whose parents are missing). Each `get` is ONE readonly transaction over `meta`,
 * `pages` and `log`, so it sees one committed state: IndexedDB orders it wholly before or
 * after any readwrite transaction of the worker's store, and a record and the `meta` that
 * names it commit together (packed-store.ts "Consistency").
 *
 * Lean on purpose, for the page's bundle: no page index (one reverse cursor finds the page
 * whose fence is the last <= the key), no cache, no overlay (the log's records are walked
 * newest first and the first that touches the key answers), no `idb` wrapper. It never
 * creates, migrates or writes a database: a missing one is `StoreMissing`, and the caller asks
 * the worker instead.
 */
import { StorageCorrupted, StoreClosed, StoreMissing } from './errors.ts';
import { Page, PAGE_FORMAT } from './page.ts';
import { lastOpOn } from './write-log.ts';

/** Must equal schema.ts `SCHEMA_VERSION` and `PAGE_META_KEY` (not imported: schema.ts loads `idb`). */
export const READER_SCHEMA_VERSION = 2;
export const READER_META_KEY = 'pages';
/** The longest the page's thread scans the write log before it yields (a long task is 50 ms). */
const SLICE_MS = 8;

/** The byte that prefixes a value's key in the store (src/core/node-record.ts `valueKey`: 'v' ++ key). */
export const READER_VALUE_PREFIX = 0x76;

const asPromise = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** Stored meta fields this reader needs (schema.ts `PageMeta`). */
interface MetaRecord {
  format?: unknown;
  logBase?: unknown;
}

export class StoreReader {
  readonly name: string;
  readonly #db: IDBDatabase;
  #closed: string | undefined;

  private constructor(name: string, db: IDBDatabase) {
    this.name = name;
    this.#db = db;
    // a deletion (`clear()`) or an upgrade elsewhere waits for this connection: let it go
    db.onversionchange = () => this.close('another connection deletes or upgrades the database');
    db.onclose = () => this.close('the browser closed the connection');
  }

  /**
   * Opens database `name` read-only. Rejects with `StoreMissing` when it does not exist or has
   * another schema version (the open's upgrade is aborted, so nothing is created).
   *
   * @example
   * const reader = await StoreReader.open('proofsync:inventory');
   * const value = await reader.get(key); // undefined: absent
   * reader.close();
   */
  static open(name: string): Promise<StoreReader> {
    return new Promise((resolve, reject) => {
      let missing = false;
      let req: IDBOpenDBRequest;
      try {
        req = indexedDB.open(name, READER_SCHEMA_VERSION);
      } catch (err) {
        // a newer version than ours stored, an opaque origin, no IndexedDB: not ours to read
        return reject(new StoreMissing(`cannot open IndexedDB database "${name}": ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      }
      req.onupgradeneeded = (e) => {
        missing = true;
        // aborting the versionchange transaction leaves the database as it was (absent: not created)
        req.transaction?.abort();
        void e;
      };
      req.onsuccess = () => resolve(new StoreReader(name, req.result));
      req.onerror = (e) => {
        e.preventDefault();
        reject(
          missing
            ? new StoreMissing(`no proofsync store "${name}" at schema version ${READER_SCHEMA_VERSION}`)
            : new StoreMissing(`cannot open IndexedDB database "${name}": ${req.error?.name ?? 'Error'}: ${req.error?.message ?? ''}`, { cause: req.error }),
        );
      };
    });
  }

  /**
   * `key`'s value in the committed state (undefined: absent). Rejects with `StoreMissing` when
   * the database was never initialised by a store, `StorageCorrupted` on a record no store
   * writes, `StoreClosed` after `close()`.
   */
  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    if (this.#closed) throw new StoreClosed(this.name, this.#closed);
    const storeKey = new Uint8Array(key.length + 1);
    storeKey[0] = READER_VALUE_PREFIX;
    storeKey.set(key, 1);
    let tx: IDBTransaction;
    try {
      tx = this.#db.transaction(['pages', 'meta', 'log'], 'readonly');
    } catch (err) {
      // NotFoundError: a database of that name without our stores
      if ((err as DOMException)?.name === 'NotFoundError') throw new StoreMissing(`database "${this.name}" has no proofsync stores`, { cause: err });
      throw new StoreClosed(this.name, `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`);
    }
    // every request at once, each a round trip to IndexedDB's backend (5-30 ms apiece on a
    // loaded 2-core machine, `proofsync:` marks of bench/startup-trace.ts): awaiting `meta`
    // before reading the log made the page's first get 12-30 ms slower, and a cursor over the
    // log one round trip per record
    const metaReq = asPromise(tx.objectStore('meta').get(READER_META_KEY) as IDBRequest<MetaRecord | undefined>);
    // the page that holds the key: the last fence <= the key (layout.ts); fences are binary keys
    const pageReq = asPromise(tx.objectStore('pages').openCursor(IDBKeyRange.upperBound(storeKey.buffer), 'prev'));
    const logReq = Promise.all([asPromise(tx.objectStore('log').getAllKeys()), asPromise(tx.objectStore('log').getAll() as IDBRequest<unknown[]>)]);
    logReq.catch(() => {});
    pageReq.catch(() => {});
    const meta = await metaReq;
    if (meta === undefined) {
      const any = await pageReq;
      throw any ? new StorageCorrupted(`database "${this.name}" has pages but no page metadata`) : new StoreMissing(`database "${this.name}" was never initialised by a store`);
    }
    if (meta.format !== PAGE_FORMAT) throw new StorageCorrupted(`database "${this.name}" has no page metadata of format ${PAGE_FORMAT}`);
    const logBase = typeof meta.logBase === 'number' ? meta.logBase : 0;
    const [recKeys, records] = await logReq;
    const cursor = await pageReq;
    // the write log from `logBase` on, newest record first: the first op on the key is its
    // newest (records below `logBase` are in the pages). Scanned in slices of at most
    // `SLICE_MS`, so that a long log (up to `logBytes`, 48 MiB by default) makes no long task.
    let yieldAt = performance.now() + SLICE_MS;
    for (let i = records.length - 1; i >= 0 && Number(recKeys[i]) >= logBase; i--) {
      const record = records[i];
      if (!(record instanceof Uint8Array)) throw new StorageCorrupted(`log record ${String(recKeys[i])} of "${this.name}" is not bytes`);
      const op = lastOpOn(record, storeKey);
      if (op) return op.type === 'put' ? op.value : undefined;
      if (performance.now() > yieldAt) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        yieldAt = performance.now() + SLICE_MS;
      }
    }
    if (!cursor) throw new StorageCorrupted(`database "${this.name}" has no first page`);
    if (!(cursor.value instanceof Uint8Array)) throw new StorageCorrupted(`page record of "${this.name}" is not bytes`);
    const page = new Page(cursor.value);
    const i = page.indexOf(storeKey);
    return i < 0 ? undefined : page.valueAt(i).slice();
  }

  /** Closes the connection; later `get`s reject with `StoreClosed`. Idempotent. */
  close(reason = 'close() was called'): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#db.close();
  }
}
