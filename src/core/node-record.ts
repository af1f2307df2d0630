/**
 * The trie's store layout and its node record codec (docs/hashing.md).
 *
 * Layout in the store (one byte per token in node keys, so store order is trie order):
 *   'n' ++ path  → node record of a node with children: value digest, children (index,
 *                  compressed path, id)
 *   'v' ++ key   → value (range scans read values without touching nodes)
 *   'm'          → meta: root path and root id
 * A leaf (a value, no children: most nodes) has no node record: it is rebuilt from its value.
 * So a synced key costs one record, as the raw key-value would (measured: storing leaf records
 * made a range-proof commit write 2.1 records per key, and cost 4× the raw writes).
 *
 * A record: flags, [digest length, digest], id (32 bytes), child count, then per child in index
 * order: index, suffix length in tokens, suffix tokens (the child's path after `path ++ index`),
 * id (32 bytes). Flags: bit 0 the node has a value digest; bit 1 the suffixes are packed two
 * tokens per byte, high nibble first (an odd count leaves the last low nibble zero). Records are
 * written packed; records without bit 1 (one token per byte, as stores written before it hold)
 * are still read. Packing halves a leaf child's path (58 tokens at 1M random 32-byte keys): a
 * light client's IndexedDB held 121 bytes of node records per key unpacked.
 */
import { concatBytes } from './bytes.ts';
import { InvalidChildIndex, InvalidWireType, NonZeroPaddingBits, TooManyItems, TrailingBytes, TruncatedInput } from './errors.ts';
import { hashNode, valueDigest } from './hash.ts';
import { EMPTY_ROOT, type Path, type ProofNode } from './types.ts';
import { childPath, tokenAt, type BuiltNode, type ChildRef } from './builder.ts';

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
}

const TRIE_CHILD: ChildReader<ChildEntry> = { tokens: (c) => c.path.length, token: (c, j) => c.path[j] };
// a builder's child keeps its path packed (a proof's rebuild has a child per key: unpacking
// each cost a 64-byte array and an object)
const BUILT_CHILD: ChildReader<ChildRef> = { tokens: (c) => c.tokens, token: (c, j) => tokenAt(c.key, j) };

/** Flag bits of a record's first byte. */
const HAS_DIGEST = 1;
/** Suffixes two tokens per byte. Records without it (one token per byte) are still read. */
const PACKED = 2;

/** The record of a node at a path of `base - 1` tokens (layout in the module comment). */
function encodeRecord<C extends { id: Uint8Array }>(
  base: number,
  digest: Uint8Array | undefined,
  id: Uint8Array,
  kids: readonly (C | undefined)[],
  read: ChildReader<C>,
): Uint8Array {
  let len = 2 + (digest ? 1 + digest.length : 0) + 32;
  let count = 0;
  for (let i = 0; i < 16; i++) {
    const c = kids[i];
    if (c !== undefined) {
      count++;
      len += 2 + ((read.tokens(c) - base + 1) >> 1) + 32;
    }
  }
  const out = new Uint8Array(len);
  let o = 0;
  out[o++] = PACKED | (digest ? HAS_DIGEST : 0);
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
    const tokens = read.tokens(c);
    out[o++] = i;
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

/** The record of a trie node (with children: leaves have none). */
export function encodeNode(n: TrieNode): Uint8Array {
  return encodeRecord(n.path.length + 1, n.digest, n.id, n.children, TRIE_CHILD);
}

/** `encodeNode(builtToNode(n))`, from the builder's node as it is. */
export function encodeBuilt(n: BuiltNode): Uint8Array {
  return encodeRecord(n.path.length + 1, n.digest, n.id, n.children, BUILT_CHILD);
}

function truncated(b: Uint8Array, need: number, what: string): never {
  throw new TruncatedInput(`node record of ${b.length} bytes ends inside its ${what}`, { length: b.length, need });
}

/**
 * The node at `path` from its record. A record that does not parse (a damaged store) throws
 * `TruncatedInput`, `TrailingBytes`, `TooManyItems` or `InvalidChildIndex` (indices must
 * increase) rather than yield a node with undefined fields or read past the record.
 */
export function decodeNode(path: Path, b: Uint8Array): TrieNode {
  // Ids and the digest are views into `b` (records are never mutated; the cache keeps them), and
  // the children's paths share one allocation: a decode allocates per child only the entry and
  // a view (measured: per-child copies made decoding, and the collections after it, a third of
  // a live group's CPU time).
  const end = b.length;
  let o = 0;
  let digest: Uint8Array | undefined;
  if (end < 1) truncated(b, 1, 'digest flag');
  const flags = b[o++];
  if (flags > (PACKED | HAS_DIGEST)) throw new InvalidWireType(`node record flags ${flags}`, { flags });
  const packed = (flags & PACKED) !== 0;
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
  const children: (ChildEntry | undefined)[] = new Array(16);
  const base = path.length + 1;
  // total path bytes: each child's full path is `path ++ index ++ suffix`; indices increase
  let total = 0;
  let q = o;
  for (let k = 0, last = -1; k < count; k++) {
    if (q + 2 > end) truncated(b, q + 2, 'child index');
    const i = b[q];
    if (i > 15 || i <= last) throw new InvalidChildIndex(`node record child index ${i} after ${last}`, { index: i, previous: last });
    last = i;
    const l = b[q + 1];
    const bytes = packed ? (l + 1) >> 1 : l;
    q += 2 + bytes + 32;
    if (q > end) truncated(b, q, 'child suffix and id');
    if (packed && (l & 1) === 1 && (b[q - 33] & 15) !== 0) throw new NonZeroPaddingBits(`node record child ${i} suffix of ${l} tokens ends in a non-zero nibble`, { index: i });
    total += base + l;
  }
  if (q !== end) throw new TrailingBytes(`node record has ${end - q} bytes after its children`, { extra: end - q });
  if (count === 0) return { path, digest, children, id, stored: true };
  const paths = new Uint8Array(total);
  let po = 0;
  for (let k = 0; k < count; k++) {
    const i = b[o++];
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
    children[i] = { path: new Uint8Array(paths.buffer, start, po - start), id: new Uint8Array(b.buffer, b.byteOffset + o, 32) };
    o += 32;
  }
  return { path, digest, children, id, stored: true };
}

/** The leaf at whole-byte `path` holding `value` (leaves have no node record). */
export function leafNode(path: Path, value: Uint8Array): TrieNode {
  const digest = valueDigest(value);
  return { path, digest, children: new Array(16), id: hashNode(path, digest, []) };
}

export function builtToNode(n: BuiltNode): TrieNode {
  return { path: n.path, digest: n.digest, id: n.id, children: n.children.map((c) => c && { path: childPath(c), id: c.id }) };
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
