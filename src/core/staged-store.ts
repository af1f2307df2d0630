/**
 * The staged write pipeline of a trie: commits whose store writes are still in flight, and the
 * store as the trie's views read it meanwhile (`StagedReads`, a `KVStore` over the real one).
 * `MerkleTrie.stageView` makes a commit the trie's state at once and writes it in the
 * background; reads must then see the staged ops before the store.
 */
import { compareBytes } from './bytes.ts';
import { pathStr } from './path.ts';
import { entryLowerBound, getMany, readRange, type BatchOp, type IterateOptions, type KVStore, type RangeOptions, type WriteOptions } from './store.ts';

/**
 * One staged commit: its ops, by store key (null: deleted) once a read needs them (most reads
 * of a live group hit the node cache: building the map for every commit costs 2% of the worker's
 * time), and its store write.
 */
export class StagedCommit {
  readonly #list: BatchOp[];
  #byKey: Map<string, Uint8Array | null> | undefined;
  done: Promise<void> = Promise.resolve();

  constructor(ops: BatchOp[]) {
    this.#list = ops;
  }

  get(key: string): Uint8Array | null | undefined {
    if (!this.#byKey) {
      this.#byKey = new Map();
      for (const op of this.#list) this.#byKey.set(pathStr(op.key), op.type === 'put' ? op.value : null);
    }
    return this.#byKey.get(key);
  }

  /** The ops by key, sorted (the last op on a key wins; null: deleted), once a merged scan needs them. */
  #sorted: [Uint8Array, Uint8Array | null][] | undefined;

  /** This commit's last op on each key in `[gte, lt)`, in key order (null: deleted). */
  between(gte: Uint8Array, lt: Uint8Array): [Uint8Array, Uint8Array | null][] {
    if (!this.#sorted) {
      const last = new Map<string, [Uint8Array, Uint8Array | null]>();
      for (const op of this.#list) last.set(pathStr(op.key), [op.key, op.type === 'put' ? op.value : null]);
      this.#sorted = [...last.values()].sort((a, b) => compareBytes(a[0], b[0]));
    }
    const e = this.#sorted;
    const out: [Uint8Array, Uint8Array | null][] = [];
    for (let i = entryLowerBound(e, gte); i < e.length && compareBytes(e[i][0], lt) < 0; i++) out.push(e[i]);
    return out;
  }

  /** Whether an op's key lies within the bounds of a scan. */
  touches(o: IterateOptions): boolean {
    for (const op of this.#list) if (within(op.key, o)) return true;
    return false;
  }
}

function within(k: Uint8Array, o: IterateOptions): boolean {
  if (o.gte !== undefined && compareBytes(k, o.gte) < 0) return false;
  if (o.gt !== undefined && compareBytes(k, o.gt) <= 0) return false;
  if (o.lte !== undefined && compareBytes(k, o.lte) > 0) return false;
  if (o.lt !== undefined && compareBytes(k, o.lt) >= 0) return false;
  return true;
}

/**
 * The store as a trie's views read it while commits are staged: point reads look in the staged
 * ops (newest first), scans wait until the writes with a key in their bounds are done (a sync's
 * next range answer scans a key range the write before does not touch: waiting for it kept the
 * worker idle for every IndexedDB commit). Without staged commits every call goes straight to
 * the store.
 */
export class StagedReads implements KVStore {
  readonly #store: KVStore;
  readonly #staged: readonly StagedCommit[];

  constructor(store: KVStore, staged: readonly StagedCommit[]) {
    this.#store = store;
    this.#staged = staged;
  }

  #lookup(key: Uint8Array): Uint8Array | null | undefined {
    const s = pathStr(key);
    for (let i = this.#staged.length - 1; i >= 0; i--) {
      const v = this.#staged[i].get(s);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** Settles when every staged write with a key within `o` has. */
  #settled(o: IterateOptions): Promise<unknown> | undefined {
    const waits = this.#staged.filter((c) => c.touches(o)).map((c) => c.done.catch(() => undefined));
    return waits.length ? Promise.all(waits) : undefined;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#staged.length === 0) return this.#store.get(key);
    const v = this.#lookup(key);
    return v === undefined ? this.#store.get(key) : Promise.resolve(v ?? undefined);
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (this.#staged.length === 0) return getMany(this.#store, keys);
    const out: (Uint8Array | undefined)[] = new Array(keys.length);
    const ask: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const v = this.#lookup(keys[i]);
      if (v === undefined) ask.push(i);
      else out[i] = v ?? undefined;
    }
    if (ask.length) {
      const got = await getMany(this.#store, ask.map((i) => keys[i]));
      for (let j = 0; j < ask.length; j++) out[ask[j]] = got[j];
    }
    return out;
  }

  /** The store's hint; ranges a staged write touches are left to the scan (it waits for the write). */
  prefetchRanges(ranges: readonly { gte: Uint8Array; lt: Uint8Array }[]): Promise<void> {
    if (!this.#store.prefetchRanges) return Promise.resolve();
    return this.#store.prefetchRanges(this.#staged.length ? ranges.filter((r) => !this.#staged.some((c) => c.touches(r))) : ranges);
  }

  async *iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    if (this.#staged.length) await this.#settled(options);
    yield* this.#store.iterate(options);
  }

  async range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    if (this.#staged.length) await this.#settled(options);
    return readRange(this.#store, options);
  }

  /**
   * `range` over `[gte, lt)` without waiting for staged writes: the store's entries with the
   * staged ops laid over them, oldest first. Whatever prefix of the staged commits the store
   * holds already, laying all of them over it in order gives the staged state (each op sets or
   * removes a key outright). For the short scans that fill in elided leaves (elided-leaves.ts):
   * a view reading a record must not wait for the write in flight, as its point reads do not.
   */
  async rangeNow(o: { gte: Uint8Array; lt: Uint8Array; limit: number }): Promise<[Uint8Array, Uint8Array][]> {
    if (this.#staged.length === 0) return readRange(this.#store, o);
    const over = new Map<string, [Uint8Array, Uint8Array | null]>();
    for (const c of this.#staged) for (const e of c.between(o.gte, o.lt)) over.set(pathStr(e[0]), e);
    if (over.size === 0) return readRange(this.#store, o);
    let deleted = 0;
    for (const e of over.values()) if (e[1] === null) deleted++;
    // a deleted key may hide one of the store's: read as many more
    const base = await readRange(this.#store, { gte: o.gte, lt: o.lt, limit: o.limit + deleted });
    const merged = new Map<string, [Uint8Array, Uint8Array]>();
    for (const [k, v] of base) merged.set(pathStr(k), [k, v]);
    for (const [s, [k, v]] of over) {
      if (v === null) merged.delete(s);
      else merged.set(s, [k, v]);
    }
    return [...merged.values()].sort((a, b) => compareBytes(a[0], b[0])).slice(0, o.limit);
  }

  write(ops: BatchOp[], options?: WriteOptions): Promise<void> {
    return this.#store.write(ops, options);
  }
}
