/**
 * One connection's view of a packed store's database (packed-store.ts): the page index, the
 * page cache, the write log's records, and the `seq` of the last commit it knows. Other
 * connections (another tab or worker) write the same database: every commit bumps `meta.seq`
 * in its transaction, every transaction here checks it and catches up when it moved, and a
 * BroadcastChannel tells open connections to drop their caches.
 *
 * The store's reads (`readPages`, `snapshotPage`) and its two kinds of write (page-writes.ts)
 * go through this object; the store itself decides what to write and when.
 */
import type { IDBPTransaction } from 'idb';
import { StorageCorrupted, StorageQuotaExceeded, StoreClosed } from './errors.ts';
import { Page } from './page.ts';
import { PageCache } from './page-cache.ts';
import { indexFromKeys, type Slot } from './page-index.ts';
import type { Snapshot } from './page-scan.ts';
import { type BinaryKey, PAGE_META_KEY, type PageMeta, type ProofsyncDatabase, type ProofsyncSchema } from './schema.ts';
import { LogRecords } from './write-log.ts';

/** Posted on `storeChannelName(db)` after each commit, so other connections drop their caches. */
interface CommitNotice {
  seq: number;
}

const storeChannelName = (db: string): string => `proofsync:store:${db}`;

/** A transaction over the three stores a catch-up reads. */
export type CatchUpTransaction = IDBPTransaction<ProofsyncSchema, ('pages' | 'meta' | 'log')[], IDBTransactionMode>;

/** What a failed write's transaction offers to tell a quota failure from another. */
interface FailedTransaction {
  abort(): void;
  readonly done: Promise<void>;
  readonly error: DOMException | null;
}

const isQuotaError = (err: unknown): boolean => (err as { name?: unknown } | null)?.name === 'QuotaExceededError';

/** `navigator.storage.estimate()` (the whole origin), or nothing where the runtime lacks it. */
export async function originEstimate(): Promise<StorageEstimate> {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  return storage?.estimate ? await storage.estimate() : {};
}

export class StoreConnection {
  readonly name: string;
  readonly db: ProofsyncDatabase;
  readonly cache: PageCache<Slot>;
  /** Iterations running: a write pins the pages it replaces for them. */
  readonly snapshots = new Set<Snapshot>();
  /** The write log's records not yet in the pages, and their overlay. */
  readonly log: LogRecords;
  index: readonly Slot[];
  /** The last commit this connection knows of. */
  seq: number;
  /** `seq` of the last commit that changed page records (the index is stale when it moved). */
  pageSeq: number;
  /** Another connection committed (BroadcastChannel): refresh before answering from memory. */
  stale = false;
  closedReason: string | undefined;
  /** Committed write batches since open. */
  commits = 0;
  /** Called when this connection takes another's commits (a running compaction must stop). */
  onCatchUp: () => void = () => {};
  readonly #channel: BroadcastChannel | undefined;

  constructor(name: string, db: ProofsyncDatabase, index: Slot[], meta: PageMeta, cacheBytes: number) {
    this.name = name;
    this.db = db;
    this.index = index;
    this.seq = meta.seq;
    this.pageSeq = meta.pageSeq ?? meta.seq;
    this.log = new LogRecords(meta.logBase ?? 0);
    this.cache = new PageCache(cacheBytes);
    if (typeof BroadcastChannel === 'function') {
      this.#channel = new BroadcastChannel(storeChannelName(name));
      this.#channel.onmessage = (m: MessageEvent<CommitNotice>) => {
        // cached pages and the overlay may be older than that commit: the next read refreshes
        if (m.data.seq !== this.seq) {
          this.cache.clear();
          this.stale = true;
        }
      };
    }
  }

  assertOpen(): void {
    if (this.closedReason) throw new StoreClosed(this.name, this.closedReason);
  }

  shut(reason: string): void {
    this.closedReason ??= reason;
    this.#channel?.close();
    this.cache.clear();
    this.db.close();
  }

  /** A write of this connection committed as `seq`: tell the others. */
  committed(seq: number): void {
    this.seq = seq;
    this.commits++;
    this.#channel?.postMessage({ seq } satisfies CommitNotice);
  }

  /**
   * Takes another connection's commits (`meta` read in `tx`, over pages and log): a fresh page
   * index if pages changed, the records added since.
   */
  async catchUp(tx: CatchUpTransaction, meta: PageMeta | undefined): Promise<void> {
    if (!meta) throw new StorageCorrupted(`database "${this.name}" has no page metadata`);
    const seenSeq = this.seq;
    const pageSeq = meta.pageSeq ?? meta.seq;
    const base = meta.logBase ?? 0;
    const keys: BinaryKey[] | undefined = pageSeq !== this.pageSeq ? await tx.objectStore('pages').getAllKeys() : undefined;
    const from = Math.max(seenSeq + 1, base);
    const range = IDBKeyRange.lowerBound(from);
    const [recs, records] = meta.seq >= from ? await Promise.all([tx.objectStore('log').getAllKeys(range), tx.objectStore('log').getAll(range)]) : [[], []];
    if (this.seq !== seenSeq) return; // another read caught up meanwhile
    if (keys) this.#adopt(indexFromKeys(this.name, keys, meta), pageSeq);
    this.log.forgetBelow(base);
    this.log.replay(recs, records);
    this.seq = meta.seq;
    this.stale = false;
    this.onCatchUp();
  }

  /** Reads `meta` and, if another connection committed, catches up. */
  async refresh(): Promise<void> {
    this.assertOpen();
    const tx = this.db.transaction(['pages', 'meta', 'log'], 'readonly');
    const meta = await tx.objectStore('meta').get(PAGE_META_KEY);
    if (meta?.seq === this.seq) {
      this.stale = false;
      return;
    }
    await this.catchUp(tx, meta);
  }

  /** Takes an index written by another connection: every current slot is dead, caches go. */
  #adopt(index: Slot[], pageSeq: number): void {
    for (const slot of this.index) slot.dead = true;
    this.cache.clear();
    this.index = index;
    this.pageSeq = pageSeq;
  }

  /**
   * Reads slots' pages and the database's `seq` in one readonly transaction. Returns undefined
   * when a slot is no longer current: replaced by a write of this store, or (seq moved) by
   * another connection, in which case its commits are taken from that transaction.
   */
  async readPages(slots: Slot[]): Promise<Page[] | undefined> {
    this.assertOpen();
    const tx = this.db.transaction(['pages', 'meta', 'log'], 'readonly');
    const pagesStore = tx.objectStore('pages');
    const [meta, ...all] = await Promise.all([tx.objectStore('meta').get(PAGE_META_KEY), ...slots.map((s) => pagesStore.get(s.key))]);
    if (slots.some((s) => s.dead)) return undefined;
    if (meta?.seq !== this.seq) {
      await this.catchUp(tx, meta);
      return undefined;
    }
    const out: Page[] = [];
    for (let i = 0; i < slots.length; i++) {
      const bytes = all[i];
      if (!bytes) throw new StorageCorrupted(`page record missing for a live index entry in "${this.name}"`);
      const page = new Page(bytes);
      this.cache.set(slots[i], page);
      out.push(page);
    }
    return out;
  }

  /** The page a snapshot sees at `slot`; undefined when the snapshot had to move to a new state. */
  async snapshotPage(snap: Snapshot, slot: Slot): Promise<Page | undefined> {
    const known = snap.pinned.get(slot) ?? this.cache.get(slot);
    if (known) return known;
    const read = (await this.readPages([slot]))?.[0];
    // a write of this store that committed during the read pinned what this snapshot must see
    const pinned = snap.pinned.get(slot);
    if (pinned) return pinned;
    if (!read) {
      // another connection wrote: continue in the current state (see page-scan.ts)
      snap.index = this.index;
      snap.pinned.clear();
      snap.overlay = this.log.overlay.sorted();
    }
    return read;
  }

  /** Maps a failed write's error (quota: the typed error) after aborting its transaction. */
  async failed(tx: FailedTransaction, err: unknown, attemptedBytes: number): Promise<unknown> {
    try {
      tx.abort();
    } catch {
      // already aborted or finished
    }
    await tx.done.catch(() => undefined);
    if (isQuotaError(err) || isQuotaError(tx.error)) {
      const e = await originEstimate().catch(() => undefined);
      return new StorageQuotaExceeded({ attemptedBytes, usage: e?.usage, quota: e?.quota, cause: err });
    }
    return err;
  }
}
