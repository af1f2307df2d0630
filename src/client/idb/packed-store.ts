/**
 * `PackedIdbStore`: the core's `KVStore` seam (src/core/store.ts) on IndexedDB, with sorted
 * key-values packed into page-sized records (page.ts, layout.ts). DESIGN.md "Storage in the
 * browser": one record per key measured 18k puts/s here against ~200 MB/s for 96 KB records,
 * so records are pages of ~32 KiB; the in-memory index of page fences (loaded at open), an LRU
 * page cache and binary search inside pages keep `get` fast.
 *
 * Write log (write-log.ts): a batch of scattered keys (it would rewrite many more page bytes
 * than it carries: a live delta) is appended as one `log` record instead, in ONE transaction
 * with `meta` (its `seq` names the record), and enters the in-memory overlay that every read
 * consults before the pages. Large or clustered batches (a sync's sorted ranges) are written to
 * the pages as before; where they hit a logged key, the same transaction logs those ops too, so
 * the log never shadows a newer page value. When the records exceed `logBytes`, the overlay is
 * compacted into the pages in chunks of at most `compactPages` pages, each its own transaction
 * queued behind the writes (a write waits for one chunk at most); the last chunk's transaction
 * deletes the compacted records and moves `meta.logBase`.
 * Consistency: the state is the pages with the records from `logBase` on replayed in order (at
 * open, and by other connections as `seq` moves). A record and the `meta` naming it commit
 * together or not at all. A compaction chunk writes into the pages the overlay's values, which
 * its still-present records set anyway, so replaying them over a half-compacted store gives the
 * same state; records go only in the transaction that wrote the last chunk. A compaction that
 * meets another connection's commit stops (its records stay; a later one starts over).
 *
 * Guarantees:
 * - `write(ops)` applies the whole batch in ONE readwrite transaction, or nothing: the sync
 *   engine writes data and the progress describing it in one batch, so a killed tab resumes
 *   exactly. Nothing inside the transaction awaits anything but IndexedDB.
 * - Writes run one at a time, in call order. In-memory state (index, cache) changes only after
 *   the transaction commits, so a failed write (e.g. `StorageQuotaExceeded`) leaves the store at
 *   its last committed state, on disk and in memory.
 * - `iterate` sees the committed state as of its first `next()`: pages that a later write
 *   of this store replaces are pinned (kept in memory) for that iteration until it finishes or
 *   is returned from. An iterator abandoned without `return()` keeps pinning pages: use
 *   `for await`.
 * - Other connections (another tab or worker) may write the same database. Every write bumps
 *   `meta.seq` in its transaction; a page read from IndexedDB checks `seq` in the same
 *   transaction and reloads the index when it moved, and a BroadcastChannel tells open stores
 *   to drop their caches. A `get` then always answers from one committed state. An iteration
 *   that meets another connection's commit continues after the last key it yielded, against
 *   the new state (each page whole, keys strictly in order, but no snapshot across pages).
 */
import type { IDBPTransaction } from 'idb';
import { compareBytes } from '../../core/bytes.ts';
import type { BatchOp, IterateOptions, KVStore } from '../../core/store.ts';
import { StorageCorrupted, StorageQuotaExceeded, StoreClosed } from './errors.ts';
import { errorClass, ProofsyncError } from '../../core/errors.ts';
import { entriesSize, mergeEntries, minPageBytes, normalizeOps, pageIndexOf, splitEntries } from './layout.ts';
import { encodePage, type Entry, Page, PAGE_FORMAT, pageSize } from './page.ts';
import { PageCache } from './page-cache.ts';
import { type BinaryKey, openProofsyncDatabase, PAGE_META_KEY, type PageMeta, type ProofsyncDatabase, type ProofsyncSchema, toBinaryKey } from './schema.ts';
import { decodeLogRecord, encodeLogRecord, Overlay, overlayBound, type OverlayEntry } from './write-log.ts';

export interface PackedIdbStoreOptions {
  /** Target size of a page record in bytes (default 32 KiB; at least 256). */
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

/** A page's place in the index. Replaced (never mutated) when its page is rewritten. */
interface Slot {
  readonly fence: Uint8Array;
  readonly key: BinaryKey;
  dead: boolean;
}

/** A page being built by a write, not yet committed. */
interface Draft {
  fence: Uint8Array;
  entries: Entry[];
  size: number;
}

interface Snapshot {
  index: readonly Slot[];
  /** Pre-write contents of slots replaced since the snapshot was taken. */
  readonly pinned: Map<Slot, Page>;
  /** The write log's overlay when the snapshot was taken (immutable). */
  overlay: readonly OverlayEntry[];
}

interface Compaction {
  /** Records up to this one are compacted when the last chunk commits. */
  readonly through: number;
  /** Overlay keys when it started, sorted; `cursor`: the next to write. */
  readonly keys: Uint8Array[];
  cursor: number;
}

const DEFAULT_PAGE_BYTES = 32 * 1024;
const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
const DEFAULT_LOG_BYTES = 48 * 1024 * 1024;
const DEFAULT_COMPACT_PAGES = 64;
/**
 * A batch goes to the log when writing its pages would move this many times its own bytes:
 * a sync's sorted range (2,048 key-values in a few pages) stays on the pages, a live delta
 * (keys all over the key space, one page each) goes to the log.
 */
const DEFAULT_LOG_AMPLIFICATION = 4;

/** A compaction met another connection's commit (it stops; its records stay). */
const CompactionInterrupted = errorClass(ProofsyncError, 'CompactionInterrupted');
const EMPTY_PAGE_SIZE = pageSize(0, 0);

/** Posted on `storeChannelName(db)` after each commit, so other connections drop their caches. */
interface CommitNotice {
  seq: number;
}
const storeChannelName = (db: string): string => `proofsync:store:${db}`;

const slotOf = (fence: Uint8Array): Slot => ({ fence, key: toBinaryKey(fence), dead: false });
const isSlot = (x: Slot | Draft): x is Slot => 'dead' in x;

function indexFromKeys(dbName: string, keys: BinaryKey[], meta: PageMeta | undefined): Slot[] {
  if (!meta || meta.format !== PAGE_FORMAT) throw new StorageCorrupted(`database "${dbName}" has no page metadata of format ${PAGE_FORMAT}`);
  if (keys.length === 0 || keys[0].byteLength !== 0) throw new StorageCorrupted(`database "${dbName}" has no first page`);
  return keys.map((k) => slotOf(new Uint8Array(k)));
}

function isQuotaError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'QuotaExceededError';
}

export class PackedIdbStore implements KVStore {
  readonly name: string;
  readonly pageBytes: number;
  private readonly durability: IDBTransactionDurability;
  private readonly logLimit: number;
  private readonly compactPages: number;
  private readonly logAmplification: number;
  private readonly db: ProofsyncDatabase;
  private readonly cache: PageCache<Slot>;
  private readonly snapshots = new Set<Snapshot>();
  private index: readonly Slot[];
  private tail: Promise<unknown> = Promise.resolve();
  private seq: number;
  /** `seq` of the last commit that changed page records (the index is stale when it moved). */
  private pageSeq: number;
  /** Records below this are in the pages. */
  private logBase: number;
  private readonly overlay = new Overlay();
  /** Sizes of the records from `logBase` on, in record order. */
  private logRecords: { rec: number; bytes: number }[] = [];
  private logSize = 0;
  private compaction: Compaction | undefined;
  /** After a failed compaction (e.g. quota), the next starts once the log reaches this. */
  private compactRetryAt = 0;
  private compactionsDone = 0;
  /** Another connection committed (BroadcastChannel): refresh before answering from memory. */
  private stale = false;
  private closedReason: string | undefined;
  private commits = 0;
  private readonly channel: BroadcastChannel | undefined;

  private constructor(name: string, db: ProofsyncDatabase, index: Slot[], meta: PageMeta, options: Required<PackedIdbStoreOptions>) {
    this.name = name;
    this.db = db;
    this.index = index;
    this.seq = meta.seq;
    this.pageSeq = meta.pageSeq ?? meta.seq;
    this.logBase = meta.logBase ?? 0;
    this.pageBytes = options.pageBytes;
    this.durability = options.durability;
    this.logLimit = options.logBytes;
    this.compactPages = options.compactPages;
    this.logAmplification = options.logAmplification;
    this.cache = new PageCache(options.cacheBytes);
    if (typeof BroadcastChannel === 'function') {
      this.channel = new BroadcastChannel(storeChannelName(name));
      this.channel.onmessage = (m: MessageEvent<CommitNotice>) => {
        // cached pages and the overlay may be older than that commit: the next read refreshes
        if (m.data.seq !== this.seq) {
          this.cache.clear();
          this.stale = true;
        }
      };
    }
  }

  /**
   * Opens (creating if needed) the store in IndexedDB database `dbName`, loading the page index
   * and replaying the write log.
   *
   * @example
   * const store = await PackedIdbStore.open('proofsync:mydb');
   * await store.write([{ type: 'put', key, value }]);
   * for await (const [k, v] of store.iterate({ gte: prefix, limit: 10 })) show(k, v);
   * await store.close();
   */
  static async open(dbName: string, options: PackedIdbStoreOptions = {}): Promise<PackedIdbStore> {
    const pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES;
    if (!Number.isInteger(pageBytes) || pageBytes < 256) throw new RangeError(`expected pageBytes to be an integer >= 256, got ${pageBytes}`);
    const logBytes = options.logBytes ?? DEFAULT_LOG_BYTES;
    if (!(logBytes >= 0)) throw new RangeError(`expected logBytes >= 0, got ${logBytes}`);
    const compactPages = options.compactPages ?? DEFAULT_COMPACT_PAGES;
    if (!Number.isInteger(compactPages) || compactPages < 1) throw new RangeError(`expected compactPages to be an integer >= 1, got ${compactPages}`);
    const logAmplification = options.logAmplification ?? DEFAULT_LOG_AMPLIFICATION;
    if (!(logAmplification >= 0)) throw new RangeError(`expected logAmplification >= 0, got ${logAmplification}`);
    const resolved = { pageBytes, cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES, durability: options.durability ?? 'relaxed', logBytes, compactPages, logAmplification };
    let store: PackedIdbStore | undefined;
    const db = await openProofsyncDatabase(dbName, {
      onBlocking: () => store?.shut('another connection is upgrading the database'),
      onTerminated: () => store?.shut('the browser closed the connection'),
    });
    try {
      const tx = db.transaction(['pages', 'meta', 'log'], 'readwrite');
      const keys = await tx.objectStore('pages').getAllKeys();
      let meta = await tx.objectStore('meta').get(PAGE_META_KEY);
      if (keys.length === 0) {
        meta = { format: PAGE_FORMAT, pageBytes, seq: 0 };
        await tx.objectStore('pages').put(encodePage([]), toBinaryKey(new Uint8Array(0)));
        await tx.objectStore('meta').put(meta, PAGE_META_KEY);
        keys.push(toBinaryKey(new Uint8Array(0)));
      }
      const range = IDBKeyRange.lowerBound(meta?.logBase ?? 0);
      const [recKeys, records] = await Promise.all([tx.objectStore('log').getAllKeys(range), tx.objectStore('log').getAll(range)]);
      await tx.done;
      const index = indexFromKeys(dbName, keys, meta);
      store = new PackedIdbStore(dbName, db, index, meta!, resolved);
      store.replay(recKeys, records);
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Number of page records. */
  get pageCount(): number {
    return this.index.length;
  }

  /** Committed write batches since open. */
  get commitCount(): number {
    return this.commits;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    for (;;) {
      this.assertOpen();
      if (this.stale) await this.refresh();
      const logged = this.overlay.get(key);
      if (logged) return logged.value?.slice();
      const index = this.index;
      const slot = index[pageIndexOf(index, key)];
      let page = this.cache.get(slot);
      if (!page) {
        page = (await this.readPages([slot]))?.[0];
        // a write replaced the page meanwhile, or another connection wrote: look again
        if (!page) continue;
      }
      const i = page.indexOf(key);
      return i < 0 ? undefined : page.valueAt(i).slice();
    }
  }

  /** Many reads: the pages not cached are read in ONE transaction (the trie prefetches paths). */
  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    for (const k of keys) if (!(k instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    for (;;) {
      this.assertOpen();
      if (this.stale) await this.refresh();
      const out: (Uint8Array | undefined)[] = new Array(keys.length);
      const index = this.index;
      const wanted = new Map<Slot, number[]>();
      for (let i = 0; i < keys.length; i++) {
        const logged = this.overlay.get(keys[i]);
        if (logged) {
          out[i] = logged.value?.slice();
          continue;
        }
        const slot = index[pageIndexOf(index, keys[i])];
        const page = this.cache.get(slot);
        if (page) {
          const at = page.indexOf(keys[i]);
          out[i] = at < 0 ? undefined : page.valueAt(at).slice();
          continue;
        }
        let list = wanted.get(slot);
        if (!list) wanted.set(slot, (list = []));
        list.push(i);
      }
      if (wanted.size === 0) return out;
      const slots = [...wanted.keys()];
      const pages = await this.readPages(slots);
      if (!pages) continue;
      for (let s = 0; s < slots.length; s++) {
        for (const i of wanted.get(slots[s])!) {
          const at = pages[s].indexOf(keys[i]);
          out[i] = at < 0 ? undefined : pages[s].valueAt(at).slice();
        }
      }
      return out;
    }
  }

  iterate(options: IterateOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    for (const b of ['gte', 'gt', 'lte', 'lt'] as const) {
      if (options[b] !== undefined && !(options[b] instanceof Uint8Array)) throw new TypeError(`expected Uint8Array ${b} bound`);
    }
    if (options.limit !== undefined && typeof options.limit !== 'number') throw new TypeError(`expected numeric limit, got ${typeof options.limit}`);
    return this.scan(options);
  }

  /** The pages' entries merged with the overlay's (which wins; its deletions hide page entries). */
  private async *scan(o: IterateOptions): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.assertOpen();
    const limit = o.limit ?? Infinity;
    if (!(limit > 0)) return; // as MemoryStore: a limit of 0 or less yields nothing
    if (this.stale) await this.refresh();
    // both bounds on one side: the stricter applies (their intersection)
    const useGt = o.gt !== undefined && (o.gte === undefined || compareBytes(o.gt, o.gte) >= 0);
    const b: Bounds = { lower: useGt ? o.gt : o.gte, lowerInclusive: !useGt, upper: undefined, upperInclusive: true };
    const useLt = o.lt !== undefined && (o.lte === undefined || compareBytes(o.lt, o.lte) <= 0);
    b.upper = useLt ? o.lt : o.lte;
    b.upperInclusive = !useLt;
    const rev = o.reverse === true;
    const snap: Snapshot = { index: this.index, pinned: new Map(), overlay: this.overlay.sorted() };
    this.snapshots.add(snap);
    const pages = this.scanPages(snap, b, rev);
    const inRange = (k: Uint8Array): boolean => {
      if (b.lower) {
        const c = compareBytes(k, b.lower);
        if (c < 0 || (c === 0 && !b.lowerInclusive)) return false;
      }
      if (b.upper) {
        const c = compareBytes(k, b.upper);
        if (c > 0 || (c === 0 && !b.upperInclusive)) return false;
      }
      return true;
    };
    // where the overlay cursor starts, or continues after `last` (a new overlay after a reload)
    const startAt = (ov: readonly OverlayEntry[], last: Uint8Array | undefined): number => {
      if (rev) {
        if (last) return overlayBound(ov, last, false) - 1;
        return (b.upper ? overlayBound(ov, b.upper, b.upperInclusive) : ov.length) - 1;
      }
      if (last) return overlayBound(ov, last, true);
      return b.lower ? overlayBound(ov, b.lower, !b.lowerInclusive) : 0;
    };
    try {
      let ov = snap.overlay;
      let j = startAt(ov, undefined);
      let last: Uint8Array | undefined;
      let n = 0;
      let p = await pages.next();
      for (;;) {
        // after another connection's commit the page scan moved to the new state: follow it
        while (!p.done && last && (rev ? compareBytes(p.value[0], last) >= 0 : compareBytes(p.value[0], last) <= 0)) p = await pages.next();
        if (snap.overlay !== ov) {
          ov = snap.overlay;
          j = startAt(ov, last);
        }
        const e = j >= 0 && j < ov.length && inRange(ov[j].key) ? ov[j] : undefined;
        if (p.done && !e) return;
        // which comes first in scan order: the page's entry (<0), the overlay's (>0), or one key (0)
        const c = p.done ? 1 : !e ? -1 : rev ? compareBytes(e.key, p.value[0]) : compareBytes(p.value[0], e.key);
        if (c >= 0) {
          j += rev ? -1 : 1;
          last = e!.key;
          if (c === 0) p = await pages.next();
          if (e!.value) {
            yield [e!.key.slice(), e!.value.slice()];
            if (++n >= limit) return;
          }
        } else {
          const kv = p.value!;
          last = kv[0];
          p = await pages.next();
          yield kv;
          if (++n >= limit) return;
        }
      }
    } finally {
      await pages.return(undefined);
      this.snapshots.delete(snap);
    }
  }

  /** Page entries within bounds, in scan order. */
  private async *scanPages(snap: Snapshot, b: Bounds, reverse: boolean): AsyncGenerator<[Uint8Array, Uint8Array]> {
    const { lower, lowerInclusive, upper, upperInclusive } = b;
    // The scan is a cursor: `pos` is the next position (a key, inclusive or not), so it can
    // continue in a fresh index if another connection's commit forces a reload.
    if (!reverse) {
      let pos = lower;
      let inclusive = lowerInclusive;
      for (;;) {
        const index = snap.index;
        const s = pos ? pageIndexOf(index, pos) : 0;
        const page = await this.snapshotPage(snap, index[s]);
        if (!page) continue;
        let i = pos ? (inclusive ? page.lowerBound(pos) : page.upperBound(pos)) : 0;
        for (; i < page.count; i++) {
          if (upper) {
            const c = page.compareAt(i, upper);
            if (c > 0 || (c === 0 && !upperInclusive)) return;
          }
          yield [page.keyAt(i).slice(), page.valueAt(i).slice()];
        }
        const next = index[s + 1];
        if (!next) return;
        if (upper) {
          const c = compareBytes(next.fence, upper);
          if (c > 0 || (c === 0 && !upperInclusive)) return;
        }
        pos = next.fence;
        inclusive = true;
      }
    } else {
      let pos = upper;
      let inclusive = upperInclusive;
      for (;;) {
        const index = snap.index;
        let s = pos ? pageIndexOf(index, pos) : index.length - 1;
        if (pos && !inclusive && compareBytes(index[s].fence, pos) === 0) {
          if (s === 0) return; // nothing sorts below the empty key
          s--;
        }
        const page = await this.snapshotPage(snap, index[s]);
        if (!page) continue;
        let i = pos ? (inclusive ? page.upperBound(pos) : page.lowerBound(pos)) - 1 : page.count - 1;
        for (; i >= 0; i--) {
          if (lower) {
            const c = page.compareAt(i, lower);
            if (c < 0 || (c === 0 && !lowerInclusive)) return;
          }
          yield [page.keyAt(i).slice(), page.valueAt(i).slice()];
        }
        // every earlier page holds keys below this fence
        if (s === 0 || (lower && compareBytes(index[s].fence, lower) <= 0)) return;
        pos = index[s].fence;
        inclusive = false;
      }
    }
  }

  /**
   * Applies every op or none, in one readwrite transaction; later ops on the same key win.
   * Rejects with `StorageQuotaExceeded` when the origin is out of quota (nothing applied).
   */
  write(ops: BatchOp[]): Promise<void> {
    let sorted: BatchOp[];
    let record: Uint8Array;
    try {
      this.assertOpen();
      // copied now: the caller may reuse its arrays while the batch waits its turn. One copy,
      // the batch's log record, whose views become the ops: a live group of ~9k ops made a
      // copy per key and per value, then the record again.
      record = encodeLogRecord(normalizeOps(ops));
      sorted = decodeLogRecord(record);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.tail.then(() => (sorted.length ? this.commitBatch(sorted, record) : undefined));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Storage figures for deciding whether a large sync fits. */
  async estimate(): Promise<StoreEstimate> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const e = storage?.estimate ? await storage.estimate() : {};
    return {
      usage: e.usage,
      quota: e.quota,
      available: e.usage !== undefined && e.quota !== undefined ? e.quota - e.usage : undefined,
      pages: this.index.length,
      cachedPages: this.cache.size,
      cachedBytes: this.cache.bytes,
      logBytes: this.logSize,
      overlayKeys: this.overlay.size,
      compactions: this.compactionsDone,
    };
  }

  /**
   * Compacts the whole write log into the pages now (in chunks, behind queued writes), e.g.
   * before a planned reload or in tests. Resolves when the log is empty or a chunk failed.
   */
  async compact(): Promise<void> {
    this.assertOpen();
    await this.tail;
    if (this.logRecords.length === 0) return;
    this.startCompaction();
    while (this.compaction) await this.tail;
  }

  /** Waits for queued writes, then closes the connection. Later calls throw `StoreClosed`. */
  async close(): Promise<void> {
    if (this.closedReason) return;
    const pending = this.tail;
    this.closedReason = 'close() was called';
    await pending;
    this.shut('close() was called');
  }

  private shut(reason: string): void {
    this.closedReason ??= reason;
    this.channel?.close();
    this.cache.clear();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closedReason) throw new StoreClosed(this.name, this.closedReason);
  }

  // ---- the write log ------------------------------------------------------------------------

  /** Applies records (keys and values as read from `log`) to the overlay, in record order. */
  private replay(recs: number[], records: Uint8Array[]): void {
    for (let i = 0; i < recs.length; i++) {
      this.overlay.apply(decodeLogRecord(records[i]), recs[i]);
      this.logRecords.push({ rec: recs[i], bytes: records[i].length });
      this.logSize += records[i].length;
    }
  }

  /** Forgets records below `base` (compacted into the pages by some connection). */
  private forgetBelow(base: number): void {
    if (base <= this.logBase) return;
    this.overlay.dropThrough(base - 1);
    let k = 0;
    while (k < this.logRecords.length && this.logRecords[k].rec < base) this.logSize -= this.logRecords[k++].bytes;
    this.logRecords = this.logRecords.slice(k);
    this.logBase = base;
  }

  /**
   * Takes another connection's commits (`meta` read in a transaction over pages and log): a
   * fresh page index if pages changed, the records added since. A running compaction stops.
   */
  private async catchUp(tx: CatchUpReads, meta: PageMeta | undefined): Promise<void> {
    if (!meta) throw new StorageCorrupted(`database "${this.name}" has no page metadata`);
    const seenSeq = this.seq;
    const pageSeq = meta.pageSeq ?? meta.seq;
    const base = meta.logBase ?? 0;
    const keys = pageSeq !== this.pageSeq ? await tx.pageKeys() : undefined;
    const from = Math.max(seenSeq + 1, base);
    const [recs, records] = meta.seq >= from ? await tx.records(from) : [[], []];
    if (this.seq !== seenSeq) return; // another read caught up meanwhile
    if (keys) this.adopt(indexFromKeys(this.name, keys, meta), pageSeq);
    this.forgetBelow(base);
    this.replay(recs, records);
    this.seq = meta.seq;
    this.stale = false;
    this.compaction = undefined;
  }

  /** Reads `meta` and, if another connection committed, catches up. */
  private async refresh(): Promise<void> {
    this.assertOpen();
    const tx = this.db.transaction(['pages', 'meta', 'log'], 'readonly');
    const meta = await tx.objectStore('meta').get(PAGE_META_KEY);
    if (meta?.seq === this.seq) {
      this.stale = false;
      return;
    }
    await this.catchUp(readsOf(tx), meta);
  }

  /** Whether a batch goes to the log (see `DEFAULT_LOG_AMPLIFICATION`). */
  private logs(ops: readonly BatchOp[], bytes: number): boolean {
    if (this.logLimit === 0) return false;
    if (bytes > this.logLimit) return false;
    if (this.logAmplification === 0) return true;
    const index = this.index;
    let pages = 0;
    let nextFence: Uint8Array | undefined;
    let first = true;
    for (const op of ops) {
      if (first || (nextFence && compareBytes(op.key, nextFence) >= 0)) {
        first = false;
        pages++;
        nextFence = index[pageIndexOf(index, op.key) + 1]?.fence;
        if (pages * this.pageBytes > this.logAmplification * bytes) return true;
      }
    }
    return false;
  }

  /** `record`: `ops` encoded as a log record (the ops are views of it). */
  private async commitBatch(ops: BatchOp[], record: Uint8Array): Promise<void> {
    if (this.logs(ops, record.length)) await this.appendLog(ops, record);
    else await this.apply(ops, undefined);
    if (this.logSize > this.logLimit && this.logLimit > 0 && this.logSize >= this.compactRetryAt) this.startCompaction();
  }

  /** Appends `ops` as one log record, with `meta`, in one transaction. */
  private async appendLog(ops: BatchOp[], bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    const tx = this.db.transaction(['meta', 'log'], 'readwrite', { durability: this.durability });
    let attemptedBytes = 0;
    try {
      const meta = await tx.objectStore('meta').get(PAGE_META_KEY);
      if (meta?.seq !== this.seq) {
        // another connection committed: take its state, then append on top of it
        tx.abort();
        await tx.done.catch(() => undefined);
        await this.refresh();
        return this.appendLog(ops, bytes);
      }
      const rec = this.seq + 1;
      attemptedBytes = bytes.length;
      await Promise.all([tx.objectStore('log').put(bytes, rec), tx.objectStore('meta').put({ ...meta, seq: rec }, PAGE_META_KEY), tx.done]);
      this.overlay.apply(ops, rec);
      this.logRecords.push({ rec, bytes: bytes.length });
      this.logSize += bytes.length;
      this.seq = rec;
      this.commits++;
      this.channel?.postMessage({ seq: rec } satisfies CommitNotice);
    } catch (err) {
      throw await this.failed(tx, err, attemptedBytes);
    }
  }

  private startCompaction(): void {
    if (this.compaction || this.closedReason) return;
    this.compaction = { through: this.seq, keys: this.overlay.sorted().map((e) => e.key), cursor: 0 };
    this.queueCompactionStep();
  }

  private queueCompactionStep(): void {
    const run = this.tail.then(() => this.compactStep());
    this.tail = run.catch(() => undefined);
  }

  /** Writes the next chunk of the overlay into the pages; the last one deletes the records. */
  private async compactStep(): Promise<void> {
    const c = this.compaction;
    if (!c || this.closedReason) {
      this.compaction = undefined;
      return;
    }
    try {
      const index = this.index;
      const ops: BatchOp[] = [];
      let pages = 0;
      let page = -1;
      while (c.cursor < c.keys.length) {
        const key = c.keys[c.cursor];
        const at = pageIndexOf(index, key);
        if (at !== page) {
          if (pages === this.compactPages) break;
          pages++;
          page = at;
        }
        c.cursor++;
        // present: entries leave the overlay only when a compaction ends
        const e = this.overlay.get(key);
        if (e) ops.push(e.value ? { type: 'put', key: e.key, value: e.value } : { type: 'del', key: e.key });
      }
      const last = c.cursor >= c.keys.length;
      await this.apply(ops, { through: last ? c.through : undefined });
      if (this.compaction !== c) return;
      if (last) {
        this.compaction = undefined;
        this.compactionsDone++;
        this.compactRetryAt = 0;
      } else this.queueCompactionStep();
    } catch {
      // the records stay: the state is whole. A later write past half a bound more tries again.
      if (this.compaction === c) this.compaction = undefined;
      this.compactRetryAt = this.logSize + this.logLimit / 2;
    }
  }

  // ---- pages --------------------------------------------------------------------------------

  /**
   * Reads slots' pages and the database's `seq` in one readonly transaction. Returns undefined
   * when a slot is no longer current: replaced by a write of this store, or (seq moved) by
   * another connection, in which case its commits are taken from that transaction.
   */
  private async readPages(slots: Slot[]): Promise<Page[] | undefined> {
    this.assertOpen();
    const tx = this.db.transaction(['pages', 'meta', 'log'], 'readonly');
    const pagesStore = tx.objectStore('pages');
    const [meta, ...all] = await Promise.all([tx.objectStore('meta').get(PAGE_META_KEY), ...slots.map((s) => pagesStore.get(s.key))]);
    if (slots.some((s) => s.dead)) return undefined;
    if (meta?.seq !== this.seq) {
      await this.catchUp(readsOf(tx), meta);
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

  /** Takes an index written by another connection: every current slot is dead, caches go. */
  private adopt(index: Slot[], pageSeq: number): void {
    for (const slot of this.index) slot.dead = true;
    this.cache.clear();
    this.index = index;
    this.pageSeq = pageSeq;
  }

  /** The page a snapshot sees at `slot`; undefined when the snapshot had to move to a new state. */
  private async snapshotPage(snap: Snapshot, slot: Slot): Promise<Page | undefined> {
    const known = snap.pinned.get(slot) ?? this.cache.get(slot);
    if (known) return known;
    const read = (await this.readPages([slot]))?.[0];
    // a write of this store that committed during the read pinned what this snapshot must see
    const pinned = snap.pinned.get(slot);
    if (pinned) return pinned;
    if (!read) {
      // another connection wrote: continue in the current state (see the module comment)
      snap.index = this.index;
      snap.pinned.clear();
      snap.overlay = this.overlay.sorted();
    }
    return read;
  }

  /** Maps a failed write's error (quota: the typed error) after aborting its transaction. */
  private async failed(tx: IDBPTransactionLike, err: unknown, attemptedBytes: number): Promise<unknown> {
    try {
      tx.abort();
    } catch {
      // already aborted or finished
    }
    await tx.done.catch(() => undefined);
    if (isQuotaError(err) || isQuotaError(tx.error)) {
      const e = await this.estimate().catch(() => undefined);
      return new StorageQuotaExceeded({ attemptedBytes, usage: e?.usage, quota: e?.quota, cause: err });
    }
    return err;
  }

  /**
   * Writes sorted ops into the pages in one transaction. With a write log: ops on logged keys
   * are logged too (the log must not shadow them), and a compaction chunk (`compaction`) writes
   * overlay values; its last chunk (`through`) deletes the records up to `through`.
   */
  private async apply(ops: BatchOp[], compaction: { through: number | undefined } | undefined): Promise<void> {
    this.assertOpen();
    const pageBytes = this.pageBytes;
    const tx = this.db.transaction(['pages', 'meta', 'log'], 'readwrite', { durability: this.durability });
    const pages = tx.objectStore('pages');
    const metaStore = tx.objectStore('meta');
    const replaced = new Map<Slot, Page>();
    let attemptedBytes = 0;
    const load = async (slot: Slot): Promise<Page> => {
      const cached = this.cache.peek(slot);
      if (cached) return cached;
      const bytes = await pages.get(slot.key);
      if (!bytes) throw new StorageCorrupted(`page record missing for a live index entry in "${this.name}"`);
      return new Page(bytes);
    };
    const asDraft = async (x: Slot | Draft): Promise<{ draft: Draft; slot?: Slot; page?: Page }> => {
      if (!isSlot(x)) return { draft: x };
      const page = await load(x);
      return { draft: { fence: x.fence, entries: page.entries(), size: page.byteLength }, slot: x, page };
    };
    try {
      // 0. Another connection may have written since this store last looked: take its commits.
      const meta = await metaStore.get(PAGE_META_KEY);
      if (meta?.seq !== this.seq) {
        if (compaction) throw new CompactionInterrupted(`another connection wrote "${this.name}" during a compaction`);
        await this.catchUp(readsOf(tx), meta);
      }
      const index = this.index;
      const seq = this.seq + 1;
      let logBase = this.logBase;

      // 1. Group the sorted ops by the page that holds them; load those pages.
      const groups: { at: number; from: number; to: number }[] = [];
      for (let i = 0; i < ops.length; ) {
        const at = pageIndexOf(index, ops[i].key);
        const nextFence = index[at + 1]?.fence;
        let j = i + 1;
        while (j < ops.length && (!nextFence || compareBytes(ops[j].key, nextFence) < 0)) j++;
        groups.push({ at, from: i, to: j });
        i = j;
      }
      const loaded = await Promise.all(groups.map((g) => load(index[g.at])));

      // 2. Rebuild the touched pages, splitting the ones that overflow.
      const next: (Slot | Draft)[] = [];
      let g = 0;
      for (let s = 0; s < index.length; s++) {
        if (g >= groups.length || groups[g].at !== s) {
          next.push(index[s]);
          continue;
        }
        const slot = index[s];
        const page = loaded[g];
        replaced.set(slot, page);
        const entries = mergeEntries(page.entries(), ops.slice(groups[g].from, groups[g].to));
        g++;
        if (entries.length === 0) {
          // an empty page's range folds into its left neighbour; the first page always stays
          if (s === 0) next.push({ fence: slot.fence, entries, size: EMPTY_PAGE_SIZE });
          continue;
        }
        const pieces = splitEntries(entries, pageBytes);
        for (let p = 0; p < pieces.length; p++) {
          next.push({ fence: p === 0 ? slot.fence : pieces[p][0][0].slice(), entries: pieces[p], size: entriesSize(pieces[p]) });
        }
      }

      // 3. Merge small rebuilt pages into a neighbour when the two fit in one page.
      const min = minPageBytes(pageBytes);
      for (let i = 0; i < next.length; i++) {
        const cur = next[i];
        if (isSlot(cur) || cur.size >= min) continue;
        while (cur.size < min && i + 1 < next.length) {
          const right = await asDraft(next[i + 1]);
          if (cur.size + right.draft.size - EMPTY_PAGE_SIZE > pageBytes) break;
          cur.entries = cur.entries.concat(right.draft.entries);
          cur.size += right.draft.size - EMPTY_PAGE_SIZE;
          if (right.slot) replaced.set(right.slot, right.page!);
          next.splice(i + 1, 1);
        }
        if (cur.size < min && i > 0) {
          const left = await asDraft(next[i - 1]);
          if (left.draft.size + cur.size - EMPTY_PAGE_SIZE <= pageBytes) {
            left.draft.entries = left.draft.entries.concat(cur.entries);
            left.draft.size += cur.size - EMPTY_PAGE_SIZE;
            if (left.slot) replaced.set(left.slot, left.page!);
            next.splice(i - 1, 2, left.draft);
            i--;
          }
        }
      }

      // 4. Write: delete the records of pages that no longer exist, put every rebuilt page.
      const drafts = next.filter((x): x is Draft => !isSlot(x));
      const keptFences = new Set(drafts.map((d) => d.fence));
      const requests: Promise<unknown>[] = [];
      for (const slot of replaced.keys()) if (!keptFences.has(slot.fence)) requests.push(pages.delete(slot.key));
      const encoded = new Map<Draft, Uint8Array>();
      for (const d of drafts) {
        const bytes = encodePage(d.entries);
        attemptedBytes += bytes.length;
        encoded.set(d, bytes);
        requests.push(pages.put(bytes, toBinaryKey(d.fence)));
      }
      // ops on logged keys: logged too, or replaying the older records would undo them
      // copies: the overlay keeps them, and the batch's ops are views of its whole record
      const shadowed = compaction || this.overlay.size === 0 ? [] : ops.filter((op) => this.overlay.has(op.key)).map(copyOp);
      let shadowBytes = 0;
      if (shadowed.length) {
        const bytes = encodeLogRecord(shadowed);
        shadowBytes = bytes.length;
        attemptedBytes += bytes.length;
        requests.push(tx.objectStore('log').put(bytes, seq));
      }
      const through = compaction?.through;
      if (through !== undefined) {
        requests.push(tx.objectStore('log').delete(IDBKeyRange.upperBound(through)));
        logBase = through + 1;
      }
      requests.push(metaStore.put({ ...meta!, seq, pageSeq: seq, logBase }, PAGE_META_KEY));
      await Promise.all([...requests, tx.done]);

      // 5. Committed: swap the index, pin replaced pages for live iterators, cache new pages.
      const newIndex: Slot[] = [];
      for (const x of next) {
        if (isSlot(x)) {
          newIndex.push(x);
        } else {
          const slot = slotOf(x.fence);
          this.cache.set(slot, new Page(encoded.get(x)!));
          newIndex.push(slot);
        }
      }
      for (const [slot, page] of replaced) {
        slot.dead = true;
        this.cache.delete(slot);
        for (const snap of this.snapshots) if (!snap.pinned.has(slot)) snap.pinned.set(slot, page);
      }
      this.index = newIndex;
      this.seq = seq;
      this.pageSeq = seq;
      if (shadowed.length) {
        this.overlay.apply(shadowed, seq);
        this.logRecords.push({ rec: seq, bytes: shadowBytes });
        this.logSize += shadowBytes;
      }
      if (through !== undefined) this.forgetBelow(logBase);
      this.commits++;
      this.channel?.postMessage({ seq } satisfies CommitNotice);
    } catch (err) {
      throw await this.failed(tx, err, attemptedBytes);
    }
  }
}

interface Bounds {
  lower: Uint8Array | undefined;
  lowerInclusive: boolean;
  upper: Uint8Array | undefined;
  upperInclusive: boolean;
}

/** What `catchUp` reads, from a transaction over pages, meta and log. */
interface CatchUpReads {
  pageKeys(): Promise<BinaryKey[]>;
  records(from: number): Promise<[number[], Uint8Array[]]>;
}

interface IDBPTransactionLike {
  abort(): void;
  readonly done: Promise<void>;
  readonly error: DOMException | null;
}

function readsOf(tx: IDBPTransaction<ProofsyncSchema, ('pages' | 'meta' | 'log')[], IDBTransactionMode>): CatchUpReads {
  return {
    pageKeys: () => tx.objectStore('pages').getAllKeys(),
    records: (from) => {
      const range = IDBKeyRange.lowerBound(from);
      return Promise.all([tx.objectStore('log').getAllKeys(range), tx.objectStore('log').getAll(range)]);
    },
  };
}

function copyOp(op: BatchOp): BatchOp {
  return op.type === 'put' ? { type: 'put', key: op.key.slice(), value: op.value.slice() } : { type: 'del', key: op.key.slice() };
}
