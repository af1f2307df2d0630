/**
 * The storage seam of the core: a small, ordered, async key-value store with atomic batches.
 * The in-memory store here serves unit tests and Node tools; the full node implements it on
 * LevelDB and the browser client on IndexedDB. Keys sort byte-wise.
 */
import { compareBytes } from './bytes.ts';

/** One write of an atomic batch (`KVStore.write`): a put or a delete. */
export type BatchOp =
  | {
      /** Store `value` under `key`. */
      type: 'put';
      /** The key written. */
      key: Uint8Array;
      /** The value stored. */
      value: Uint8Array;
    }
  | {
      /** Remove `key` (a no-op when absent). */
      type: 'del';
      /** The key removed. */
      key: Uint8Array;
    };

/**
 * Bounds of a scan; with both bounds of one side given, the stricter one applies.
 *
 * @example
 * // the last 10 keys before 0x80, newest first
 * for await (const [key] of store.iterate({ lt: fromHex('80'), reverse: true, limit: 10 })) console.log(toHex(key));
 */
export interface IterateOptions {
  /** Keys greater than or equal to this. */
  gte?: Uint8Array;
  /** Keys strictly greater than this. */
  gt?: Uint8Array;
  /** Keys less than or equal to this. */
  lte?: Uint8Array;
  /** Keys strictly less than this. */
  lt?: Uint8Array;
  /** Descending key order (default ascending). */
  reverse?: boolean;
  /** At most this many entries (default no limit). */
  limit?: number;
}

/**
 * An ordered, async key-value store with atomic batches: the storage seam the trie and the
 * database run on (LevelDB on the node, IndexedDB in the browser, `MemoryStore` in tests).
 *
 * @example
 * const store: KVStore = new MemoryStore();
 * await store.write([{ type: 'put', key: fromHex('01'), value: fromHex('ff') }]);
 * for await (const [key, value] of store.iterate({ gte: fromHex('00') })) console.log(toHex(key), toHex(value));
 */
export interface KVStore {
  /** The value under `key`, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Many reads in one call (optional: a store that can batch reads, like LevelDB, should). */
  getMany?(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Entries in key order (descending with `reverse`) within the bounds. */
  iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  /**
   * At most `limit` entries in ascending key order within the bounds, in one call (optional: a
   * store that can read a run at once, like LevelDB, should; see `readRange`).
   */
  range?(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]>;
  /** Applies every op or none. */
  write(ops: BatchOp[], options?: WriteOptions): Promise<void>;
  /**
   * A hint (optional): the caller is about to scan these key ranges (`gte` inclusive, `lt`
   * exclusive). A store whose reads are round trips (IndexedDB pages) loads what holds them in
   * one go, so the scans that follow wait for no read each; a store may do less, or nothing.
   */
  prefetchRanges?(ranges: readonly { gte: Uint8Array; lt: Uint8Array }[]): Promise<void>;
}

/** How a batch is handed to `KVStore.write`. */
export interface WriteOptions {
  /**
   * The caller never changes the ops' keys and values afterwards, so a store that holds the
   * batch until its turn may keep them as they are instead of copying them first (the packed
   * IndexedDB store copied every range answer's ~0.5 MB into a log record it then did not log).
   */
  handOver?: boolean;
}

/** Bounds of an ascending read of at most `limit` entries. */
export type RangeOptions = Omit<IterateOptions, 'reverse' | 'limit'> & { limit: number };

/**
 * `store.range` where the store has it, else the entries collected from `iterate`. Measured on
 * LevelDB: serving 2,048-key range proofs through three nested async generators (trie view,
 * key prefix, LevelDB) cost a third of the server's time over reading each run at once.
 */
export async function readRange(store: KVStore, options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
  if (store.range) return store.range(options);
  const out: [Uint8Array, Uint8Array][] = [];
  if (options.limit <= 0) return out;
  for await (const e of store.iterate(options)) {
    out.push(e);
    if (out.length >= options.limit) break;
  }
  return out;
}

const keyOf = (k: Uint8Array): string => String.fromCharCode.apply(null, k as unknown as number[]);

/** `store.getMany` where the store has it, else parallel `get`s. */
export function getMany(store: KVStore, keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
  return store.getMany ? store.getMany(keys) : Promise.all(keys.map((k) => store.get(k)));
}

/** The index of the first entry whose key is not below `key`, in entries sorted by key. */
export function entryLowerBound(entries: readonly (readonly [Uint8Array, unknown])[], key: Uint8Array): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(entries[mid][0], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A sorted in-memory store. Sorting is lazy: writes are O(1), the next scan sorts once.
 * Written arrays are kept as they are: callers must not mutate them afterwards.
 *
 * @example
 * const db = await MerkleDatabase.open(new MemoryStore());
 * await db.commit([{ key: fromHex('01'), value: fromHex('ff') }]);
 */
export class MemoryStore implements KVStore {
  private readonly map = new Map<string, [Uint8Array, Uint8Array]>();
  private sorted: [Uint8Array, Uint8Array][] | undefined = [];

  /** The number of keys held. */
  get size(): number {
    return this.map.size;
  }

  /** The value under `key`, or undefined. */
  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.map.get(keyOf(key))?.[1];
  }

  /** As `get`, without a promise. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.map.get(keyOf(key))?.[1];
  }

  /** Applies every op (there is no failure to roll back in memory). */
  async write(ops: BatchOp[]): Promise<void> {
    this.writeSync(ops);
  }

  /** As `write`, without a promise. */
  writeSync(ops: BatchOp[]): void {
    for (const op of ops) {
      const k = keyOf(op.key);
      if (op.type === 'put') {
        const had = this.map.has(k);
        this.map.set(k, [op.key, op.value]);
        if (had && this.sorted) {
          const i = this.lowerBound(op.key);
          this.sorted[i] = this.map.get(k)!;
        } else this.sorted = undefined;
      } else if (this.map.delete(k)) this.sorted = undefined;
    }
  }

  private entries(): [Uint8Array, Uint8Array][] {
    if (!this.sorted) this.sorted = [...this.map.values()].sort((a, b) => compareBytes(a[0], b[0]));
    return this.sorted;
  }

  private lowerBound(key: Uint8Array): number {
    return entryLowerBound(this.entries(), key);
  }

  /** Entries in key order (descending with `reverse`) within the bounds. */
  async *iterate(o: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    yield* this.iterateSync(o);
  }

  /** As `iterate`, synchronously. */
  *iterateSync(o: IterateOptions): Iterable<[Uint8Array, Uint8Array]> {
    const e = this.entries();
    // With both bounds of a side given, the stricter one applies.
    let lo = 0;
    if (o.gte) lo = Math.max(lo, this.lowerBound(o.gte));
    if (o.gt) {
      let g = this.lowerBound(o.gt);
      if (g < e.length && compareBytes(e[g][0], o.gt) === 0) g++;
      lo = Math.max(lo, g);
    }
    let hi = e.length;
    if (o.lt) hi = Math.min(hi, this.lowerBound(o.lt));
    if (o.lte) {
      let l = this.lowerBound(o.lte);
      if (l < e.length && compareBytes(e[l][0], o.lte) === 0) l++;
      hi = Math.min(hi, l);
    }
    const limit = o.limit ?? Infinity;
    let n = 0;
    const snapshot = e;
    if (o.reverse) {
      for (let i = hi - 1; i >= lo && n < limit; i--, n++) yield snapshot[i];
    } else {
      for (let i = lo; i < hi && n < limit; i++, n++) yield snapshot[i];
    }
  }
}
