/**
 * `PackedIdbStore`: the core's `KVStore` seam (src/core/store.ts) on IndexedDB, with sorted
 * key-values packed into page-sized records (page.ts, layout.ts). docs/design.md "Storage in the
 * browser": one record per key measured 18k puts/s here against ~200 MB/s for 96 KB records,
 * so records are pages of ~32 KiB; the in-memory index of page fences (page-index.ts, loaded at
 * open), an LRU page cache (page-cache.ts) and binary search inside pages keep `get` fast.
 * Range scans: page-scan.ts; the two kinds of commit: page-writes.ts; the connection's state and
 * other connections' commits: store-connection.ts; options: store-options.ts. This file routes
 * each batch and schedules compaction.
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
import type { BatchOp, IterateOptions, KVStore, WriteOptions } from '../../core/store.ts';
import { normalizeOps, pageIndexOf } from './layout.ts';
import { encodePage, PAGE_FORMAT } from './page.ts';
import { compactionChunkEnd, indexFromKeys, pagesTouched, type Slot, storedPageBytes } from './page-index.ts';
import { scanBounds, scanSnapshot, type Snapshot } from './page-scan.ts';
import { appendLog, writePages } from './page-writes.ts';
import { openProofsyncDatabase, PAGE_META_KEY, toBinaryKey } from './schema.ts';
import { originEstimate, StoreConnection } from './store-connection.ts';
import { DEFAULT_PAGE_BYTES, type PackedIdbStoreOptions, type ResolvedStoreOptions, resolveStoreOptions, type StoreEstimate } from './store-options.ts';
import { decodeLogRecord, encodeLogRecord, logRecordSize } from './write-log.ts';

export type { PackedIdbStoreOptions, StoreEstimate } from './store-options.ts';

interface Compaction {
  /** Records up to this one are compacted when the last chunk commits. */
  readonly through: number;
  /** Overlay keys when it started, sorted; `cursor`: the next to write. */
  readonly keys: Uint8Array[];
  cursor: number;
}

export class PackedIdbStore implements KVStore {
  readonly name: string;
  readonly pageBytes: number;
  private readonly durability: IDBTransactionDurability;
  private readonly logLimit: number;
  private readonly compactPages: number;
  private readonly logAmplification: number;
  /** The index, cache, write log and `seq` of this connection (store-connection.ts). */
  private readonly conn: StoreConnection;
  private tail: Promise<unknown> = Promise.resolve();
  private compaction: Compaction | undefined;
  /** After a failed compaction (e.g. quota), the next starts once the log reaches this. */
  private compactRetryAt = 0;
  private compactionsDone = 0;

  private constructor(conn: StoreConnection, options: ResolvedStoreOptions & { pageBytes: number }) {
    this.name = conn.name;
    this.conn = conn;
    this.pageBytes = options.pageBytes;
    this.durability = options.durability;
    this.logLimit = options.logBytes;
    this.compactPages = options.compactPages;
    this.logAmplification = options.logAmplification;
    // another connection's commits stop a running compaction (its records stay)
    conn.onCatchUp = () => (this.compaction = undefined);
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
    const resolved = resolveStoreOptions(options);
    let conn: StoreConnection | undefined;
    const db = await openProofsyncDatabase(dbName, {
      onBlocking: () => conn?.shut('another connection is upgrading the database'),
      onTerminated: () => conn?.shut('the browser closed the connection'),
    });
    try {
      const tx = db.transaction(['pages', 'meta', 'log'], 'readwrite');
      const keys = await tx.objectStore('pages').getAllKeys();
      let meta = await tx.objectStore('meta').get(PAGE_META_KEY);
      const pageBytes = resolved.pageBytes ?? storedPageBytes(dbName, meta, DEFAULT_PAGE_BYTES);
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
      conn = new StoreConnection(dbName, db, index, meta!, resolved.cacheBytes);
      conn.log.replay(recKeys, records);
      return new PackedIdbStore(conn, { ...resolved, pageBytes });
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Number of page records. */
  get pageCount(): number {
    return this.conn.index.length;
  }

  /** Committed write batches since open. */
  get commitCount(): number {
    return this.conn.commits;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    for (;;) {
      this.conn.assertOpen();
      if (this.conn.stale) await this.conn.refresh();
      const logged = this.conn.log.overlay.get(key);
      if (logged) return logged.value?.slice();
      const index = this.conn.index;
      const slot = index[pageIndexOf(index, key)];
      let page = this.conn.cache.get(slot);
      if (!page) {
        page = (await this.conn.readPages([slot]))?.[0];
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
      this.conn.assertOpen();
      if (this.conn.stale) await this.conn.refresh();
      const out: (Uint8Array | undefined)[] = new Array(keys.length);
      const index = this.conn.index;
      const wanted = new Map<Slot, number[]>();
      for (let i = 0; i < keys.length; i++) {
        const logged = this.conn.log.overlay.get(keys[i]);
        if (logged) {
          out[i] = logged.value?.slice();
          continue;
        }
        const slot = index[pageIndexOf(index, keys[i])];
        const page = this.conn.cache.get(slot);
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
      const pages = await this.conn.readPages(slots);
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

  /**
   * Reads the pages holding `ranges` that are not cached into the page cache, in ONE
   * transaction, at most half the cache's worth (what does not fit is read by the scans
   * themselves). The trie fills a node record's elided leaves by a scan of the values under it;
   * a change-proof catch-up of 1,000 keys at 1M scanned ~1,000 places, each its own transaction
   * and round trip (bench/startup-trace.ts, RELOAD=1: ~2,900 page reads in ~1,100 transactions).
   */
  async prefetchRanges(ranges: readonly { gte: Uint8Array; lt: Uint8Array }[]): Promise<void> {
    this.conn.assertOpen();
    if (this.conn.stale) await this.conn.refresh();
    const index = this.conn.index;
    const room = Math.max(1, Math.floor(this.conn.cache.maxBytes / 2 / this.pageBytes));
    const wanted = new Set<Slot>();
    for (const r of ranges) {
      const last = pageIndexOf(index, r.lt);
      for (let p = pageIndexOf(index, r.gte); p <= last && wanted.size < room; p++) {
        if (!this.conn.cache.get(index[p])) wanted.add(index[p]);
      }
    }
    // undefined: a write moved the pages meanwhile; a hint needs no second try
    if (wanted.size) await this.conn.readPages([...wanted]);
  }

  iterate(options: IterateOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    for (const b of ['gte', 'gt', 'lte', 'lt'] as const) {
      if (options[b] !== undefined && !(options[b] instanceof Uint8Array)) throw new TypeError(`expected Uint8Array ${b} bound`);
    }
    if (options.limit !== undefined && typeof options.limit !== 'number') throw new TypeError(`expected numeric limit, got ${typeof options.limit}`);
    return this.scan(options);
  }

  /** The pages' entries merged with the overlay, as of the first `next()` (see the module comment). */
  private async *scan(o: IterateOptions): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.conn.assertOpen();
    const limit = o.limit ?? Infinity;
    if (!(limit > 0)) return; // as MemoryStore: a limit of 0 or less yields nothing
    if (this.conn.stale) await this.conn.refresh();
    const snap: Snapshot = { index: this.conn.index, pinned: new Map(), overlay: this.conn.log.overlay.sorted() };
    this.conn.snapshots.add(snap);
    try {
      yield* scanSnapshot(snap, scanBounds(o), o.reverse === true, limit, (s, slot) => this.conn.snapshotPage(s, slot));
    } finally {
      this.conn.snapshots.delete(snap);
    }
  }

  /**
   * Applies every op or none, in one readwrite transaction; later ops on the same key win.
   * Rejects with `StorageQuotaExceeded` when the origin is out of quota (nothing applied).
   * With `handOver` the ops' arrays are kept as they are until the batch commits (see
   * `WriteOptions`), else copied first.
   */
  write(ops: BatchOp[], options?: WriteOptions): Promise<void> {
    let sorted: BatchOp[];
    let record: Uint8Array | undefined;
    try {
      this.conn.assertOpen();
      if (options?.handOver) {
        // a sync's range write goes to the pages (which copy it) nearly always: encoded as a
        // record only if it is logged (commitBatch). Measured: the copy into a record and its
        // decoding were ~4% of the worker's CPU in a 200k-key browser sync, plus their garbage.
        sorted = normalizeOps(ops);
      } else {
        // copied now: the caller may reuse its arrays while the batch waits its turn. One copy,
        // the batch's log record, whose views become the ops: a live group of ~9k ops made a
        // copy per key and per value, then the record again.
        record = encodeLogRecord(normalizeOps(ops));
        sorted = decodeLogRecord(record);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.tail.then(() => (sorted.length ? this.commitBatch(sorted, record) : undefined));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Storage figures for deciding whether a large sync fits. */
  async estimate(): Promise<StoreEstimate> {
    const e = await originEstimate();
    return {
      usage: e.usage,
      quota: e.quota,
      available: e.usage !== undefined && e.quota !== undefined ? e.quota - e.usage : undefined,
      pages: this.conn.index.length,
      cachedPages: this.conn.cache.size,
      cachedBytes: this.conn.cache.bytes,
      logBytes: this.conn.log.bytes,
      overlayKeys: this.conn.log.overlay.size,
      compactions: this.compactionsDone,
    };
  }

  /**
   * Compacts the whole write log into the pages now (in chunks, behind queued writes), e.g.
   * before a planned reload or in tests. Resolves when the log is empty or a chunk failed.
   */
  async compact(): Promise<void> {
    this.conn.assertOpen();
    await this.tail;
    if (this.conn.log.count === 0) return;
    this.startCompaction();
    while (this.compaction) await this.tail;
  }

  /** Waits for queued writes, then closes the connection. Later calls throw `StoreClosed`. */
  async close(): Promise<void> {
    if (this.conn.closedReason) return;
    const pending = this.tail;
    this.conn.closedReason = 'close() was called';
    await pending;
    this.conn.shut('close() was called');
  }

  /** Whether a batch goes to the log (see `logAmplification` in store-options.ts). */
  private logs(ops: readonly BatchOp[], bytes: number): boolean {
    if (this.logLimit === 0) return false;
    if (bytes > this.logLimit) return false;
    if (this.logAmplification === 0) return true;
    // the fewest pages whose rewrite moves more than `logAmplification` times the batch
    const enough = Math.floor((this.logAmplification * bytes) / this.pageBytes) + 1;
    return pagesTouched(this.conn.index, ops, enough) >= enough;
  }

  /** `record`: `ops` encoded as a log record (the ops are views of it); undefined for a handed-over batch. */
  private async commitBatch(ops: BatchOp[], record: Uint8Array | undefined): Promise<void> {
    if (this.logs(ops, record?.length ?? logRecordSize(ops))) {
      if (!record) {
        // the overlay keeps views of the record, not of the caller's (larger) buffers
        record = encodeLogRecord(ops);
        ops = decodeLogRecord(record);
      }
      await appendLog(this.conn, ops, record, this.durability);
    } else await writePages(this.conn, ops, { pageBytes: this.pageBytes, durability: this.durability });
    const logged = this.conn.log.bytes;
    if (logged > this.logLimit && this.logLimit > 0 && logged >= this.compactRetryAt) this.startCompaction();
  }

  private startCompaction(): void {
    if (this.compaction || this.conn.closedReason) return;
    this.compaction = { through: this.conn.seq, keys: this.conn.log.overlay.sorted().map((e) => e.key), cursor: 0 };
    this.queueCompactionStep();
  }

  private queueCompactionStep(): void {
    const run = this.tail.then(() => this.compactStep());
    this.tail = run.catch(() => undefined);
  }

  /** Writes the next chunk of the overlay into the pages; the last one deletes the records. */
  private async compactStep(): Promise<void> {
    const c = this.compaction;
    if (!c || this.conn.closedReason) {
      this.compaction = undefined;
      return;
    }
    try {
      const ops: BatchOp[] = [];
      const end = compactionChunkEnd(this.conn.index, c.keys, c.cursor, this.compactPages);
      for (; c.cursor < end; c.cursor++) {
        // present: entries leave the overlay only when a compaction ends
        const e = this.conn.log.overlay.get(c.keys[c.cursor]);
        if (e) ops.push(e.value ? { type: 'put', key: e.key, value: e.value } : { type: 'del', key: e.key });
      }
      const last = c.cursor >= c.keys.length;
      await writePages(this.conn, ops, { pageBytes: this.pageBytes, durability: this.durability, compaction: { through: last ? c.through : undefined } });
      if (this.compaction !== c) return;
      if (last) {
        this.compaction = undefined;
        this.compactionsDone++;
        this.compactRetryAt = 0;
      } else this.queueCompactionStep();
    } catch {
      // the records stay: the state is whole. A later write past half a bound more tries again.
      if (this.compaction === c) this.compaction = undefined;
      this.compactRetryAt = this.conn.log.bytes + this.logLimit / 2;
    }
  }
}
