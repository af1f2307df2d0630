/**
 * The node side of a `TrieView`: a read-through, copy-on-write overlay of trie nodes over the
 * committed state (node records in the store, shared through a `NodeCache`), with the reads
 * that fill it (`getNode`, `prefetch`) and the rehash that computes changed ids. `TrieView`
 * adds the operations (put, delete, graft) and the batch that commits them.
 */
import { hasPrefix, keyToPath, packPath, pathStr } from './path.ts';
import { hashNode, NodeMidstates } from './hash.ts';
import { getMany, type KVStore } from './store.ts';
import { EMPTY_ROOT, type KeyChange, type Path } from './types.ts';
import { decodeNode, leafNode, nodeKey, type TrieNode } from './node-record.ts';
import { NodeCache } from './node-cache.ts';
import { expandRecords } from './elided-leaves.ts';
import { ValueOverlay } from './value-overlay.ts';

/** The id of a node whose id must be computed again (`rehash`). */
export const STALE = new Uint8Array(0);


/**
 * Nodes of at most this many tokens keep their SHA-256 midstates in a view: a live group rehashes
 * the root and the ~270 nodes below it after every delta, each time with one or a few child ids
 * changed, so the blocks before the first changed id are not compressed again. Measured on a 1M-
 * key trie, groups of 256 deltas of 10 random puts: 314 block compressions per delta against
 * 368 without midstates (3 tokens: 306, for 16× the nodes).
 */
const MIDSTATE_TOKENS = 2;

/** A node record with the path it belongs at. */
export interface NodeRecordAt {
  /** The node's full path. */
  path: Path;
  /** Its record in the node cache's form (`encodeFull`, `encodeBuilt`: leaves not elided). */
  raw: Uint8Array;
}

/** Not safe to share across concurrent writers. */
export abstract class NodeOverlay {
  /** The store the committed nodes and values are read from. */
  readonly store: KVStore;
  /** Committed node records, shared with the trie and its other views. */
  protected readonly cache: NodeCache;
  /** The path of the root node; undefined for the empty trie. */
  protected rootPath: Path | undefined;
  /** The root id as of the last rehash. */
  protected rootId: Uint8Array;
  /** Overlay of nodes: a node, or null where the node was removed. */
  protected readonly nodes = new Map<string, TrieNode | null>();
  /** Paths of removed nodes, by the same key (a removed node has no record to carry its path). */
  protected readonly removed = new Map<string, Path>();
  /** Nodes changed since the last rehash (null: removed), by the same key. */
  protected readonly dirty = new Map<string, TrieNode | null>();
  /** Overlay of values: puts, deletes and grafted key-values. */
  protected readonly values: ValueOverlay;

  constructor(store: KVStore, rootPath: Path | undefined, root: Uint8Array, cache: NodeCache = new NodeCache(4 * 1024 * 1024)) {
    this.store = store;
    this.values = new ValueOverlay(store);
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
    const known = this.peekNode(pathStr(path));
    if (known !== undefined) return known ?? undefined;
    return (await this.load([path]))[0];
  }

  /**
   * Committed nodes from the store: node records, then, for paths without one, leaves rebuilt
   * from their values. Nodes with children enter the cache.
   */
  protected async load(paths: Path[], replaced?: Set<string>): Promise<(TrieNode | undefined)[]> {
    const stored = await getMany(this.store, paths.map(nodeKey));
    // elided leaves from the committed store's values (`this.store`), not this view's overlay
    const found: { path: Path; raw: Uint8Array }[] = [];
    for (let i = 0; i < paths.length; i++) {
      const raw = stored[i];
      if (raw) found.push({ path: paths[i], raw });
    }
    const expanded = found.length ? await expandRecords(this.store, found) : [];
    const raws: (Uint8Array | undefined)[] = new Array(paths.length);
    for (let i = 0, j = 0; i < paths.length; i++) if (stored[i]) raws[i] = expanded[j++];
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
      const values = await this.values.getMany(leafAt.map((i) => packPath(paths[i])));
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
  protected peekNode(s: string): TrieNode | null | undefined {
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
  protected readonly read = new Map<string, TrieNode>();

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
  protected readonly unreadLeaves = new Set<string>();

  /**
   * Whether the node at `s`, named by its parent, is a leaf this view has not read: noted by a
   * prefetch, or (the cache whole) one neither this view nor the cache has.
   */
  protected isUnreadLeaf(s: string): boolean {
    if (this.nodes.has(s)) return false;
    return this.unreadLeaves.has(s) || (this.cache.whole && this.peekNode(s) === undefined);
  }

  /**
   * `prefetch` of paths; for those in `replaced` (keys about to be put or deleted), a leaf at the
   * key itself is only noted, not read: its old value and id are never needed (measured on a 10,000-change
   * catch-up of 1M keys: reading and hashing the old leaves takes ~6% of the client's time).
   */
  protected async prefetchPaths(pending: Path[], replaced: Set<string> | undefined): Promise<void> {
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

  /**
   * Grafted nodes' records, not yet looked at: written as they are; one that is visited is
   * decoded into the overlay (`fromGraft`) and written from there.
   */
  protected readonly graftedRaw = new Map<string, NodeRecordAt>();

  /** A grafted node moved into the overlay when first visited. */
  protected fromGraft(s: string): TrieNode | undefined {
    const g = this.graftedRaw.get(s);
    if (!g) return undefined;
    this.graftedRaw.delete(s);
    const n = decodeNode(g.path, g.raw);
    this.nodes.set(s, n);
    return n;
  }


  /** `getNode`, for a node that must exist (a parent names it): its absence is a damaged store. */
  protected async mustNode(path: Path): Promise<TrieNode> {
    const n = await this.getNode(path);
    if (!n) throw new Error(`trie node missing from store at path of ${path.length} tokens`);
    return n;
  }

  /** A private, writable copy of a node, registered in the overlay as dirty. */
  protected async touch(path: Path, s: string = pathStr(path)): Promise<TrieNode> {
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

  /** A new node in the overlay, dirty, with a stale id. */
  protected create(path: Path, digest: Uint8Array | undefined, s: string = pathStr(path)): TrieNode {
    const n: TrieNode = { path, digest, children: new Array(16), id: STALE };
    this.nodes.set(s, n);
    this.dirty.set(s, n);
    return n;
  }

  /** Marks the node at `path` removed (its record is deleted by the batch). */
  protected remove(path: Path): void {
    const s = pathStr(path);
    this.nodes.set(s, null);
    this.removed.set(s, path);
    this.dirty.set(s, null);
  }


  /** SHA-256 midstates of this view's nodes near the root, hashed again after each change. */
  private readonly midstates = new Map<TrieNode, NodeMidstates>();

  private midstatesOf(n: TrieNode): NodeMidstates {
    let m = this.midstates.get(n);
    if (!m) this.midstates.set(n, (m = new NodeMidstates()));
    return m;
  }

  /** Recomputes the ids of changed nodes, deepest first. */
  protected rehash(): void {
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
}
