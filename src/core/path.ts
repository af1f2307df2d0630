/**
 * Token paths for branch factor 16 (docs/hashing.md): a key's bytes become 4-bit tokens,
 * high nibble first. In memory a path holds one token per byte, so byte-wise comparison of
 * paths is the trie's key order. On the wire and in hashes a path is packed MSB-first with its
 * length in bits; an odd number of tokens leaves the low nibble of the last byte zero.
 */
import type { Path } from './types.ts';
import { InvalidKeyLength, NonZeroPaddingBits } from './errors.ts';

export const BRANCH_FACTOR = 16;
export const BITS_PER_TOKEN = 4;

/**
 * The token path of a whole-byte key: two 4-bit tokens per byte, high nibble first.
 *
 * @example
 * keyToPath(fromHex('a1')); // Uint8Array [10, 1]
 */
export function keyToPath(key: Uint8Array): Path {
  const p = new Uint8Array(key.length * 2);
  for (let i = 0; i < key.length; i++) {
    p[2 * i] = key[i] >> 4;
    p[2 * i + 1] = key[i] & 15;
  }
  return p;
}

/**
 * Packs a path into bytes (MSB first, zero padding in the low nibble of an odd last byte).
 *
 * @example
 * packPath(new Uint8Array([10, 1, 7])); // Uint8Array [0xa1, 0x70]
 */
export function packPath(path: Path): Uint8Array {
  const out = new Uint8Array((path.length + 1) >> 1);
  for (let i = 0; i < path.length; i++) {
    out[i >> 1] |= (i & 1) === 0 ? path[i] << 4 : path[i];
  }
  return out;
}

/** The key bytes of a whole-byte path; for an odd path, the zero-padded packed bytes. */
export const pathToKey = packPath;

/**
 * Decodes a packed key of `bitLength` bits; throws a typed error for a bad length or padding
 * (`InvalidKeyLength`, `NonZeroPaddingBits`).
 *
 * @example
 * unpackPath(12, fromHex('a170')); // Uint8Array [10, 1, 7]
 * unpackPath(12, fromHex('a171')); // throws NonZeroPaddingBits
 */
export function unpackPath(bitLength: number, bytes: Uint8Array): Path {
  if (!Number.isSafeInteger(bitLength) || bitLength < 0 || bitLength % BITS_PER_TOKEN !== 0) {
    throw new InvalidKeyLength(`key length ${bitLength} bits is not a multiple of ${BITS_PER_TOKEN}`, { bitLength });
  }
  const tokens = bitLength / BITS_PER_TOKEN;
  // Math.ceil, not `(tokens + 1) >> 1`: a hostile bit length must not wrap a 32-bit shift.
  if (bytes.length !== Math.ceil(tokens / 2)) {
    throw new InvalidKeyLength(`key of ${bitLength} bits needs ${Math.ceil(tokens / 2)} bytes, got ${bytes.length}`, {
      bitLength,
      byteLength: bytes.length,
    });
  }
  if ((tokens & 1) === 1 && (bytes[bytes.length - 1] & 15) !== 0) {
    throw new NonZeroPaddingBits('padding bits of an odd-length key must be zero', { bitLength });
  }
  const p = new Uint8Array(tokens);
  for (let i = 0; i < tokens; i++) p[i] = (i & 1) === 0 ? bytes[i >> 1] >> 4 : bytes[i >> 1] & 15;
  return p;
}

export function isWholeByte(path: Path): boolean {
  return (path.length & 1) === 0;
}

/** True when `prefix` is a (not necessarily strict) prefix of `path`. */
export function hasPrefix(path: Path, prefix: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false;
  return true;
}

/** Length of the longest common prefix of two paths. */
export function commonPrefixLength(a: Path, b: Path, from = 0): number {
  const n = a.length < b.length ? a.length : b.length;
  let i = from;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * A path (or key) as a string, the overlay's and the cache's map key. Short paths, the upper
 * levels every update walks, without `apply` (one-character strings are not even allocated).
 */
export const pathStr = (p: Uint8Array): string => {
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