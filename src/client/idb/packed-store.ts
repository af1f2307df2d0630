/**
 * `PackedIdbStore`: the core's `KVStore` seam (src/core/store.ts) on IndexedDB, with sorted
 * key-values packed into page-sized records (page.ts, layout.ts). DESIGN.md "Storage in the
 * browser": one record per key measured 18k puts/s here against ~200 MB/s for 96 KB records,
 * so records are pages of ~32 KiB; the in-memory index of page fences (loaded at open), an LRU
 * page cache and binary search inside pages keep `get` fast.
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
import { compareBytes } from '../../core/bytes.ts';
import type { BatchOp, IterateOptions, KVStore } from '../../core/store.ts';
import { StorageCorrupted, StorageQuotaExceeded, StoreClosed } from './errors.ts';
import { entriesSize, mergeEntries, minPageBytes, normalizeOps, pageIndexOf, splitEntries } from './layout.ts';
import { encodePage, type Entry, Page, PAGE_FORMAT, pageSize } from './page.ts';
import { PageCache } from './page-cache.ts';
import { type BinaryKey, openProofsyncDatabase, PAGE_META_KEY, type PageMeta, type ProofsyncDatabase, toBinaryKey } from './schema.ts';

export interface PackedIdbStoreOptions {
  /** Target size of a page record in bytes (default 32 KiB; at least 256). */
  pageBytes?: number;
  /** Budget of the decoded-page cache in bytes (default 16 MiB). */
  cacheBytes?: number;
  /** Transaction durability (default 'relaxed': the batch is atomic either way). */
  durability?: IDBTransactionDurability;
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
}

const DEFAULT_PAGE_BYTES = 32 * 1024;
const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
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
  private readonly db: ProofsyncDatabase;
  private readonly cache: PageCache<Slot>;
  private readonly snapshots = new Set<Snapshot>();
  private index: readonly Slot[];
  private tail: Promise<unknown> = Promise.resolve();
  private seq: number;
  private closedReason: string | undefined;
  private commits = 0;
  private readonly channel: BroadcastChannel | undefined;

  private constructor(name: string, db: ProofsyncDatabase, index: Slot[], seq: number, options: Required<PackedIdbStoreOptions>) {
    this.name = name;
    this.db = db;
    this.index = index;
    this.seq = seq;
    this.pageBytes = options.pageBytes;
    this.durability = options.durability;
    this.cache = new PageCache(options.cacheBytes);
    if (typeof BroadcastChannel === 'function') {
      this.channel = new BroadcastChannel(storeChannelName(name));
      this.channel.onmessage = (m: MessageEvent<CommitNotice>) => {
        // cached pages may be older than that commit; the next read checks seq and reloads
        if (m.data.seq !== this.seq) this.cache.clear();
      };
    }
  }

  /**
   * Opens (creating if needed) the store in IndexedDB database `dbName`, loading the page index.
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
    const resolved = { pageBytes, cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES, durability: options.durability ?? 'relaxed' };
    let store: PackedIdbStore | undefined;
    const db = await openProofsyncDatabase(dbName, {
      onBlocking: () => store?.shut('another connection is upgrading the database'),
      onTerminated: () => store?.shut('the browser closed the connection'),
    });
    try {
      const tx = db.transaction(['pages', 'meta'], 'readwrite');
      const keys = await tx.objectStore('pages').getAllKeys();
      let meta = await tx.objectStore('meta').get(PAGE_META_KEY);
      if (keys.length === 0) {
        meta = { format: PAGE_FORMAT, pageBytes, seq: 0 };
        await tx.objectStore('pages').put(encodePage([]), toBinaryKey(new Uint8Array(0)));
        await tx.objectStore('meta').put(meta, PAGE_META_KEY);
        keys.push(toBinaryKey(new Uint8Array(0)));
      }
      await tx.done;
      const index = indexFromKeys(dbName, keys, meta);
      store = new PackedIdbStore(dbName, db, index, meta!.seq, resolved);
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
      const index = this.index;
      const slot = index[pageIndexOf(index, key)];
      let page = this.cache.get(slot);
      if (!page) {
        page = await this.readPage(slot);
        // a write replaced the page meanwhile, or another connection wrote: look again
        if (!page) continue;
      }
      const i = page.indexOf(key);
      return i < 0 ? undefined : page.valueAt(i).slice();
    }
  }

  iterate(options: IterateOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    for (const b of ['gte', 'gt', 'lte', 'lt'] as const) {
      if (options[b] !== undefined && !(options[b] instanceof Uint8Array)) throw new TypeError(`expected Uint8Array ${b} bound`);
    }
    if (options.limit !== undefined && typeof options.limit !== 'number') throw new TypeError(`expected numeric limit, got ${typeof options.limit}`);
    return this.scan(options);
  }

  private async *scan(o: IterateOptions): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.assertOpen();
    const limit = o.limit ?? Infinity;
    if (!(limit > 0)) return; // as MemoryStore: a limit of 0 or less yields nothing
    // both bounds on one side: the stricter applies (their intersection)
    const useGt = o.gt !== undefined && (o.gte === undefined || compareBytes(o.gt, o.gte) >= 0);
    const lower = useGt ? o.gt : o.gte;
    const lowerInclusive = !useGt;
    const useLt = o.lt !== undefined && (o.lte === undefined || compareBytes(o.lt, o.lte) <= 0);
    const upper = useLt ? o.lt : o.lte;
    const upperInclusive = !useLt;
    const snap: Snapshot = { index: this.index, pinned: new Map() };
    this.snapshots.add(snap);
    // The scan is a cursor: `pos` is the next position (a key, inclusive or not), so it can
    // continue in a fresh index if another connection's commit forces a reload.
    let n = 0;
    try {
      if (!o.reverse) {
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
            if (++n >= limit) return;
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
            if (++n >= limit) return;
          }
          // every earlier page holds keys below this fence
          if (s === 0 || (lower && compareBytes(index[s].fence, lower) <= 0)) return;
          pos = index[s].fence;
          inclusive = false;
        }
      }
    } finally {
      this.snapshots.delete(snap);
    }
  }

  /**
   * Applies every op or none, in one readwrite transaction; later ops on the same key win.
   * Rejects with `StorageQuotaExceeded` when the origin is out of quota (nothing applied).
   */
  write(ops: BatchOp[]): Promise<void> {
    let sorted: BatchOp[];
    try {
      this.assertOpen();
      // copied now: the caller may reuse its arrays while the batch waits its turn
      sorted = normalizeOps(ops).map((op) => (op.type === 'put' ? { type: 'put', key: op.key.slice(), value: op.value.slice() } : { type: 'del', key: op.key.slice() }));
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.tail.then(() => (sorted.length ? this.apply(sorted) : undefined));
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
    };
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

  /**
   * Reads a slot's page and the database's `seq` in one readonly transaction. Returns
   * undefined when the slot is no longer current: replaced by a write of this store, or (seq
   * moved) by another connection, in which case the index is reloaded from that transaction.
   */
  private async readPage(slot: Slot): Promise<Page | undefined> {
    this.assertOpen();
    const tx = this.db.transaction(['pages', 'meta'], 'readonly');
    const [bytes, meta] = await Promise.all([tx.objectStore('pages').get(slot.key), tx.objectStore('meta').get(PAGE_META_KEY)]);
    if (slot.dead) return undefined;
    if (meta?.seq !== this.seq) {
      const keys = await tx.objectStore('pages').getAllKeys();
      if (!slot.dead && meta?.seq !== this.seq) this.adopt(indexFromKeys(this.name, keys, meta), meta!.seq);
      return undefined;
    }
    if (!bytes) throw new StorageCorrupted(`page record missing for a live index entry in "${this.name}"`);
    const page = new Page(bytes);
    this.cache.set(slot, page);
    return page;
  }

  /** Takes an index written by another connection: every current slot is dead, caches go. */
  private adopt(index: Slot[], seq: number): void {
    for (const slot of this.index) slot.dead = true;
    this.cache.clear();
    this.index = index;
    this.seq = seq;
  }

  /** The page a snapshot sees at `slot`; undefined when the snapshot had to move to a new index. */
  private async snapshotPage(snap: Snapshot, slot: Slot): Promise<Page | undefined> {
    const known = snap.pinned.get(slot) ?? this.cache.get(slot);
    if (known) return known;
    const read = await this.readPage(slot);
    // a write of this store that committed during the read pinned what this snapshot must see
    const pinned = snap.pinned.get(slot);
    if (pinned) return pinned;
    if (!read) {
      // another connection wrote: continue in the current index (see the module comment)
      snap.index = this.index;
      snap.pinned.clear();
    }
    return read;
  }

  private async apply(ops: BatchOp[]): Promise<void> {
    this.assertOpen();
    const pageBytes = this.pageBytes;
    const tx = this.db.transaction(['pages', 'meta'], 'readwrite', { durability: this.durability });
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
      // 0. Another connection may have written since this store last looked: reload its index.
      const meta = await metaStore.get(PAGE_META_KEY);
      if (meta?.seq !== this.seq) this.adopt(indexFromKeys(this.name, await pages.getAllKeys(), meta), meta!.seq);
      const index = this.index;
      const seq = this.seq + 1;

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
      requests.push(metaStore.put({ ...meta!, seq }, PAGE_META_KEY));
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
      this.commits++;
      this.channel?.postMessage({ seq } satisfies CommitNotice);
    } catch (err) {
      try {
        tx.abort();
      } catch {
        // already aborted or finished
      }
      await tx.done.catch(() => undefined);
      if (isQuotaError(err) || isQuotaError(tx.error)) {
        const e = await this.estimate().catch(() => undefined);
        throw new StorageQuotaExceeded({ attemptedBytes, usage: e?.usage, quota: e?.quota, cause: err });
      }
      throw err;
    }
  }
}
