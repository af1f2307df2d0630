/**
 * `MerkleTrie`: the MerkleDB-compatible radix trie (docs/hashing.md) over a `KVStore`,
 * the newest committed state. Its store layout and node records are in node-record.ts, its
 * views (the copy-on-write overlays a commit is built in) in trie-view.ts, the committed nodes
 * its views share in node-cache.ts, and the writes in flight in staged-store.ts.
 */
import { valueDigest } from './hash.ts';
import { packPath, pathStr } from './path.ts';
import type { BatchOp, KVStore, WriteOptions } from './store.ts';
import type { KeyChange, KeyValue, Path } from './types.ts';
import { buildRoot, type BuiltNode } from './builder.ts';
import { builtToNode, decodeMeta, encodeFull, encodeMeta, encodeNode, isLeaf, META_KEY, NODE_END, NODE_START, nodeKey, valueKey, type Meta } from './node-record.ts';
import { NodeCache } from './node-cache.ts';
import { expandRecords } from './elided-leaves.ts';
import { StagedCommit, StagedReads } from './staged-store.ts';
import { TrieView } from './trie-view.ts';

/** Most staged commits merged into one store write (a bound on a transaction's size). */
const MAX_MERGED_COMMITS = 8;
const HANDED_OVER: WriteOptions = { handOver: true };
const copyOp = (op: BatchOp): BatchOp => (op.type === 'put' ? { type: 'put', key: op.key.slice(), value: op.value.slice() } : { type: 'del', key: op.key.slice() });

interface WaitingBatch {
  ops: BatchOp[][];
  commits: number;
  done: Promise<void>;
}

// The view is part of the trie's surface (`view()` returns one; proofs and sync take one).
export { TrieView, GraftConflict, type ProvenSubtrees } from './trie-view.ts';

/** How a trie is opened. */
export interface TrieOptions {
  /** Memory for committed node records shared by views (default 32 MiB). */
  cacheBytes?: number;
  /**
   * Write node records with their leaf children elided (default true): a 200k-key IndexedDB
   * replica holds 30 bytes of node records per key instead of 93. A store reads either form
   * whatever this says. The full node turns it off: filling elided leaves in costs a value scan
   * per node read, and serving range proofs from LevelDB took twice as long with it (module
   * comment of node-record.ts).
   */
  elideLeaves?: boolean;
}

/**
 * The persistent trie: the newest committed state in a store (docs/hashing.md). Without
 * history; `MerkleDatabase` adds the revision window proofs between roots need.
 *
 * @example
 * const trie = await MerkleTrie.open(new MemoryStore());
 * const root = await trie.commit([{ key: fromHex('01'), value: fromHex('ff') }]);
 * await trie.get(fromHex('01')); // ff
 */
export class MerkleTrie {
  /** The store the trie is kept in. */
  readonly store: KVStore;
  private meta: Meta;
  /** Committed nodes, shared by this trie's views. Correct only while this trie is the store's one writer. */
  private readonly cache: NodeCache;

  /** Whether node records are written with their leaf children elided (`TrieOptions.elideLeaves`). */
  readonly elideLeaves: boolean;

  private constructor(store: KVStore, meta: Meta, cache: NodeCache, elideLeaves: boolean) {
    this.store = store;
    this.reads = new StagedReads(store, this.staged);
    this.meta = meta;
    this.cache = cache;
    this.elideLeaves = elideLeaves;
  }

  /** Opens the trie held in `store` (an empty store is an empty trie). */
  static async open(store: KVStore, options: TrieOptions = {}): Promise<MerkleTrie> {
    return new MerkleTrie(store, decodeMeta(await store.get(META_KEY)), new NodeCache(options.cacheBytes), options.elideLeaves ?? true);
  }

  /** The root of the newest committed state (`EMPTY_ROOT` when empty). */
  get root(): Uint8Array {
    return this.meta.root;
  }

  /**
   * Reads up to `limit` committed node records in store order, after node key `after` (from
   * the first when undefined), into the node cache while it has room (never evicting), keeping
   * only paths of at most `maxTokens` tokens. Returns where to continue, or undefined once the
   * records are done or the cache is full. A live client runs it while idle so that updates walk
   * memory: a random put on a 1M-key trie needs a node below the fifth level one time in four
   * (measured: ~600 scattered node reads per 2,560 puts with the top five levels cached).
   * Call only between commits (the cache must match the store).
   */
  async warmNodes(after: Uint8Array | undefined, limit: number, maxTokens = Infinity): Promise<Uint8Array | undefined> {
    let last: Uint8Array | undefined;
    let n = 0;
    // a scan from the first record that takes every record, chunk after chunk, ends with the
    // cache whole (`NodeCache.whole`) unless it lost an entry meanwhile
    if (after === undefined) this.wholeScan = maxTokens === Infinity ? this.cache.lost : undefined;
    else if (maxTokens !== Infinity) this.wholeScan = undefined;
    // through `reads`: a scan waits for staged writes (their records are in the cache already)
    const it = this.reads.iterate(after ? { gt: after, lt: NODE_END } : { gte: NODE_START, lt: NODE_END });
    const chunk: { path: Path; raw: Uint8Array }[] = [];
    let full = false;
    for await (const [k, raw] of it) {
      last = k;
      const path = k.subarray(1);
      if (path.length <= maxTokens && !this.cache.has(pathStr(path))) chunk.push({ path: path.slice(), raw });
      if (++n >= limit) {
        full = true;
        break;
      }
    }
    // the cache keeps records with their elided leaves filled in, read from the values at once
    const expanded = await expandRecords(this.reads, chunk, { run: true });
    for (let i = 0; i < chunk.length; i++) {
      const { path } = chunk[i];
      const cost = NodeCache.cost(path, expanded[i]);
      if (cost > this.cache.room) {
        this.wholeScan = undefined;
        return undefined;
      }
      const s = pathStr(path);
      if (!this.cache.has(s)) this.cache.set(s, path, expanded[i]);
    }
    if (full) return last!.slice();
    if (this.wholeScan !== undefined) this.cache.markWhole(this.wholeScan);
    this.wholeScan = undefined;
    return undefined;
  }

  /** `NodeCache.lost` when the `warmNodes` scan in progress began from the first record. */
  private wholeScan: number | undefined;

  /** Whether the node cache holds every node record (`NodeCache.whole`): changes need no reads. */
  get cacheWhole(): boolean {
    return this.cache.whole;
  }

  /** A fresh overlay on the committed state (staged commits included: `stageView`). */
  view(): TrieView {
    return new TrieView(this.reads, this.meta.rootPath, this.meta.root, this.cache, this.elideLeaves);
  }

  /** The committed value under `key`, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.reads.get(valueKey(key));
  }

  /** The committed key-values with `start <= key <= end`, in key order, at most `limit`. */
  entries(start?: Uint8Array, end?: Uint8Array, limit?: number): AsyncIterable<KeyValue> {
    return this.view().entries(start, end, limit);
  }

  /**
   * Applies `changes` and returns the new root together with the store operations; with
   * `extra`, those operations are written in the same atomic batch (history, progress).
   */
  async commit(changes: Iterable<KeyChange>, extra: BatchOp[] = []): Promise<Uint8Array> {
    const v = this.view();
    await v.apply(changes);
    return this.commitView(v, extra);
  }

  /** Writes a view made from this trie's current state. */
  async commitView(v: TrieView, extra: BatchOp[] = []): Promise<Uint8Array> {
    const { root, durable } = this.stageView(v, extra);
    await durable;
    return root;
  }

  /**
   * Starts writing a view made from this trie's current state and makes it this trie's state at
   * once: new views and reads see it (from the cache and the staged ops) while the store write
   * runs, so the next batch of changes can be computed meanwhile (measured: a live group of 256
   * deltas waited ~50 ms on IndexedDB with nothing to do). `durable` settles with the write;
   * nothing may be announced as committed before it resolves. If it rejects, the store may or
   * may not hold the batch: the cache is emptied, the state goes back to the one before, and
   * views made on top of this one must be dropped. `options` go to the store's `write` (a
   * caller whose changes are never changed afterwards hands them over).
   *
   * Commits staged while a store write is in flight wait for it and then go to the store as ONE
   * batch (in order: later ops win), up to `MAX_MERGED_COMMITS`: what lands is always a prefix
   * of the staged commits, and a commit whose write fails fails every commit staged after it
   * unwritten (their changes were made on its state). Measured in a browser sync of 200k keys
   * (`node bench/sync-ab.ts`): one IndexedDB transaction per range answer kept the worker waiting
   * on the store ~10–18 s of a 14–26 s sync; see `MAX_STAGED_WRITES` in src/sync/state/driver.ts.
   */
  stageView(
    v: TrieView,
    extra: BatchOp[] = [],
    options?: WriteOptions,
  ): {
    /** The new root, current at once. */
    root: Uint8Array;
    /** Settles when the store write does. */
    durable: Promise<void>;
  } {
    const ops = v.batch();
    const all = extra.length ? ops.concat(extra) : ops;
    const before = this.meta;
    const staged = new StagedCommit(all);
    this.staged.push(staged);
    for (const [s, path, raw, node] of v.committedRecords()) {
      if (raw) this.cache.set(s, path, raw, node);
      else this.cache.delete(s);
    }
    // grafted records go to the store only: the cache no longer holds every record
    if (v.grafts) this.cache.lose();
    this.meta = { rootPath: v.rootNodePath, root: v.root };
    staged.done = this.queueWrite(all, options).then(
      () => {
        const i = this.staged.indexOf(staged);
        if (i >= 0) this.staged.splice(i, 1);
      },
      (err: unknown) => {
        // the oldest failed commit puts the state back to the one before it; the commits
        // staged after it fail with it (they were never written) and find it done
        if (this.staged.includes(staged)) {
          this.staged.length = 0;
          this.cache.clear();
          this.meta = before;
          this.waiting = undefined;
          this.writes = Promise.resolve();
        }
        throw err;
      },
    );
    // a failure reaches whoever awaits `durable`; unawaited, it is not an unhandled rejection
    staged.done.catch(() => undefined);
    return { root: this.meta.root, durable: staged.done };
  }

  /**
   * The store write of a staged commit: at once when no write is in flight, else merged into the
   * batch that waits for the write in flight (`stageView`). Ops that are not handed over are
   * copied before they wait: the caller may reuse its arrays once `stageView` returns.
   */
  private queueWrite(ops: BatchOp[], options: WriteOptions | undefined): Promise<void> {
    if (!this.waiting && this.idle) {
      const run = this.store.write(ops, options);
      this.track(run);
      return run;
    }
    const held = options?.handOver ? ops : ops.map(copyOp);
    if (this.waiting && this.waiting.commits < MAX_MERGED_COMMITS) {
      this.waiting.ops.push(held);
      this.waiting.commits++;
      return this.waiting.done;
    }
    const batch: WaitingBatch = { ops: [held], commits: 1, done: Promise.resolve() };
    // after the write before it, which must succeed: this batch was made on its state
    batch.done = this.writes.then(() => {
      if (this.waiting === batch) this.waiting = undefined;
      const all = batch.ops.length === 1 ? batch.ops[0] : batch.ops.flat();
      return this.store.write(all, HANDED_OVER);
    });
    this.waiting = batch;
    this.track(batch.done);
    return batch.done;
  }

  /** Makes `write` the last store write in flight. */
  private track(write: Promise<void>): void {
    this.idle = false;
    const tail = write.then(() => {
      if (this.writes === tail) this.idle = true;
    });
    tail.catch(() => undefined);
    this.writes = tail;
  }

  /** The last store write in flight (it rejects when a write before it failed). */
  private writes: Promise<void> = Promise.resolve();
  /** Whether no store write is in flight. */
  private idle = true;
  /** Staged commits waiting for the write in flight, to be written as one batch. */
  private waiting: WaitingBatch | undefined;

  /** Store writes in flight (`stageView`), oldest first. */
  private readonly staged: StagedCommit[] = [];

  /** Reads of this trie's views: the staged ops first, then the store. */
  private readonly reads: KVStore;

  /**
   * Loads sorted, unique key-values into an empty trie in one pass (far faster than puts).
   * Writes in chunks of `chunk` operations; the meta record goes last, so an interrupted load
   * leaves an empty-looking trie.
   */
  async bulkLoad(sorted: KeyValue[], chunk = 50_000): Promise<Uint8Array> {
    if (this.meta.rootPath) throw new Error('bulkLoad needs an empty trie');
    this.cache.lose(); // its records are written around the cache
    let ops: BatchOp[] = [];
    const flush = async () => {
      if (ops.length) await this.store.write(ops);
      ops = [];
    };
    const pending: Promise<void>[] = [];
    let rootPath: Path | undefined;
    const items = sorted.map((kv) => ({ key: kv.key, tokens: kv.key.length * 2, digest: valueDigest(kv.value), value: kv.value }));
    const root = buildRoot(items, (n: BuiltNode) => {
      rootPath = n.path;
      const node = builtToNode(n);
      if (!isLeaf(node)) ops.push({ type: 'put', key: nodeKey(n.path), value: this.elideLeaves ? encodeNode(node) : encodeFull(node) });
      if (n.value) ops.push({ type: 'put', key: valueKey(packPath(n.path)), value: n.value });
      if (ops.length >= chunk) {
        pending.push(this.store.write(ops));
        ops = [];
      }
    });
    await Promise.all(pending);
    await flush();
    this.meta = { rootPath, root };
    await this.store.write([{ type: 'put', key: META_KEY, value: encodeMeta(this.meta) }]);
    return root;
  }
}
