/**
 * Node hashing, byte-for-byte AvalancheGo merkledb (docs/hashing.md#node-id):
 *   id = SHA-256( uvarint(#children) || (uvarint(index) || childId)* ||
 *                 (0x01 || uvarint(len d) || d  |  0x00) || uvarint(bits) || packed key )
 * where d is the value digest: the value itself below 32 bytes, else SHA-256(value).
 */
import { messageBuffer, sha256, sha256Again, sha256Resume, Sha256Midstates } from './sha256.ts';
import type { Path } from './types.ts';

export const HASH_LENGTH = 32;

/** Unsigned LEB128, as Go's binary.AppendUvarint. */
export function uvarintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function putUvarint(buf: Uint8Array, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[off++] = n;
  return off;
}

/**
 * The digest a trie node commits to for a value (docs/hashing.md#node-id): the value itself when
 * shorter than 32 bytes, else its SHA-256.
 *
 * @example
 * valueDigest(new TextEncoder().encode('short')); // the 5 bytes themselves
 * valueDigest(new Uint8Array(100)).length;        // 32
 */
export function valueDigest(value: Uint8Array): Uint8Array {
  return value.length < HASH_LENGTH ? value : sha256(value);
}

// One scratch buffer, the hasher's own message area (nothing is copied to hash it); a larger
// node (never in a 16-ary trie) gets a plain array: hashing allocates only the digest.
// Taken at the first hash: asking for it instantiates the hasher (sha256.ts).
let scratch: Uint8Array | undefined;

let packScratch = new Uint8Array(64);

/**
 * What `hashNode` keeps of a node hashed again and again (a trie node near the root, rehashed
 * after every update below it): the SHA-256 midstates of its preimage, and the child ids and
 * digest that preimage holds. When only child ids changed (compared by identity: ids are never
 * mutated), the preimage is patched where they sit and hashed from the first changed block: the
 * other ids are not read again (measured in the browser worker: copying each child id into the
 * preimage, ids scattered over the heap, cost as much as compressing it).
 */
export class NodeMidstates extends Sha256Midstates {
  ids: (Uint8Array | undefined)[] | undefined;
  digest: Uint8Array | undefined;
  tokens = -1;
  last: Uint8Array | undefined;
}

/**
 * The id of a node with full key `path`, value digest `digest` (undefined: no value) and
 * `children` (a 16-slot array, undefined where there is no child).
 *
 * @example
 * const value = new TextEncoder().encode('v');
 * const leaf = hashNode(keyToPath(key), valueDigest(value), new Array(16));
 */
export function hashNode(path: Path, digest: Uint8Array | undefined, children: ArrayLike<Uint8Array | undefined>, midstates?: NodeMidstates): Uint8Array {
  const n = path.length;
  // packed into a scratch buffer: `hashPacked` copies what it needs and keeps nothing
  if (packScratch.length < (n + 1) >> 1) packScratch = new Uint8Array((n + 1) >> 1);
  const packed = packScratch;
  for (let i = 0; i + 1 < n; i += 2) packed[i >> 1] = (path[i] << 4) | path[i + 1];
  if (n & 1) packed[n >> 1] = path[n - 1] << 4;
  return hashPacked(packed, n, digest, children, midstates);
}

/**
 * As `hashNode`, for a path given packed (`key`, of which the first `tokens` tokens count; the
 * rest of the bytes, and the low nibble after an odd count, are ignored).
 */
export function hashPacked(
  key: Uint8Array,
  tokens: number,
  digest: Uint8Array | undefined,
  children: ArrayLike<Uint8Array | undefined> | undefined,
  midstates?: NodeMidstates,
): Uint8Array {
  if (midstates && children) {
    const again = patchPreimage(midstates, tokens, digest, children);
    if (again) return again;
  }
  let count = 0;
  if (children) for (let i = 0; i < children.length; i++) if (children[i] !== undefined) count++;
  const keyBytes = (tokens + 1) >> 1;
  const need = 1 + count * 33 + (digest ? digest.length + 6 : 1) + 10 + keyBytes;
  let buf = (scratch ??= messageBuffer());
  if (buf.length < need) buf = scratch = new Uint8Array(need * 2);
  let off = putUvarint(buf, 0, count);
  if (children) {
    for (let i = 0; i < children.length; i++) {
      const c = children[i];
      if (c === undefined) continue;
      buf[off++] = i; // index < 128: a one-byte uvarint
      buf.set(c, off);
      off += HASH_LENGTH;
    }
  }
  if (digest !== undefined) {
    buf[off++] = 1;
    off = putUvarint(buf, off, digest.length);
    buf.set(digest, off);
    off += digest.length;
  } else buf[off++] = 0;
  off = putUvarint(buf, off, tokens * 4);
  const whole = tokens >> 1;
  for (let i = 0; i < whole; i++) buf[off++] = key[i];
  if (tokens & 1) buf[off++] = key[whole] & 0xf0;
  preimageLength = off;
  // no subarray object per node; with midstates, only the blocks from the first changed byte
  if (!midstates) return sha256(buf, off);
  const id = sha256Again(buf, off, midstates);
  if (children && children.length === 16) {
    midstates.ids = Array.from(children);
    midstates.digest = digest;
    midstates.tokens = tokens;
    midstates.last = id;
  } else midstates.ids = undefined;
  return id;
}

/**
 * The id of the node whose preimage `m` holds, after only child ids changed (patched into
 * `m.bytes`); undefined when its children, digest or path differ in shape (build it anew).
 */
function patchPreimage(m: NodeMidstates, tokens: number, digest: Uint8Array | undefined, children: ArrayLike<Uint8Array | undefined>): Uint8Array | undefined {
  const ids = m.ids;
  if (!ids || m.tokens !== tokens || m.digest !== digest || children.length !== 16) return undefined;
  for (let i = 0; i < 16; i++) {
    const c = children[i];
    if ((c === undefined) !== (ids[i] === undefined) || (c !== undefined && c.length !== HASH_LENGTH)) return undefined;
  }
  const bytes = m.bytes;
  let first = -1;
  let off = 1; // the child count: one byte (at most 16)
  for (let i = 0; i < 16; i++) {
    const c = children[i];
    if (c === undefined) continue;
    off++; // its index
    if (c !== ids[i]) {
      bytes.set(c, off);
      ids[i] = c;
      if (first < 0) first = off;
    }
    off += HASH_LENGTH;
  }
  if (first < 0) return m.last;
  return (m.last = sha256Resume(m, first));
}

let preimageLength = 0;

/** A copy of the exact bytes `hashNode` hashes for such a node (benchmarks and tests). */
export function nodePreimage(path: Path, digest: Uint8Array | undefined, children: ArrayLike<Uint8Array | undefined>): Uint8Array {
  hashNode(path, digest, children);
  return scratch!.slice(0, preimageLength);
}

/** Number of bytes `hashNode` feeds to SHA-256 for such a node (for the benchmark's baseline). */
export function hashedLength(pathLength: number, digestLength: number | undefined, childCount: number): number {
  return (
    uvarintLength(childCount) +
    childCount * 33 +
    (digestLength === undefined ? 1 : 1 + uvarintLength(digestLength) + digestLength) +
    uvarintLength(pathLength * 4) +
    ((pathLength + 1) >> 1)
  );
}
