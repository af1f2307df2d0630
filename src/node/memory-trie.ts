/**
 * A MerkleDB trie in plain memory, for the log generator (generate-log.ts) only: the same node
 * ids as the core trie (docs/hashing.md#node-id, `hashNode` of core/hash.ts) for keys of one fixed
 * length, with none of the store, overlay and record machinery a persistent trie needs.
 * Measured: a one-key commit on a 4,096-key state costs ~90 µs in the core trie over a
 * `MemoryStore` (views, node records encoded and decoded, async reads) and ~20 µs here, most
 * of it the SHA-256 of the 3 or 4 nodes on the path.
 *
 * Keys of one length keep it small: no key is a prefix of another, so a value sits only in a
 * leaf and every inner node branches (≥ 2 children). The root is the node at the longest
 * common prefix of all keys (the leaf itself for one key; `EMPTY_ROOT` for none), as in the
 * core trie. Node ids are cached and cleared on the path of each change.
 *
 * Its roots are checked against the core's after every commit of seeded workloads in
 * memory-trie.test.ts, and the generator bulk-loads the final state into the node's real
 * database and refuses to finish unless that root is the last delta's.
 */
import { compareBytes } from '../core/bytes.ts';
import { hashNode, valueDigest } from '../core/hash.ts';
import { keyToPath } from '../core/path.ts';
import type { BatchOp } from '../core/store.ts';
import { EMPTY_ROOT, type KeyChange, type KeyValue } from '../core/types.ts';
import type { WriterDatabase } from './writer.ts';

interface Leaf {
  path: Uint8Array;
  key: Uint8Array;
  value: Uint8Array;
  id: Uint8Array | undefined;
}

interface Branch {
  path: Uint8Array;
  children: (Node | undefined)[];
  id: Uint8Array | undefined;
}

type Node = Leaf | Branch;

const isLeaf = (n: Node): n is Leaf => (n as Leaf).value !== undefined;

function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

const NO_CHILDREN: undefined[] = [];

/**
 * The state of a generated database. `commit` hands the extra ops (the writer's log and
 * announcement records) to `write`.
 *
 * @example
 * const trie = new MemoryTrie((ops) => mem.writeSync(ops));
 * await trie.commit([{ key, value }]); // the same root a MerkleDatabase would have
 */
export class MemoryTrie implements WriterDatabase {
  #root: Node | undefined;
  #keyLength: number | undefined;
  #seq = 0;
  #size = 0;
  readonly #write: (ops: BatchOp[]) => void;

  constructor(write: (ops: BatchOp[]) => void) {
    this.#write = write;
  }

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  get root(): Uint8Array {
    return this.#root ? this.#id(this.#root) : EMPTY_ROOT;
  }

  #id(n: Node): Uint8Array {
    if (n.id) return n.id;
    if (isLeaf(n)) n.id = hashNode(n.path, valueDigest(n.value), NO_CHILDREN);
    else n.id = hashNode(n.path, undefined, n.children.map((c) => (c ? this.#id(c) : undefined)));
    return n.id;
  }

  #checkKey(key: Uint8Array): void {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected key to be a Uint8Array');
    this.#keyLength ??= key.length;
    if (key.length !== this.#keyLength) throw new RangeError(`expected ${this.#keyLength}-byte keys (all of one length), got ${key.length}`);
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.#checkKey(key);
    const path = keyToPath(key);
    const leaf: Leaf = { path, key: key.slice(), value: value.slice(), id: undefined };
    let parent: Branch | undefined;
    let node = this.#root;
    for (;;) {
      if (node === undefined) {
        if (parent) parent.children[path[parent.path.length]] = leaf;
        else this.#root = leaf;
        this.#size++;
        return;
      }
      node.id = undefined;
      const cp = commonPrefix(node.path, path);
      if (cp < node.path.length) {
        // the new key leaves this node's path at cp: a branch there holds both
        const branch: Branch = { path: path.slice(0, cp), children: new Array(16), id: undefined };
        branch.children[node.path[cp]] = node;
        branch.children[path[cp]] = leaf;
        if (parent) parent.children[path[parent.path.length]] = branch;
        else this.#root = branch;
        this.#size++;
        return;
      }
      if (isLeaf(node)) {
        node.value = leaf.value; // the same key (keys have one length)
        return;
      }
      parent = node;
      node = node.children[path[cp]];
    }
  }

  delete(key: Uint8Array): void {
    this.#checkKey(key);
    const path = keyToPath(key);
    const stack: Branch[] = [];
    let node = this.#root;
    while (node && !isLeaf(node)) {
      if (commonPrefix(node.path, path) < node.path.length) return; // absent
      stack.push(node);
      node = node.children[path[node.path.length]];
    }
    if (!node || compareBytes(node.key, key) !== 0) return; // absent
    this.#size--;
    for (const b of stack) b.id = undefined;
    const parent = stack.pop();
    if (!parent) {
      this.#root = undefined;
      return;
    }
    parent.children[path[parent.path.length]] = undefined;
    const rest = parent.children.filter((c) => c !== undefined);
    if (rest.length > 1) return;
    // a branch with one child is no node: the child takes its place (its own path, so its id, stays)
    const grand = stack.at(-1);
    if (grand) grand.children[path[grand.path.length]] = rest[0];
    else this.#root = rest[0];
  }

  /** Applies the changes in order, then hands `extra` (given the new root) to `write`. */
  async commit(changes: KeyChange[], extra: BatchOp[] | ((root: Uint8Array, seq: number) => BatchOp[]) = []): Promise<Uint8Array> {
    for (const c of changes) {
      if (c.value === undefined) this.delete(c.key);
      else this.put(c.key, c.value);
    }
    const root = this.root;
    this.#seq++;
    this.#write(typeof extra === 'function' ? extra(root, this.#seq) : extra);
    return root;
  }

  async bulkLoad(sorted: KeyValue[]): Promise<Uint8Array> {
    for (const kv of sorted) this.put(kv.key, kv.value);
    return this.root;
  }

  /** Every key-value in key order. */
  *entries(): IterableIterator<KeyValue> {
    const walk = function* (n: Node | undefined): IterableIterator<KeyValue> {
      if (!n) return;
      if (isLeaf(n)) yield { key: n.key, value: n.value };
      else for (const c of n.children) yield* walk(c);
    };
    yield* walk(this.#root);
  }
}
