/**
 * The MerkleDB-compatible radix trie (docs/hashing.md) over a `KVStore`.
 *
 * Layout in the store (one byte per token in node keys, so store order is trie order):
 *   'n' ++ path  → node record of a node with children: value digest, children (index,
 *                  compressed path, id)
 *   'v' ++ key   → value (range scans read values without touching nodes)
 *   'm'          → meta: root path and root id
 * A leaf (a value, no children: most nodes) has no node record: it is rebuilt from its value.
 * So a synced key costs one record, as the raw key-value would (measured: storing leaf records
 * made a range-proof commit write 2.1 records per key, and cost 4× the raw writes).
 * A `TrieView` is a copy-on-write overlay of changed nodes and values over the store: a commit
 * builds one and writes it in one atomic batch, and a historical root is a view with the later
 * changes reverted (how change and range proofs are served at older roots, as AvalancheGo does).
 */
import { errorClass, ProofsyncError } from './errors.ts';
import { compareBytes, concatBytes, equalBytes } from './bytes.ts';
import { hashNode, NodeMidstates, valueDigest } from './hash.ts';
import { commonPrefixLength, hasPrefix, keyToPath, packPath } from './path.ts';
import { getMany, readRange, type BatchOp, type IterateOptions, type KVStore, type RangeOptions } from './store.ts';
import { EMPTY_ROOT, type KeyChange, type KeyValue, type Path, type ProofNode } from './types.ts';
import { buildRoot, childPath, tokenAt, type BuiltNode } from './builder.ts';

export interface ChildEntry {
  /** Full path of the child node. */
  path: Path;
  id: Uint8Array;
  /** A stale entry's `pathStr(path)`, when its maker had it (rehash looks the child up by it). */
  key?: string;
}

export interface TrieNode {
  path: Path;
  digest: Uint8Array | undefined;
  children: (ChildEntry | undefined)[];
  id: Uint8Array;
  /** Read from a node record (so a change into a leaf must delete that record). */
  stored?: boolean;
}

const isLeaf = (n: TrieNode): boolean => {
  for (let i = 0; i < 16; i++) if (n.children[i] !== undefined) return false;
  return true;
};

const N = 0x6e; // 'n'
const V = 0x76; // 'v'
export const META_KEY = new Uint8Array([0x6d]); // 'm'

export const nodeKey = (path: Path): Uint8Array => {
  const k = new Uint8Array(path.length + 1);
  k[0] = N;
  k.set(path, 1);
  return k;
};
export const valueKey = (key: Uint8Array): Uint8Array => {
  const k = new Uint8Array(key.length + 1);
  k[0] = V;
  k.set(key, 1);
  return k;
};
const VALUE_END = new Uint8Array([V + 1]);
const ZERO = new Uint8Array([0]);
/** Store entries read per round trip by `range` and `entries`. */
const RUN = 2048;

type OverlayEntry = { key: Uint8Array; value: Uint8Array | null };
const NODE_START = new Uint8Array([N]);
const NODE_END = new Uint8Array([N + 1]);
const STALE = new Uint8Array(0);

/**
 * A path (or key) as a string, the overlay's and the cache's map key. Short paths, the upper
 * levels every update walks, without `apply` (one-character strings are not even allocated).
 */
const pathStr = (p: Uint8Array): string => {
  switch (p.length) {
    case 0:
      return '';
    case 1:
      return String.fromCharCode(p[0]);
    case 2:
      return String.fromCharCode(p[0], p[1]);
    case 3:
      return String.fromCharCode(p[0], p[1], p[2]);
    case 4:
      return String.fromCharCode(p[0], p[1], p[2], p[3]);
    case 5:
      return String.fromCharCode(p[0], p[1], p[2], p[3], p[4]);
    default:
      return String.fromCharCode.apply(null, p as unknown as number[]);
  }
};

/** A node record's head (`encodeNode` and `encodeBuilt`): digest flag, digest, id, child count; returns the offset after it. */
function writeNodeHeader(out: Uint8Array, digest: Uint8Array | undefined, id: Uint8Array, count: number): number {
  let o = 0;
  out[o++] = digest ? 1 : 0;
  if (digest) {
    out[o++] = digest.length;
    out.set(digest, o);
    o += digest.length;
  }
  out.set(id, o);
  o += 32;
  out[o++] = count;
  return o;
}

export function encodeNode(n: TrieNode): Uint8Array {
  const base = n.path.length + 1;
  const kids = n.children;
  let len = 2 + (n.digest ? 1 + n.digest.length : 0) + 32;
  let count = 0;
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c !== undefined) {
      count++;
      len += 2 + (c.path.length - base) + 32;
    }
  }
  const out = new Uint8Array(len);
  let o = writeNodeHeader(out, n.digest, n.id, count);
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c === undefined) continue;
    const p = c.path;
    out[o++] = i;
    out[o++] = p.length - base;
    for (let j = base; j < p.length; j++) out[o++] = p[j];
    // ids are views of records or hashes (mixed backing stores): a builtin copy is monomorphic
    out.set(c.id, o);
    o += 32;
  }
  return out;
}

export function decodeNode(path: Path, b: Uint8Array): TrieNode {
  // Ids and the digest are views into `b` (records are never mutated; the cache keeps them), and
  // the children's paths share one allocation: a decode allocates per child only the entry and
  // a view (measured: per-child copies made decoding, and the collections after it, a third of
  // a live group's CPU time).
  let o = 0;
  let digest: Uint8Array | undefined;
  if (b[o++] === 1) {
    const l = b[o++];
    digest = b.subarray(o, o + l);
    o += l;
  }
  const id = b.subarray(o, o + 32);
  o += 32;
  const count = b[o++];
  const children: (ChildEntry | undefined)[] = new Array(16);
  if (count === 0) return { path, digest, children, id, stored: true };
  const base = path.length + 1;
  // total path bytes: each child's full path is `path ++ index ++ suffix`
  let total = 0;
  for (let k = 0, q = o; k < count; k++) {
    const l = b[q + 1];
    total += base + l;
    q += 2 + l + 32;
  }
  const paths = new Uint8Array(total);
  let po = 0;
  for (let k = 0; k < count; k++) {
    const i = b[o++];
    const l = b[o++];
    const start = po;
    paths.set(path, po);
    po += path.length;
    paths[po++] = i;
    for (let j = 0; j < l; j++) paths[po++] = b[o + j];
    o += l;
    // views made by the constructor: `subarray` is ~1.5× slower (it looks up a species constructor)
    children[i] = { path: new Uint8Array(paths.buffer, start, po - start), id: new Uint8Array(b.buffer, b.byteOffset + o, 32) };
    o += 32;
  }
  return { path, digest, children, id, stored: true };
}

/**
 * `encodeNode(builtToNode(n))`, from the builder's node as it is: children's paths stay packed
 * (a proof's rebuild has a child per key; unpacking each cost a 64-byte array and an object).
 */
export function encodeBuilt(n: BuiltNode): Uint8Array {
  const path = n.path;
  const base = path.length + 1;
  const kids = n.children;
  let len = 2 + (n.digest ? 1 + n.digest.length : 0) + 32;
  let count = 0;
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c !== undefined) {
      count++;
      len += 2 + (c.tokens - base) + 32;
    }
  }
  const out = new Uint8Array(len);
  let o = writeNodeHeader(out, n.digest, n.id, count);
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c === undefined) continue;
    out[o++] = i;
    out[o++] = c.tokens - base;
    const key = c.key;
    for (let j = base; j < c.tokens; j++) out[o++] = tokenAt(key, j);
    out.set(c.id, o);
    o += 32;
  }
  return out;
}

/** The leaf at whole-byte `path` holding `value` (leaves have no node record). */
function leafNode(path: Path, value: Uint8Array): TrieNode {
  const digest = valueDigest(value);
  return { path, digest, children: new Array(16), id: hashNode(path, digest, []) };
}

interface Meta {
  rootPath: Path | undefined;
  root: Uint8Array;
}

function encodeMeta(m: Meta): Uint8Array {
  if (!m.rootPath) return new Uint8Array([0]);
  return concatBytes(new Uint8Array([1]), m.root, m.rootPath);
}

function decodeMeta(b: Uint8Array | undefined): Meta {
  if (!b || b[0] === 0) return { rootPath: undefined, root: EMPTY_ROOT };
  return { root: b.slice(1, 33), rootPath: b.slice(33) };
}

/**
 * Nodes of at most this many tokens keep their SHA-256 midstates in a view: a live group rehashes
 * the root and the ~270 nodes below it after every delta, each time with one or a few child ids
 * changed, so the blocks before the first changed id are not compressed again. Measured on a 1M-
 * key trie, groups of 256 deltas of 10 random puts: 368 → 314 block compressions per delta (3
 * tokens: 306, for 16× the nodes).
 */
const MIDSTATE_TOKENS = 2;

/** Paths of at most this many tokens stay decoded in the node cache. */
const DECODED_TOKENS = 3;

/** A cached record; `used`: read or written since the clock hand last passed it. */
class CacheEntry {
  used = true;
  readonly key: string;
  slot: number;
  path: Path;
  raw: Uint8Array;
  node: TrieNode | undefined;

  constructor(key: string, slot: number, path: Path, raw: Uint8Array, node: TrieNode | undefined) {
    this.key = key;
    this.slot = slot;
    this.path = path;
    this.raw = raw;
    this.node = node;
  }
}

/**
 * Committed node records, bounded in bytes, evicted by the clock (second-chance) approximation
 * of least recently used: entries sit in a ring of slots, a read or a write only marks its
 * entry, and the hand evicts the first unmarked entry it meets, unmarking the others on its way.
 * Measured on a live group: exact LRU (moving each read entry to the back of a Map of ~300k
 * records) was most of the cost of the path walks, and the Map's deletions made it rebuild its
 * table again and again. Shared by a trie's views: it holds the committed state only (a view's
 * changes live in its overlay until `commitView` writes them and updates the cache). It keeps
 * the encoded records, decoded on use: a decoded node with 16 children costs ~4 KB of heap
 * against ~0.6 KB encoded (measured: the decoded cache of a 1M-key sync held most of a 1 GB
 * worker heap).
 * Measured: a commit of 1,000 puts on a 300k-key LevelDB trie spent most of its time waiting on
 * ~6,000 sequential node reads; cached upper levels remove most of them.
 */
export class NodeCache {
  private readonly map = new Map<string, CacheEntry>();
  private readonly ring: (CacheEntry | undefined)[] = [];
  private readonly free: number[] = [];
  private hand = 0;
  private bytes = 0;
  readonly capacityBytes: number;
  /** Entries evicted or cleared so far: a whole scan is only whole if none went meanwhile. */
  private losses = 0;
  /** `losses` when a whole scan of the store's node records ended (-1: never). */
  private wholeAt = -1;

  constructor(capacityBytes = 32 * 1024 * 1024) {
    this.capacityBytes = capacityBytes;
  }

  /**
   * The decoded node (shared: views never mutate a committed node, `touch` copies it). Nodes of
   * at most `DECODED_TOKENS` tokens stay decoded: nearly every group of updates walks all of
   * them, and those 4,369 nodes cost ~10 MB decoded (measured: re-decoding them was half the
   * decodes of a live group).
   */
  get(key: string): TrieNode | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    e.used = true;
    if (e.node) return e.node;
    const n = decodeNode(e.path, e.raw);
    if (e.path.length <= DECODED_TOKENS) e.node = n;
    return n;
  }

  /** `node`: the record decoded (kept only for short paths; it must never be mutated again). */
  set(key: string, path: Path, raw: Uint8Array, node?: TrieNode): void {
    const kept = path.length <= DECODED_TOKENS ? node : undefined;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= NodeCache.cost(old.path, old.raw);
      old.path = path;
      old.raw = raw;
      old.node = kept;
      old.used = true;
    } else {
      const slot = this.free.length ? this.free.pop()! : this.ring.length;
      const e = new CacheEntry(key, slot, path, raw, kept);
      this.ring[slot] = e;
      this.map.set(key, e);
    }
    this.bytes += NodeCache.cost(path, raw);
    while (this.bytes > this.capacityBytes && this.map.size) this.evictOne();
  }

  /** Moves the hand to the first entry not used since its last pass, and evicts it. */
  private evictOne(): void {
    for (;;) {
      if (this.hand >= this.ring.length) this.hand = 0;
      const e = this.ring[this.hand++];
      if (!e) continue;
      if (e.used) {
        e.used = false;
        continue;
      }
      this.lose();
      this.remove(e);
      return;
    }
  }

  private remove(e: CacheEntry): void {
    this.map.delete(e.key);
    this.ring[e.slot] = undefined;
    this.free.push(e.slot);
    this.bytes -= NodeCache.cost(e.path, e.raw);
  }

  /** Bytes `set` would account for such a record (to fill without evicting). */
  static cost(path: Path, raw: Uint8Array): number {
    return raw.length + 3 * path.length + 64;
  }

  /** Bytes left before `set` starts evicting. */
  get room(): number {
    return this.capacityBytes - this.bytes;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (e) this.remove(e);
  }

  /** An entry was lost (evicted, cleared), or records were written around the cache: not whole any more. */
  lose(): void {
    this.losses++;
  }

  /** The number of entries lost so far (evicted or cleared; not deleted with their record): see `markWhole`. */
  get lost(): number {
    return this.losses;
  }

  /**
   * Marks the cache as holding every node record of the committed state, as a scan that read all
   * of them found it with `lost` at `since` when it began: only if nothing was lost meanwhile.
   */
  markWhole(since: number): void {
    if (since === this.losses) this.wholeAt = this.losses;
  }

  /**
   * Whether the cache holds every node record of the committed state: then a path the cache does
   * not have has no record (a leaf, or nothing), known without a read. Any loss ends it. (Its
   * owner keeps it in step with each commit: `stageView` sets and deletes the changed records.)
   */
  get whole(): boolean {
    return this.wholeAt === this.losses;
  }

  clear(): void {
    this.lose();
    this.map.clear();
    this.ring.length = 0;
    this.free.length = 0;
    this.hand = 0;
    this.bytes = 0;
  }
}

/**
 * A read-through, copy-on-write overlay of the trie. Not safe to share across concurrent writers.
 * Changes stay in the view until `MerkleTrie.commitView` writes them.
 *
 * @example
 * const view = trie.view();
 * await view.put(fromHex('01'), fromHex('ff'));
 * await view.delete(fromHex('02'));
 * view.root; // the root the trie will have once the view is committed
 * await trie.commitView(view);
 */
export class TrieView {
  /** The store the committed nodes and values are read from. */
  readonly store: KVStore;
  private readonly cache: NodeCache;
  private rootPath: Path | undefined;
  private rootId: Uint8Array;
  /** Overlay of nodes: a node, or null where the node was removed. */
  private readonly nodes = new Map<string, TrieNode | null>();
  /** Paths of removed nodes, by the same key (a removed node has no record to carry its path). */
  private readonly removed = new Map<string, Path>();
  /** Nodes changed since the last rehash (null: removed), by the same key. */
  private readonly dirty = new Map<string, TrieNode | null>();
  /** Overlay of values: a value, or null where the key was deleted. */
  private readonly values = new Map<string, { key: Uint8Array; value: Uint8Array | null }>();
  /**
   * Key-values added by `graft`, each list sorted; `values` overrides them. A first fetch adds
   * ~2,000 at once: kept as the proof's list, not one map entry (a string key and an object)
   * each (measured: ~7% of the main thread in a 200k-key sync into LevelDB).
   */
  private readonly bulk: KeyValue[][] = [];

  /** A grafted value, or undefined. */
  private bulkGet(key: Uint8Array): Uint8Array | undefined {
    for (const list of this.bulk) {
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const c = compareBytes(list[mid].key, key);
        if (c === 0) return list[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
      }
    }
    return undefined;
  }

  constructor(store: KVStore, rootPath: Path | undefined, root: Uint8Array, cache: NodeCache = new NodeCache(4 * 1024 * 1024)) {
    this.store = store;
    this.cache = cache;
    this.rootPath = rootPath;
    this.rootId = root;
  }

  /** The root of the view's state (rehashes changed nodes first). */
  get root(): Uint8Array {
    if (this.dirty.size > 0) this.rehash();
    return this.rootId;
  }

  /** The node at `path`, or undefined when there is none. */
  async getNode(path: Path): Promise<TrieNode | undefined> {
    const s = pathStr(path);
    const o = this.nodes.get(s);
    if (o !== undefined) return o ?? undefined;
    if (this.graftedRaw.size) {
      const g = this.fromGraft(s);
      if (g) return g;
    }
    const r = this.read.get(s);
    if (r) return r;
    const c = this.cache.get(s);
    if (c) {
      this.read.set(s, c);
      return c;
    }
    return (await this.load([path]))[0];
  }

  /**
   * Committed nodes from the store: node records, then, for paths without one, leaves rebuilt
   * from their values. Nodes with children enter the cache.
   */
  private async load(paths: Path[], replaced?: Set<string>): Promise<(TrieNode | undefined)[]> {
    const raws = await getMany(this.store, paths.map(nodeKey));
    const out: (TrieNode | undefined)[] = new Array(paths.length);
    const leafAt: number[] = [];
    for (let i = 0; i < paths.length; i++) {
      const raw = raws[i];
      const s = pathStr(paths[i]);
      if (raw) {
        const n = decodeNode(paths[i], raw);
        out[i] = n;
        this.cache.set(s, paths[i], raw);
        this.read.set(s, n);
      } else if (replaced?.has(s)) this.unreadLeaves.add(s);
      else if ((paths[i].length & 1) === 0) leafAt.push(i);
    }
    if (leafAt.length) {
      const values = await this.getMany(leafAt.map((i) => packPath(paths[i])));
      for (let j = 0; j < leafAt.length; j++) {
        const v = values[j];
        if (v) {
          const n = leafNode(paths[leafAt[j]], v);
          out[leafAt[j]] = n;
          this.read.set(pathStr(n.path), n);
        }
      }
    }
    return out;
  }

  /** A node known without I/O: from the overlay or the cache (null: removed; undefined: unknown). */
  private peekNode(s: string): TrieNode | null | undefined {
    const o = this.nodes.get(s);
    if (o !== undefined) return o;
    if (this.graftedRaw.size) {
      const g = this.fromGraft(s);
      if (g) return g;
    }
    const r = this.read.get(s);
    if (r) return r;
    const c = this.cache.get(s);
    if (c) this.read.set(s, c);
    return c;
  }

  /** Committed nodes this view has read (decoded once per view; leaves are never cached). */
  private readonly read = new Map<string, TrieNode>();

  /**
   * Reads, in parallel waves, every committed node on the paths to `keys` that is not already
   * known, so that applying changes then walks memory instead of awaiting one read per level.
   */
  async prefetch(keys: Iterable<Uint8Array>): Promise<void> {
    return this.prefetchPaths([...keys].map((k) => keyToPath(k)), undefined);
  }

  /**
   * `prefetch` for changes about to be applied: the nodes on their paths, except the old leaves
   * of the keys changed (a put replaces such a leaf, a delete removes it, without its old value:
   * `prefetchPaths`). Measured in Chromium, live deltas of 10 puts over existing keys of a 1M-key
   * state: with plain `prefetch` each delta waited ~1.6 ms for 10 scattered value reads. With the
   * cache whole nothing needs reading (`isUnreadLeaf`): it returns at once, not walking the paths
   * the changes walk again.
   */
  async prefetchChanges(changes: readonly KeyChange[]): Promise<void> {
    if (this.cache.whole) return;
    const paths = changes.map((c) => keyToPath(c.key));
    return this.prefetchPaths(paths, new Set(paths.map(pathStr)));
  }

  /**
   * Leaves known to exist (a parent names them, they have no node record) whose nodes were not
   * built: a put replaces such a leaf, a delete removes it, without reading its old value
   * (`prefetchPaths`).
   */
  private readonly unreadLeaves = new Set<string>();

  /**
   * Whether the node at `s`, named by its parent, is a leaf this view has not read: noted by a
   * prefetch, or (the cache whole) one neither this view nor the cache has.
   */
  private isUnreadLeaf(s: string): boolean {
    if (this.nodes.has(s)) return false;
    return this.unreadLeaves.has(s) || (this.cache.whole && this.peekNode(s) === undefined);
  }

  /**
   * `prefetch` of paths; for those in `replaced` (keys about to be put or deleted), a leaf at the
   * key itself is only noted, not read: its old value and id are never needed (measured on a 10,000-change
   * catch-up of 1M keys: reading and hashing the old leaves was ~6% of the client's time).
   */
  private async prefetchPaths(pending: Path[], replaced: Set<string> | undefined): Promise<void> {
    if (!this.rootPath) return;
    while (pending.length) {
      const missing = new Map<string, Path>();
      const next: Path[] = [];
      for (const k of pending) {
        let path: Path | undefined = this.rootPath;
        while (path) {
          if (!hasPrefix(k, path)) break;
          const s = pathStr(path);
          const n = this.peekNode(s);
          if (n === undefined) {
            if (this.unreadLeaves.has(s)) break;
            missing.set(s, path);
            next.push(k);
            break;
          }
          if (n === null || path.length === k.length) break;
          path = n.children[k[path.length]]?.path;
        }
      }
      if (missing.size === 0) return;
      const paths = [...missing.values()];
      const nodes = await this.load(paths, replaced);
      for (let i = 0; i < paths.length; i++) {
        if (!nodes[i] && !this.unreadLeaves.has(pathStr(paths[i]))) throw new Error(`trie node missing from store at path of ${paths[i].length} tokens`);
      }
      pending = next;
    }
  }

  /** Nodes added by `graft`: written once, not worth a place in the shared cache. */
  private readonly grafted = new Set<string>();

  /** Whether `graft` added nodes (their records are not for the shared cache). */
  get grafts(): boolean {
    return this.grafted.size > 0;
  }

  /**
   * Grafted nodes' records, not yet looked at: written as they are; one that is visited is
   * decoded into the overlay (`fromGraft`) and written from there.
   */
  private readonly graftedRaw = new Map<string, { path: Path; raw: Uint8Array }>();

  /** A grafted node moved into the overlay when first visited. */
  private fromGraft(s: string): TrieNode | undefined {
    const g = this.graftedRaw.get(s);
    if (!g) return undefined;
    this.graftedRaw.delete(s);
    const n = decodeNode(g.path, g.raw);
    this.nodes.set(s, n);
    return n;
  }

  /** Encoded records of the changed nodes with children, as `batch()` wrote them. */
  private readonly encoded = new Map<string, Uint8Array>();

  /**
   * After `batch()`: the changed nodes' records (undefined: no record any more), for the owner's
   * cache, with each record's node as committed (a copy: the view may go on changing its own).
   */
  *committedRecords(): Iterable<[string, Path, Uint8Array | undefined, TrieNode | undefined]> {
    for (const [s, n] of this.nodes) {
      if (this.grafted.has(s)) continue;
      const raw = this.encoded.get(s);
      const node = n && raw && n.path.length <= DECODED_TOKENS ? { path: n.path, digest: n.digest, children: n.children.slice(), id: n.id, stored: true } : undefined;
      yield [s, n ? n.path : this.removed.get(s)!, raw, node];
    }
  }

  private async mustNode(path: Path): Promise<TrieNode> {
    const n = await this.getNode(path);
    if (!n) throw new Error(`trie node missing from store at path of ${path.length} tokens`);
    return n;
  }

  /** A private, writable copy of a node, registered in the overlay as dirty. */
  private async touch(path: Path, s: string = pathStr(path)): Promise<TrieNode> {
    const o = this.nodes.get(s);
    // the overlay's nodes are this view's own (`commitView` caches copies): no copy per root read
    if (o) {
      this.dirty.set(s, o);
      return o;
    }
    const n = await this.mustNode(path);
    const copy: TrieNode = { path: n.path, digest: n.digest, children: n.children.slice(), id: n.id, stored: n.stored };
    this.nodes.set(s, copy);
    this.dirty.set(s, copy);
    return copy;
  }

  private create(path: Path, digest: Uint8Array | undefined, s: string = pathStr(path)): TrieNode {
    const n: TrieNode = { path, digest, children: new Array(16), id: STALE };
    this.nodes.set(s, n);
    this.dirty.set(s, n);
    return n;
  }

  private remove(path: Path): void {
    const s = pathStr(path);
    this.nodes.set(s, null);
    this.removed.set(s, path);
    this.dirty.set(s, null);
  }

  /** The value under `key` in the view's state, or undefined. */
  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const o = this.values.get(pathStr(key));
    if (o !== undefined) return o.value ?? undefined;
    if (this.bulk.length) {
      const b = this.bulkGet(key);
      if (b !== undefined) return b;
    }
    return this.store.get(valueKey(key));
  }

  /** `get` for many keys, with one store round trip for those not in the overlay. */
  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(keys.length);
    const ask: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const o = this.values.get(pathStr(keys[i]));
      if (o !== undefined) out[i] = o.value ?? undefined;
      else if (this.bulk.length === 0 || (out[i] = this.bulkGet(keys[i])) === undefined) ask.push(i);
    }
    const got = await getMany(this.store, ask.map((i) => valueKey(keys[i])));
    for (let j = 0; j < ask.length; j++) out[ask[j]] = got[j];
    return out;
  }

  /** The overlay's values and deletions with `start <= key <= end`, sorted. */
  private overlayIn(start: Uint8Array | undefined, end: Uint8Array | undefined): OverlayEntry[] {
    const all: OverlayEntry[] = [...this.values.values()];
    for (const list of this.bulk) for (const kv of list) if (!this.values.has(pathStr(kv.key))) all.push(kv);
    return all
      .filter((e) => (!start || compareBytes(e.key, start) >= 0) && (!end || compareBytes(e.key, end) <= 0))
      .sort((a, b) => compareBytes(a.key, b.key));
  }

  /**
   * Key-values with `start <= key <= end` (either bound optional), at most `limit`, in key
   * order, as one list: the store is read in runs (`readRange`), not entry by entry.
   */
  async range(start?: Uint8Array, end?: Uint8Array, limit = Infinity): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    await this.collect(this.overlayIn(start, end), { i: 0 }, start, end, limit, out);
    return out;
  }

  /** Key-values with `start <= key <= end` (either bound optional), in key order. */
  async *entries(start?: Uint8Array, end?: Uint8Array, limit = Infinity): AsyncIterable<KeyValue> {
    if (limit <= 0) return;
    const overlay = this.overlayIn(start, end);
    const cursor = { i: 0 };
    let from = start;
    let n = 0;
    for (;;) {
      const part: KeyValue[] = [];
      const more = await this.collect(overlay, cursor, from, end, Math.min(RUN, limit - n), part);
      for (const kv of part) yield kv;
      n += part.length;
      if (!more || n >= limit || part.length === 0) return;
      from = concatBytes(part[part.length - 1].key, ZERO); // the next key after the last
    }
  }

  /**
   * Appends to `out` the key-values from `from` to `end` until `limit` are there: the store's,
   * merged with the overlay from `cursor.i` on (entries before `from` are consumed already).
   * True when it stopped at the limit (more may follow).
   */
  private async collect(
    overlay: OverlayEntry[],
    cursor: { i: number },
    from: Uint8Array | undefined,
    end: Uint8Array | undefined,
    limit: number,
    out: KeyValue[],
  ): Promise<boolean> {
    if (out.length >= limit) return true;
    let lower: IterateOptions = { gte: valueKey(from ?? new Uint8Array(0)) };
    const upper: IterateOptions = end ? { lte: valueKey(end) } : { lt: VALUE_END };
    for (;;) {
      // a few more than needed: the overlay may delete some
      const want = Math.min(RUN, limit - out.length + 16);
      const run = await readRange(this.store, { ...lower, ...upper, limit: want });
      for (const [k, v] of run) {
        const key = k.subarray(1);
        while (cursor.i < overlay.length && compareBytes(overlay[cursor.i].key, key) < 0) {
          const e = overlay[cursor.i++];
          if (e.value) {
            out.push({ key: e.key, value: e.value });
            if (out.length >= limit) return true;
          }
        }
        if (cursor.i < overlay.length && compareBytes(overlay[cursor.i].key, key) === 0) {
          const e = overlay[cursor.i++];
          if (!e.value) continue;
          out.push({ key: e.key, value: e.value });
        } else out.push({ key: key.slice(), value: v });
        if (out.length >= limit) return true;
      }
      if (run.length < want) break;
      lower = { gt: run[run.length - 1][0] };
    }
    while (cursor.i < overlay.length) {
      const e = overlay[cursor.i++];
      if (e.value) {
        out.push({ key: e.key, value: e.value });
        if (out.length >= limit) return true;
      }
    }
    return false;
  }

  /**
   * Applies puts and deletes (a delete of an absent key is a no-op). More than 8 changes are
   * prefetched first, unless `prefetched` (the caller prefetched their keys on this view).
   */
  async apply(changes: Iterable<KeyChange>, options: { prefetched?: boolean } = {}): Promise<void> {
    const list = [...changes];
    if (list.length > 8 && !options.prefetched) await this.prefetchChanges(list);
    for (const c of list) {
      if (c.value === undefined) await this.delete(c.key);
      else await this.put(c.key, c.value);
    }
  }

  /** Sets `key` to `value` in the view (the arrays are copied). */
  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.values.set(pathStr(key), { key: key.slice(), value: value.slice() });
    const k = keyToPath(key);
    const digest = valueDigest(value);
    if (!this.rootPath) {
      this.create(k, digest);
      this.rootPath = k;
      return;
    }
    if (!hasPrefix(k, this.rootPath)) {
      const old = await this.mustNode(this.rootPath);
      const cp = commonPrefixLength(k, old.path);
      const top = this.create(k.slice(0, cp), cp === k.length ? digest : undefined);
      top.children[old.path[cp]] = { path: old.path, id: this.dirty.has(pathStr(old.path)) ? STALE : old.id };
      if (cp < k.length) {
        this.create(k, digest);
        top.children[k[cp]] = { path: k, id: STALE };
      }
      this.rootPath = top.path;
      return;
    }
    let node = await this.touch(this.rootPath);
    for (;;) {
      if (node.path.length === k.length) {
        node.digest = digest;
        return;
      }
      const idx = k[node.path.length];
      const ce = node.children[idx];
      if (!ce) {
        const ks = pathStr(k);
        this.create(k, digest, ks);
        node.children[idx] = { path: k, id: STALE, key: ks };
        return;
      }
      if (hasPrefix(k, ce.path)) {
        const cs = pathStr(ce.path);
        node.children[idx] = { path: ce.path, id: STALE, key: cs };
        // the old leaf at this key, never read: its replacement needs nothing of it
        if (ce.path.length === k.length && this.isUnreadLeaf(cs)) {
          this.create(k, digest, cs);
          return;
        }
        node = await this.touch(ce.path, cs);
        continue;
      }
      const cp = commonPrefixLength(k, ce.path, node.path.length + 1);
      const branch = this.create(k.slice(0, cp), cp === k.length ? digest : undefined);
      branch.children[ce.path[cp]] = ce;
      if (cp < k.length) {
        const ks = pathStr(k);
        this.create(k, digest, ks);
        branch.children[k[cp]] = { path: k, id: STALE, key: ks };
      }
      node.children[idx] = { path: branch.path, id: STALE };
      return;
    }
  }

  /** Removes `key` from the view; a no-op when absent. */
  async delete(key: Uint8Array): Promise<void> {
    const k = keyToPath(key);
    if (!this.rootPath) return;
    // Find the node without copying; only copy the path once we know the key exists.
    const chain: Path[] = [];
    let path: Path | undefined = this.rootPath;
    let found: TrieNode | undefined;
    // the key's leaf, known to exist (its parent names it) and never read: nothing of it is needed
    let unread = false;
    while (path) {
      if (!hasPrefix(k, path)) return;
      if (path.length === k.length && this.isUnreadLeaf(pathStr(path))) {
        chain.push(path);
        unread = true;
        break;
      }
      const n = await this.mustNode(path);
      chain.push(path);
      if (path.length === k.length) {
        found = n;
        break;
      }
      path = n.children[k[path.length]]?.path;
    }
    if (!unread && (!found || !found.digest)) return;
    this.values.set(pathStr(key), { key: key.slice(), value: null });
    const nodes: TrieNode[] = [];
    for (const p of chain) nodes.push(unread && p.length === k.length ? this.create(p, undefined) : await this.touch(p));
    for (let i = 0; i + 1 < nodes.length; i++) {
      const parent = nodes[i];
      const idx = nodes[i + 1].path[parent.path.length];
      parent.children[idx] = { path: nodes[i + 1].path, id: STALE };
    }
    const node = nodes[nodes.length - 1];
    node.digest = undefined;
    const parent = nodes.length > 1 ? nodes[nodes.length - 2] : undefined;
    const grand = nodes.length > 2 ? nodes[nodes.length - 3] : undefined;
    const kids = node.children.filter((c) => c !== undefined) as ChildEntry[];
    if (kids.length >= 2) return;
    this.remove(node.path);
    const replacement = kids.length === 1 ? kids[0] : undefined;
    if (!parent) {
      this.rootPath = replacement?.path;
      this.rootId = replacement ? replacement.id : EMPTY_ROOT;
      return;
    }
    parent.children[node.path[parent.path.length]] = replacement;
    if (replacement || parent.digest) return;
    // The parent lost a child and holds no value: with one child left it must be merged away.
    const rest = parent.children.filter((c) => c !== undefined) as ChildEntry[];
    if (rest.length !== 1) return;
    this.remove(parent.path);
    if (!grand) {
      this.rootPath = rest[0].path;
      this.rootId = rest[0].id;
    } else grand.children[parent.path[grand.path.length]] = rest[0];
  }

  /**
   * Adds proven subtrees (from `verifyRangeProof` with a capture) to a trie that holds no keys
   * where they go: their nodes are written as they are, only the boundary is hashed again.
   */
  async graft(p: ProvenSubtrees): Promise<void> {
    // Every proven key-value; a leaf needs nothing more (leaves have no records: `load`
    // rebuilds them from their values).
    if (p.values.length) this.bulk.push(p.values);
    for (const n of p.nodes) {
      const s = pathStr(n.path);
      this.graftedRaw.set(s, n);
      this.grafted.add(s);
    }
    for (const r of p.roots) await this.insertSubtree(r.path, r.id);
    for (const kv of p.loose) await this.put(kv.key, kv.value);
  }

  private async insertSubtree(c: Path, id: Uint8Array): Promise<void> {
    if (!this.rootPath) {
      this.rootPath = c;
      this.rootId = id;
      return;
    }
    if (!hasPrefix(c, this.rootPath)) {
      const old = await this.mustNode(this.rootPath);
      const cp = commonPrefixLength(c, old.path);
      if (cp === c.length) throw new GraftConflict('a proven subtree would cover existing local keys');
      const top = this.create(c.slice(0, cp), undefined);
      top.children[old.path[cp]] = { path: old.path, id: this.dirty.has(pathStr(old.path)) ? STALE : old.id };
      top.children[c[cp]] = { path: c, id };
      this.rootPath = top.path;
      return;
    }
    let node = await this.touch(this.rootPath);
    for (;;) {
      if (node.path.length >= c.length) throw new GraftConflict('a proven subtree would replace an existing local node');
      const idx = c[node.path.length];
      const ce = node.children[idx];
      if (!ce) {
        node.children[idx] = { path: c, id };
        return;
      }
      if (hasPrefix(c, ce.path) && ce.path.length < c.length) {
        node.children[idx] = { path: ce.path, id: STALE };
        node = await this.touch(ce.path);
        continue;
      }
      const cp = commonPrefixLength(c, ce.path, node.path.length + 1);
      if (cp === c.length || cp === ce.path.length) throw new GraftConflict('a proven subtree overlaps existing local keys');
      const branch = this.create(c.slice(0, cp), undefined);
      branch.children[ce.path[cp]] = ce;
      branch.children[c[cp]] = { path: c, id };
      node.children[idx] = { path: branch.path, id: STALE };
      return;
    }
  }

  /** SHA-256 midstates of this view's nodes near the root, hashed again after each change. */
  private readonly midstates = new Map<TrieNode, NodeMidstates>();

  private midstatesOf(n: TrieNode): NodeMidstates {
    let m = this.midstates.get(n);
    if (!m) this.midstates.set(n, (m = new NodeMidstates()));
    return m;
  }

  /** Recomputes the ids of changed nodes, deepest first. */
  private rehash(): void {
    // deepest first: bucketed by path length (no comparator sort)
    const byLength: TrieNode[][] = [];
    for (const n of this.dirty.values()) if (n) (byLength[n.path.length] ??= []).push(n);
    const changed: TrieNode[] = [];
    for (let l = byLength.length - 1; l >= 0; l--) {
      const b = byLength[l];
      if (b) for (const n of b) changed.push(n);
    }
    const ids: (Uint8Array | undefined)[] = new Array(16);
    for (const n of changed) {
      for (let i = 0; i < 16; i++) {
        const c = n.children[i];
        if (c && c.id === STALE) {
          const child = this.nodes.get(c.key ?? pathStr(c.path));
          if (!child) throw new Error('stale child id without a changed child node');
          // a stale entry is this view's own (put/delete/graft create it): set in place
          c.id = child.id;
        }
        ids[i] = c?.id;
      }
      n.id = hashNode(n.path, n.digest, ids, n.path.length <= MIDSTATE_TOKENS ? this.midstatesOf(n) : undefined);
    }
    if (this.rootPath) {
      const r = this.nodes.get(pathStr(this.rootPath));
      if (r) this.rootId = r.id;
    } else this.rootId = EMPTY_ROOT;
    // Removed nodes stay in the overlay as null for `batch()`; nothing is pending any more.
    this.dirty.clear();
  }

  /** The store operations that make this view's state durable (call after all changes). */
  batch(): BatchOp[] {
    const root = this.root;
    const ops: BatchOp[] = [];
    for (const g of this.graftedRaw.values()) ops.push({ type: 'put', key: nodeKey(g.path), value: g.raw });
    for (const [s, n] of this.nodes) {
      if (n === null) ops.push({ type: 'del', key: nodeKey(this.removed.get(s)!) });
      else if (!isLeaf(n)) {
        const raw = encodeNode(n);
        this.encoded.set(s, raw);
        ops.push({ type: 'put', key: nodeKey(n.path), value: raw });
      }
      // a leaf that had children before (or replaces a removed node) must not leave a record
      else if (n.stored || this.removed.has(s)) ops.push({ type: 'del', key: nodeKey(n.path) });
    }
    // Grafted values first: a later change to the same key (in `values`) is the one that lands.
    for (const list of this.bulk) for (const kv of list) ops.push({ type: 'put', key: valueKey(kv.key), value: kv.value });
    for (const e of this.values.values()) {
      if (e.value === null) ops.push({ type: 'del', key: valueKey(e.key) });
      else ops.push({ type: 'put', key: valueKey(e.key), value: e.value });
    }
    ops.push({ type: 'put', key: META_KEY, value: encodeMeta({ rootPath: this.rootPath, root }) });
    return ops;
  }

  /** The path of the root node; undefined for the empty trie. */
  get rootNodePath(): Path | undefined {
    return this.rootPath;
  }

  /**
   * The proof path toward `path` (docs/proofs.md#verification): nodes from the root while they prefix the path; if
   * the path is absent, ending with the would-be parent or with the diverging child there.
   */
  async proofPath(path: Path): Promise<ProofNode[]> {
    const root = this.root; // rehash first
    void root;
    const out: ProofNode[] = [];
    if (!this.rootPath) return out;
    let node = await this.mustNode(this.rootPath);
    for (;;) {
      out.push(toProofNode(node));
      if (!hasPrefix(path, node.path) || node.path.length === path.length) return out;
      const ce = node.children[path[node.path.length]];
      if (!ce) return out;
      node = await this.mustNode(ce.path);
      if (!hasPrefix(path, node.path)) {
        out.push(toProofNode(node));
        return out;
      }
    }
  }
}

export function builtToNode(n: BuiltNode): TrieNode {
  return { path: n.path, digest: n.digest, id: n.id, children: n.children.map((c) => c && { path: childPath(c), id: c.id }) };
}

/**
 * The part of a verified range proof that can enter the local trie without hashing again: the
 * records of the prover's nodes with children of the subtrees wholly inside the range (`nodes`,
 * `roots` the topmost of them, leaves included), and the in-range key-values that sit on
 * boundary nodes (`loose`).
 */
export interface ProvenSubtrees {
  /** Node records (`encodeNode`) by path. */
  nodes: { path: Path; raw: Uint8Array }[];
  roots: { path: Path; id: Uint8Array }[];
  loose: KeyValue[];
  /** Every in-range key-value of the proof, sorted (the values of `nodes` and of their leaves). */
  values: KeyValue[];
}

/** Thrown by `graft` when the local trie already holds keys where a proven subtree goes. */
export const GraftConflict = errorClass(ProofsyncError, 'GraftConflict');

export function toProofNode(n: TrieNode): ProofNode {
  const children = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) {
    const c = n.children[i];
    if (c) children.set(i, c.id);
  }
  return { key: n.path, valueOrHash: n.digest, children };
}

/**
 * One staged commit: its ops, by store key (null: deleted) once a read needs them (most reads
 * of a live group hit the node cache: building the map for every commit was 2% of the worker's
 * time), and its store write.
 */
class StagedCommit {
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
}

/**
 * The store as a trie's views read it while commits are staged: point reads look in the staged
 * ops (newest first), scans wait until those writes are done. Without staged commits every
 * call goes straight to the store.
 */
class StagedReads implements KVStore {
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

  #settled(): Promise<unknown> {
    return Promise.all(this.#staged.map((c) => c.done.catch(() => undefined)));
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

  async *iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    if (this.#staged.length) await this.#settled();
    yield* this.#store.iterate(options);
  }

  async range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    if (this.#staged.length) await this.#settled();
    return readRange(this.#store, options);
  }

  write(ops: BatchOp[]): Promise<void> {
    return this.#store.write(ops);
  }
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

  private constructor(store: KVStore, meta: Meta, cache: NodeCache) {
    this.store = store;
    this.reads = new StagedReads(store, this.staged);
    this.meta = meta;
    this.cache = cache;
  }

  /** `cacheBytes`: memory for committed node records shared by views (default 32 MiB). */
  static async open(store: KVStore, options: { cacheBytes?: number } = {}): Promise<MerkleTrie> {
    return new MerkleTrie(store, decodeMeta(await store.get(META_KEY)), new NodeCache(options.cacheBytes));
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
    for await (const [k, raw] of it) {
      last = k;
      const path = k.subarray(1);
      if (path.length <= maxTokens) {
        const cost = NodeCache.cost(path, raw);
        if (cost > this.cache.room) {
          this.wholeScan = undefined;
          return undefined;
        }
        const s = pathStr(path);
        if (!this.cache.has(s)) this.cache.set(s, path.slice(), raw);
      }
      if (++n >= limit) return last.slice();
    }
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
    return new TrieView(this.reads, this.meta.rootPath, this.meta.root, this.cache);
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
   * views made on top of this one must be dropped.
   */
  stageView(
    v: TrieView,
    extra: BatchOp[] = [],
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
    staged.done = this.store.write(all).then(
      () => {
        const i = this.staged.indexOf(staged);
        if (i >= 0) this.staged.splice(i, 1);
      },
      (err: unknown) => {
        this.staged.length = 0;
        this.cache.clear();
        this.meta = before;
        throw err;
      },
    );
    // a failure reaches whoever awaits `durable`; unawaited, it is not an unhandled rejection
    staged.done.catch(() => undefined);
    return { root: this.meta.root, durable: staged.done };
  }

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
      if (!isLeaf(node)) ops.push({ type: 'put', key: nodeKey(n.path), value: encodeNode(node) });
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

export function sameRoot(a: Uint8Array, b: Uint8Array): boolean {
  return equalBytes(a, b);
}
