/**
 * The split point of a sync work range (docs/sync.md#midpoint): the byte-wise
 * average of `start` and `end` read as base-256 fractions, with carry. An absent start counts as
 * all 0x00 and an absent end as all 0xff. Same rule and results as AvalancheGo's `midPoint`
 * (database/merkle/sync/syncer.go):
 * - both are padded to the longer length L (start with 0x00, end with 0x00, or 0xff if absent);
 * - if start ends in 0xff and end is absent or ends in 0xff, L grows by one byte, so that
 *   (ff, none) gives ff7f7f and not ff;
 * - an odd sum leaves half a unit in the last place, written as one more byte 0x7f;
 * - with both bounds absent the answer is 7f.
 *
 * A key strictly between `start` and `end` exists unless `end` is empty or
 * `end == start ++ 0x00` (then nothing fits: any key above `start` is `start ++ 0x00` or
 * larger). Where upstream's average lands on `end` although a key fits
 * (`end == start ++ 00 00 …`), this returns `start ++ 0x00`, so `start < mid < end` holds for
 * every splittable pair.
 */
import { compareBytes, equalBytes } from './bytes.ts';

/**
 * A key strictly between `start` and `end` (exclusive bounds; `undefined` = unbounded), or a copy
 * of `end` when no key lies strictly between them (`start == end`, `end` empty,
 * `end == start ++ 0x00`): callers split a range only when the result differs from `end`.
 * Throws `RangeError` when `start > end`.
 *
 * @example
 * midpoint(fromHex('01ff'), fromHex('0201')); // 0200
 * midpoint(undefined, undefined);             // 7f
 * midpoint(fromHex('ff'), undefined);         // ff7f7f
 */
export function midpoint(start: Uint8Array | undefined, end: Uint8Array | undefined): Uint8Array {
  const s = start ?? new Uint8Array(0);
  if (end !== undefined) {
    const order = compareBytes(s, end);
    if (order > 0) throw new RangeError('midpoint: start is after end');
    if (order === 0 || isNextKey(s, end)) return end.slice();
  }
  const e = end ?? new Uint8Array(0);
  let length = Math.max(s.length, e.length);
  if (length === 0) return Uint8Array.of(0x7f); // end is absent here: an empty end returned above
  if (s.length > 0 && s[s.length - 1] === 0xff && (end === undefined || e[e.length - 1] === 0xff)) length++;

  const high = end === undefined ? 0xff : 0;
  // sum = s + e over `length` digits, least significant first; `carry` is the digit above them.
  const sum = new Uint16Array(length);
  let carry = 0;
  for (let i = length - 1; i >= 0; i--) {
    const t = (i < s.length ? s[i] : 0) + (i < e.length ? e[i] : high) + carry;
    sum[i] = t & 0xff;
    carry = t >> 8;
  }
  // Halve from the most significant digit; the remainder flows down one place.
  let rem = carry;
  const mid = new Uint8Array(length + 1);
  for (let i = 0; i < length; i++) {
    const t = rem * 256 + sum[i];
    mid[i] = t >> 1;
    rem = t & 1;
  }
  if (rem === 0) {
    const m = mid.subarray(0, length);
    // Only `end == start ++ 00 00 …` averages to `end` itself; `start ++ 00` lies between.
    if (end !== undefined && equalBytes(m, end)) return appendZero(s);
    return m.slice();
  }
  mid[length] = 0x7f;
  return mid;
}

/** True when `b == a ++ 0x00`, the smallest key after `a`. */
function isNextKey(a: Uint8Array, b: Uint8Array): boolean {
  if (b.length !== a.length + 1 || b[a.length] !== 0) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function appendZero(a: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + 1);
  out.set(a);
  return out;
}
