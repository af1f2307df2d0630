/**
 * Byte helpers used across the core. Bytes are `Uint8Array` everywhere; hex only at the edges.
 */

/**
 * Lexicographic comparison of two byte strings (shorter prefix sorts first): negative, zero or
 * positive, as `Array.prototype.sort` expects. This is the trie's key order.
 *
 * @example
 * compareBytes(fromHex('01ff'), fromHex('02')); // < 0
 * keys.sort(compareBytes);
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Whether two byte strings hold the same bytes; two undefined values are equal.
 *
 * @example
 * equalBytes(proofRoot, announcement.root); // true when the roots match
 */
export function equalBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether `start <= key <= end` byte-wise; a bound left undefined does not limit.
 *
 * @example
 * inKeyRange(fromHex('05'), fromHex('01'), undefined); // true
 * inKeyRange(fromHex('05'), undefined, fromHex('05')); // true: both bounds are inclusive
 */
export function inKeyRange(key: Uint8Array, start: Uint8Array | undefined, end: Uint8Array | undefined): boolean {
  return (!start || compareBytes(key, start) >= 0) && (!end || compareBytes(key, end) <= 0);
}

/**
 * The parts, one after the other, in a new array.
 *
 * @example
 * concatBytes(fromHex('01'), fromHex('0203')); // 010203
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Lower-case hex of the bytes, for logs, the CLI and the UI (bytes stay `Uint8Array` inside).
 *
 * @example
 * toHex(new Uint8Array([1, 171])); // '01ab'
 */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/**
 * Parses lower- or upper-case hex with an even number of digits; throws `TypeError` otherwise.
 *
 * @example
 * fromHex('01AB'); // Uint8Array [1, 171]
 * fromHex('abc');  // TypeError: expected even-length hex string, got length 3
 */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string') throw new TypeError(`expected hex string, got ${typeof hex}`);
  if (hex.length % 2 !== 0) throw new TypeError(`expected even-length hex string, got length ${hex.length}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const byte = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    if (Number.isNaN(byte) || !/^[0-9a-fA-F]{2}$/.test(hex.slice(2 * i, 2 * i + 2))) {
      throw new TypeError(`invalid hex digit at position ${2 * i}`);
    }
    out[i] = byte;
  }
  return out;
}
