/**
 * The trie's store layout and its node record codec (docs/hashing.md#store-layout).
 *
 * Layout in the store (one byte per token in node keys, so store order is trie order):
 *   'n' ++ path  → node record of a node with children: value digest, children
 *   'v' ++ key   → value (range scans read values without touching nodes)
 *   'm'          → meta: root path and root id
 * A leaf (a value, no children: most nodes) has no node record: it is rebuilt from its value.
 * So a synced key costs one record, as the raw key-value would (measured: storing leaf records
 * made a range-proof commit write 2.1 records per key, and cost 4× the raw writes).
 *
 * Nor does a leaf cost its parent more than a byte: its parent's record names it by index only
 * (an elided leaf). Its path is the one value key under `parentPath ++ index` (only the leaf's
 * own key lies under it), its id the hash of that key and value (`leafNode`); `expandRecords`
 * (elided-leaves.ts) reads them back. Written in full, a leaf child cost its parent 63 bytes
 * (index, suffix length, ~29 bytes of packed suffix, id). Measured (Chromium, 200k keys,
 * `BENCH_KEYS=200000 BENCH_BASELINE=0 BENCH_PLACEMENT=0 BENCH_FIREFOX=0 BENCH_VERIFIED=0 node
 * bench/run.ts browser`): node records 92.6 → 30.4 bytes per key in the pages, IndexedDB bytes /
 * raw key-value bytes 2.19 → 1.41; 10k keys in a MemoryStore: 91.0 → 28.0 (trie.test.ts).
 * The full node writes leaves in full (`TrieOptions.elideLeaves`): filling them in costs a
 * value scan per node it reads, and serving 2,048-key range proofs from LevelDB took 13.2 ms
 * elided against 6.1 ms in full (200k keys, `BENCH_KEYS=200000 BENCH_SECONDS=3 BENCH_FRESH=1
 * node bench/run.ts node`, one run each).
 *
 * A record: flags, [digest length, digest], id (32 bytes), child count, then per child in index
 * order: index byte, and unless it is an elided leaf, suffix length in tokens, suffix tokens (the
 * child's path after `path ++ index`), id (32 bytes). Flags:
 *   bit 0  the node has a value digest;
 *   bit 1  suffixes are packed two tokens per byte, high nibble first (an odd count leaves the
 *          last low nibble zero): packing halved a leaf child's path;
 *   bit 2  leaf marks: bit 4 of a child's index byte says the child is a leaf (needs bit 1);
 *   bit 3  leaves elided: a marked child is its index byte alone (needs bit 2).
 * A light client's records are written with bits 1–3 (flags 0e/0f), the full node's with bits
 * 1–2 (06/07: marked, in full). The node cache keeps records with
 * bits 1–2 (`encodeFull`: leaves marked, in full), so that a hit decodes without the store.
 * Records without bits 2–3 (every store written before elision: flags 0–3) are read as ever;
 * their children are not known to be leaves and are written in full again until a change
 * rewrites them with what the view knows.
 */
import { concatBytes } from './bytes.ts';
import { InvalidChildIndex, InvalidWireType, MissingField, NonZeroPaddingBits, TooManyItems, TrailingBytes, TruncatedInput } from './errors.ts';
import { hashNode, valueDigest } from './hash.ts';
import { EMPTY_ROOT, type Path, type ProofNode } from './types.ts';
import { childPath, tokenAt, type BuiltNode, type ChildRef } from './builder.ts';

export interface ChildEntry {
  /** Full path of the child node. */
  path: Path;
  id: Uint8Array;
  /** A stale entry's `pathStr(path)`, when its maker had it (rehash looks the child up by it). */
  key?: string;
  /**
   * The child is a leaf (a value, no children), as its record or its maker knew: written elided
   * (index byte only). Unset when not known (records written before leaf marks): written in full.
   */
  leaf?: boolean;
}

export interface TrieNode {
  path: Path;
  digest: Uint8Array | undefined;
  children: (ChildEntry | undefined)[];
  id: Uint8Array;
  /** Read from a node record (so a change into a leaf must delete that record). */
  stored?: boolean;
}

export const isLeaf = (n: TrieNode): boolean => {
  for (let i = 0; i < 16; i++) if (n.children[i] !== undefined) return false;
  return true;
};

const N = 0x6e; // 'n'
const V = 0x76; // 'v'
export const META_KEY = new Uint8Array([0x6d]); // 'm'
/** Bounds of the node records in the store: `[NODE_START, NODE_END)`. */
export const NODE_START = new Uint8Array([N]);
export const NODE_END = new Uint8Array([N + 1]);
/** Just past the last value key. */
export const VALUE_END = new Uint8Array([V + 1]);

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

/** How the encoder reads one kind of child entry: its path length in tokens, and its tokens. */
interface ChildReader<C> {
  tokens(c: C): number;
  token(c: C, j: number): number;
  leaf(c: C): boolean;
}

const TRIE_CHILD: ChildReader<ChildEntry> = { tokens: (c) => c.path.length, token: (c, j) => c.path[j], leaf: (c) => c.leaf === true };
// a builder's child keeps its path packed (a proof's rebuild has a child per key: unpacking
// each cost a 64-byte array and an object)
const BUILT_CHILD: ChildReader<ChildRef> = { tokens: (c) => c.tokens, token: (c, j) => tokenAt(c.key, j), leaf: (c) => c.leaf };

/** Flag bits of a record's first byte. */
const HAS_DIGEST = 1;
/** Suffixes two tokens per byte. Records without it (one token per byte) are still read. */
const PACKED = 2;
/** Child index bytes carry `LEAF` on children that are leaves (needs `PACKED`). */
const LEAF_MARKS = 4;
/** Leaf-marked children are elided: nothing follows their index byte (needs `LEAF_MARKS`). */
const ELIDED = 8;
/** The bit of a child index byte that marks a leaf child (under `LEAF_MARKS`). */
const LEAF = 0x10;

/** The record of a node at a path of `base - 1` tokens (layout in the module comment). */
function encodeRecord<C extends { id: Uint8Array }>(
  base: number,
  digest: Uint8Array | undefined,
  id: Uint8Array,
  kids: readonly (C | undefined)[],
  read: ChildReader<C>,
  elide: boolean,
): Uint8Array {
  let len = 2 + (digest ? 1 + digest.length : 0) + 32;
  let count = 0;
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c !== undefined) {
      count++;
      len += elide && read.leaf(c) ? 1 : 2 + ((read.tokens(c) - base + 1) >> 1) + 32;
    }
  }
  const out = new Uint8Array(len);
  let o = 0;
  out[o++] = PACKED | LEAF_MARKS | (elide ? ELIDED : 0) | (digest ? HAS_DIGEST : 0);
  if (digest) {
    out[o++] = digest.length;
    out.set(digest, o);
    o += digest.length;
  }
  out.set(id, o);
  o += 32;
  out[o++] = count;
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c === undefined) continue;
    const leaf = read.leaf(c);
    out[o++] = leaf ? i | LEAF : i;
    if (leaf && elide) continue;
    const tokens = read.tokens(c);
    out[o++] = tokens - base;
    // the array is zeroed, so an odd suffix leaves its last low nibble 0
    let j = base;
    for (; j + 1 < tokens; j += 2) out[o++] = (read.token(c, j) << 4) | read.token(c, j + 1);
    // an odd suffix leaves its last low nibble 0
    if (j < tokens) out[o++] = read.token(c, j) << 4;
    // ids are views of records or hashes (mixed backing stores): a builtin copy is monomorphic
    out.set(c.id, o);
    o += 32;
  }
  return out;
}

/**
 * The store record of a trie node (with children: leaves have none): children marked `leaf` are
 * elided (module comment).
 */
export function encodeNode(n: TrieNode): Uint8Array {
  return encodeRecord(n.path.length + 1, n.digest, n.id, n.children, TRIE_CHILD, true);
}

/**
 * The record of a trie node as the node cache keeps it: leaf children marked but written in
 * full, so it decodes without the store (`decodeNode`); `elideLeaves` turns it into the store's.
 */
export function encodeFull(n: TrieNode): Uint8Array {
  return encodeRecord(n.path.length + 1, n.digest, n.id, n.children, TRIE_CHILD, false);
}

/**
 * `encodeFull(builtToNode(n))`, from the builder's node as it is (a grafted record: the view
 * decodes it when it visits it, `elideLeaves` makes its store record).
 */
export function encodeBuilt(n: BuiltNode): Uint8Array {
  return encodeRecord(n.path.length + 1, n.digest, n.id, n.children, BUILT_CHILD, false);
}

function truncated(b: Uint8Array, need: number, what: string): never {
  throw new TruncatedInput(`node record of ${b.length} bytes ends inside its ${what}`, { length: b.length, need });
}

function checkFlags(flags: number): void {
  const known = flags <= (PACKED | HAS_DIGEST) || (flags & ~(HAS_DIGEST | ELIDED)) === (PACKED | LEAF_MARKS);
  if (!known) throw new InvalidWireType(`node record flags ${flags}`, { flags });
}

/** Where a record's parts are, checked (`parseRecord`). */
interface RecordLayout {
  flags: number;
  digest: Uint8Array | undefined;
  id: Uint8Array;
  count: number;
  /** Offset of the first child. */
  first: number;
  /** Indices of the elided leaf children, increasing. */
  elided: number[];
}

/**
 * A record's layout, every bound checked: a record that does not parse (a damaged store) throws
 * `TruncatedInput`, `TrailingBytes`, `TooManyItems`, `InvalidChildIndex` (indices must
 * increase), `NonZeroPaddingBits` or `InvalidWireType` (flags) rather than let a reader read past it.
 */
function parseRecord(b: Uint8Array): RecordLayout {
  const end = b.length;
  let o = 0;
  let digest: Uint8Array | undefined;
  if (end < 1) truncated(b, 1, 'digest flag');
  const flags = b[o++];
  checkFlags(flags);
  const packed = (flags & PACKED) !== 0;
  const marks = (flags & LEAF_MARKS) !== 0;
  const elide = (flags & ELIDED) !== 0;
  if ((flags & HAS_DIGEST) !== 0) {
    if (o >= end) truncated(b, o + 1, 'digest length');
    const l = b[o++];
    if (o + l > end) truncated(b, o + l, 'digest');
    digest = b.subarray(o, o + l);
    o += l;
  }
  if (o + 33 > end) truncated(b, o + 33, 'id and child count');
  const id = b.subarray(o, o + 32);
  o += 32;
  const count = b[o++];
  if (count > 16) throw new TooManyItems(`node record lists ${count} children, at most 16`, { count });
  const elided: number[] = [];
  let q = o;
  for (let k = 0, last = -1; k < count; k++) {
    if (q + 1 > end) truncated(b, q + 1, 'child index');
    const leaf = marks && (b[q] & LEAF) !== 0;
    const i = marks ? b[q] & ~LEAF : b[q];
    if (i > 15 || i <= last) throw new InvalidChildIndex(`node record child index ${b[q]} after ${last}`, { index: b[q], previous: last });
    last = i;
    if (leaf && elide) {
      elided.push(i);
      q++;
      continue;
    }
    if (q + 2 > end) truncated(b, q + 2, 'child suffix length');
    const l = b[q + 1];
    const bytes = packed ? (l + 1) >> 1 : l;
    q += 2 + bytes + 32;
    if (q > end) truncated(b, q, 'child suffix and id');
    if (packed && (l & 1) === 1 && (b[q - 33] & 15) !== 0) throw new NonZeroPaddingBits(`node record child ${i} suffix of ${l} tokens ends in a non-zero nibble`, { index: i });
  }
  if (q !== end) throw new TrailingBytes(`node record has ${end - q} bytes after its children`, { extra: end - q });
  return { flags, digest, id, count, first: o, elided };
}

/**
 * The node at `path` from its record (one without elided leaves: the node cache's, or a store
 * record whose elided leaves `expandRecord` filled in). A record that does not parse throws as
 * `parseRecord` says; one with elided leaves throws `MissingField`: they need the store's values.
 */
export function decodeNode(path: Path, b: Uint8Array): TrieNode {
  // Ids and the digest are views into `b` (records are never mutated; the cache keeps them), and
  // the children's paths share one allocation: a decode allocates per child only the entry and
  // a view (measured: per-child copies made decoding, and the collections after it, a third of
  // a live group's CPU time).
  const { flags, digest, id, count, first, elided } = parseRecord(b);
  if (elided.length) throw new MissingField(`node record child ${elided[0]} is an elided leaf: expand the record with its value first`, { index: elided[0] });
  const children: (ChildEntry | undefined)[] = new Array(16);
  if (count === 0) return { path, digest, children, id, stored: true };
  const packed = (flags & PACKED) !== 0;
  const marks = (flags & LEAF_MARKS) !== 0;
  // total path bytes: each child's full path is `path ++ index ++ suffix`
  let total = 0;
  let o = first;
  for (let k = 0; k < count; k++) {
    const l = b[o + 1];
    total += path.length + 1 + l;
    o += 2 + (packed ? (l + 1) >> 1 : l) + 32;
  }
  const paths = new Uint8Array(total);
  let po = 0;
  o = first;
  for (let k = 0; k < count; k++) {
    const leaf = marks && (b[o] & LEAF) !== 0;
    const i = b[o++] & 15;
    const l = b[o++];
    const start = po;
    paths.set(path, po);
    po += path.length;
    paths[po++] = i;
    if (packed) {
      const pairs = l >> 1;
      for (let j = 0; j < pairs; j++) {
        const x = b[o + j];
        paths[po++] = x >> 4;
        paths[po++] = x & 15;
      }
      if ((l & 1) === 1) paths[po++] = b[o + pairs] >> 4;
      o += (l + 1) >> 1;
    } else {
      for (let j = 0; j < l; j++) paths[po++] = b[o + j];
      o += l;
    }
    // views made by the constructor: `subarray` is ~1.5× slower (it looks up a species constructor)
    children[i] = { path: new Uint8Array(paths.buffer, start, po - start), id: new Uint8Array(b.buffer, b.byteOffset + o, 32), leaf };
    o += 32;
  }
  return { path, digest, children, id, stored: true };
}

/**
 * The indices of a store record's elided leaf children (empty for records without): each one's
 * leaf is the one value key under `path ++ index` (`expandRecord`). Throws as `parseRecord`.
 */
export function elidedIndices(b: Uint8Array): number[] {
  return parseRecord(b).elided;
}

/** An elided leaf as the store's values give it back: its full path and its id. */
export interface ElidedLeaf {
  path: Path;
  id: Uint8Array;
}

/**
 * The record at `path` with its elided leaves filled in (`leaves`, by child index), as the node
 * cache keeps it (`encodeFull`'s form: leaf children marked, in full). A record without elided
 * leaves is returned as it is.
 */
export function expandRecord(path: Path, b: Uint8Array, leaves: readonly (ElidedLeaf | undefined)[]): Uint8Array {
  const { flags, count, first, elided } = parseRecord(b);
  if (elided.length === 0) return b;
  const base = path.length + 1;
  let len = b.length;
  for (const i of elided) {
    const leaf = leaves[i];
    if (!leaf) throw new MissingField(`node record child ${i} is an elided leaf and no value was found for it`, { index: i });
    const l = leaf.path.length - base;
    if (l < 0 || l > 255 || leaf.path[base - 1] !== i) throw new RangeError(`leaf of ${leaf.path.length} tokens does not fit child ${i} of a node of ${path.length}`);
    len += 1 + ((l + 1) >> 1) + 32;
  }
  const out = new Uint8Array(len);
  out.set(b.subarray(0, first));
  out[0] = flags & ~ELIDED;
  let o = first;
  let q = first;
  for (let k = 0; k < count; k++) {
    const marked = (b[q] & LEAF) !== 0;
    const i = b[q] & 15;
    if (marked) {
      const leaf = leaves[i]!;
      out[o++] = b[q++];
      const tokens = leaf.path.length;
      out[o++] = tokens - base;
      let j = base;
      for (; j + 1 < tokens; j += 2) out[o++] = (leaf.path[j] << 4) | leaf.path[j + 1];
      if (j < tokens) out[o++] = leaf.path[j] << 4;
      out.set(leaf.id, o);
      o += 32;
      continue;
    }
    const l = b[q + 1];
    const size = 2 + ((l + 1) >> 1) + 32;
    out.set(b.subarray(q, q + size), o);
    o += size;
    q += size;
  }
  return out;
}

/** The store record of a record in the node cache's form (`encodeFull`, `encodeBuilt`): leaf children elided. */
export function elideLeaves(b: Uint8Array): Uint8Array {
  const { flags, count, first } = parseRecord(b);
  if ((flags & LEAF_MARKS) === 0 || (flags & ELIDED) !== 0) return b;
  let len = first;
  let q = first;
  const keep: [number, number][] = [];
  for (let k = 0; k < count; k++) {
    const size = 2 + ((b[q + 1] + 1) >> 1) + 32;
    if ((b[q] & LEAF) !== 0) {
      keep.push([q, 1]);
      len += 1;
    } else {
      keep.push([q, size]);
      len += size;
    }
    q += size;
  }
  const out = new Uint8Array(len);
  out.set(b.subarray(0, first));
  out[0] = flags | ELIDED;
  let o = first;
  for (const [at, size] of keep) {
    out.set(b.subarray(at, at + size), o);
    o += size;
  }
  return out;
}

/** The leaf at whole-byte `path` holding `value` (leaves have no node record). */
export function leafNode(path: Path, value: Uint8Array): TrieNode {
  const digest = valueDigest(value);
  return { path, digest, children: new Array(16), id: hashNode(path, digest, []) };
}

export function builtToNode(n: BuiltNode): TrieNode {
  return { path: n.path, digest: n.digest, id: n.id, children: n.children.map((c) => c && { path: childPath(c), id: c.id, leaf: c.leaf }) };
}

export function toProofNode(n: TrieNode): ProofNode {
  const children = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++) {
    const c = n.children[i];
    if (c) children.set(i, c.id);
  }
  return { key: n.path, valueOrHash: n.digest, children };
}

/** The meta record: where the root is. */
export interface Meta {
  rootPath: Path | undefined;
  root: Uint8Array;
}

export function encodeMeta(m: Meta): Uint8Array {
  if (!m.rootPath) return new Uint8Array([0]);
  return concatBytes(new Uint8Array([1]), m.root, m.rootPath);
}

export function decodeMeta(b: Uint8Array | undefined): Meta {
  if (!b || b[0] === 0) return { rootPath: undefined, root: EMPTY_ROOT };
  return { root: b.slice(1, 33), rootPath: b.slice(33) };
}
