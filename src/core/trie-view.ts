/**
 * `TrieView`: a copy-on-write overlay of changed nodes and values over a trie's committed state
 * (docs/hashing.md). A commit builds one and writes it in one atomic batch, and a
 * historical root is a view with the later changes reverted (how change and range proofs are
 * served at older roots, as AvalancheGo does). Nodes are read and rehashed by `NodeOverlay`,
 * values kept by `ValueOverlay`; this file holds the operations and the batch.
 */
import { errorClass, ProofsyncError } from './errors.ts';
import { commonPrefixLength, hasPrefix, keyToPath, pathStr } from './path.ts';
import { valueDigest } from './hash.ts';
import type { BatchOp, KVStore } from './store.ts';
import { EMPTY_ROOT, type KeyChange, type KeyValue, type Path, type ProofNode } from './types.ts';
import { elideLeaves, encodeFull, encodeMeta, encodeNode, isLeaf, META_KEY, nodeKey, toProofNode, type ChildEntry, type TrieNode } from './node-record.ts';
import { DECODED_TOKENS, type NodeCache } from './node-cache.ts';
import { NodeOverlay, STALE } from './node-overlay.ts';

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
export class TrieView extends NodeOverlay {
  /** Whether `batch()` writes node records with their leaf children elided (`TrieOptions.elideLeaves`). */
  private readonly elide: boolean;

  constructor(store: KVStore, rootPath: Path | undefined, root: Uint8Array, cache?: NodeCache, elideLeaves = true) {
    super(store, rootPath, root, cache);
    this.elide = elideLeaves;
  }

  /** Nodes added by `graft`: written once, not worth a place in the shared cache. */
  private readonly grafted = new Set<string>();

  /** Whether `graft` added nodes (their records are not for the shared cache). */
  get grafts(): boolean {
    return this.grafted.size > 0;
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

  /** The value under `key` in the view's state, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.values.get(key);
  }

  /** `get` for many keys, with one store round trip for those not in the overlay. */
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.values.getMany(keys);
  }

  /**
   * Key-values with `start <= key <= end` (either bound optional), at most `limit`, in key
   * order, as one list: the store is read in runs, not entry by entry.
   */
  range(start?: Uint8Array, end?: Uint8Array, limit = Infinity): Promise<KeyValue[]> {
    return this.values.range(start, end, limit);
  }

  /** Key-values with `start <= key <= end` (either bound optional), in key order. */
  entries(start?: Uint8Array, end?: Uint8Array, limit = Infinity): AsyncIterable<KeyValue> {
    return this.values.entries(start, end, limit);
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
    this.values.put(key, value);
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
      top.children[old.path[cp]] = { path: old.path, id: this.dirty.has(pathStr(old.path)) ? STALE : old.id, leaf: isLeaf(old) };
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
    this.values.delete(key);
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
    this.values.graft(p.values);
    for (const n of p.nodes) {
      const s = pathStr(n.path);
      this.graftedRaw.set(s, n);
      this.grafted.add(s);
    }
    for (const r of p.roots) await this.insertSubtree(r.path, r.id, r.leaf);
    for (const kv of p.loose) await this.put(kv.key, kv.value);
  }

  private async insertSubtree(c: Path, id: Uint8Array, leaf: boolean): Promise<void> {
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
      top.children[old.path[cp]] = { path: old.path, id: this.dirty.has(pathStr(old.path)) ? STALE : old.id, leaf: isLeaf(old) };
      top.children[c[cp]] = { path: c, id, leaf };
      this.rootPath = top.path;
      return;
    }
    let node = await this.touch(this.rootPath);
    for (;;) {
      if (node.path.length >= c.length) throw new GraftConflict('a proven subtree would replace an existing local node');
      const idx = c[node.path.length];
      const ce = node.children[idx];
      if (!ce) {
        node.children[idx] = { path: c, id, leaf };
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
      branch.children[c[cp]] = { path: c, id, leaf };
      node.children[idx] = { path: branch.path, id: STALE };
      return;
    }
  }

  /** The store operations that make this view's state durable (call after all changes). */
  batch(): BatchOp[] {
    const root = this.root;
    const ops: BatchOp[] = [];
    for (const g of this.graftedRaw.values()) ops.push({ type: 'put', key: nodeKey(g.path), value: this.elide ? elideLeaves(g.raw) : g.raw });
    for (const [s, n] of this.nodes) {
      if (n === null) ops.push({ type: 'del', key: nodeKey(this.removed.get(s)!) });
      else if (!isLeaf(n)) {
        this.markLeaves(n);
        // the store's record elides the leaves; the cache's keeps them (`committedRecords`)
        const full = encodeFull(n);
        this.encoded.set(s, full);
        ops.push({ type: 'put', key: nodeKey(n.path), value: this.elide ? encodeNode(n) : full });
      }
      // a leaf that had children before (or replaces a removed node) must not leave a record
      else if (n.stored || this.removed.has(s)) ops.push({ type: 'del', key: nodeKey(n.path) });
    }
    for (const op of this.values.ops()) ops.push(op);
    ops.push({ type: 'put', key: META_KEY, value: encodeMeta({ rootPath: this.rootPath, root }) });
    return ops;
  }

  /**
   * Sets `leaf` on the entries of `n`, the view's own node, as its children are now: a child
   * this view holds is a leaf when it has no children; one it does not hold is unchanged, as
   * its entry says (a marked record, a proof, or a leaf this view read). An entry whose mark is
   * wrong is replaced, not changed (entries are shared with the committed nodes).
   */
  private markLeaves(n: TrieNode): void {
    for (let i = 0; i < 16; i++) {
      const c = n.children[i];
      if (!c) continue;
      const s = c.key ?? pathStr(c.path);
      const held = this.nodes.get(s);
      // in doubt, not a leaf: a leaf written in full is only bigger, a node elided is lost
      let leaf = false;
      if (held) leaf = isLeaf(held);
      else if (held === undefined && !this.graftedRaw.has(s)) {
        const r = this.read.get(s);
        leaf = c.leaf === true || (r !== undefined && isLeaf(r));
      }
      if ((c.leaf === true) !== leaf) n.children[i] = { path: c.path, id: c.id, leaf };
    }
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


/**
 * The part of a verified range proof that can enter the local trie without hashing again: the
 * records of the prover's nodes with children of the subtrees wholly inside the range (`nodes`,
 * `roots` the topmost of them, leaves included), and the in-range key-values that sit on
 * boundary nodes (`loose`).
 */
export interface ProvenSubtrees {
  /** Node records in the node cache's form (`encodeBuilt`: leaves marked, not elided) by path. */
  nodes: { path: Path; raw: Uint8Array }[];
  /** `leaf`: the subtree is one leaf (its parent's record elides it). */
  roots: { path: Path; id: Uint8Array; leaf: boolean }[];
  loose: KeyValue[];
  /** Every in-range key-value of the proof, sorted (the values of `nodes` and of their leaves). */
  values: KeyValue[];
}

/** Thrown by `graft` when the local trie already holds keys where a proven subtree goes. */
export const GraftConflict = errorClass(ProofsyncError, 'GraftConflict');
