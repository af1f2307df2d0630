/**
 * The node cache: committed node records shared by a trie's views, bounded in bytes and evicted
 * by the clock approximation of least recently used (see `NodeCache`).
 */
import { decodeNode, type TrieNode } from './node-record.ts';
import type { Path } from './types.ts';

/** Paths of at most this many tokens stay decoded in the node cache. */
export const DECODED_TOKENS = 3;

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
 * records) is most of the cost of the path walks, and the Map's deletions make it rebuild its
 * table again and again. Shared by a trie's views: it holds the committed state only (a view's
 * changes live in its overlay until `commitView` writes them and updates the cache). It keeps
 * the encoded records, decoded on use: a decoded node with 16 children costs ~4 KB of heap
 * against ~0.6 KB encoded (measured: a decoded cache for a 1M-key sync holds most of a 1 GB
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
   * them, and those 4,369 nodes cost ~10 MB decoded (measured: re-decoding them is half the
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
