/**
 * Key ranges of the state sync (docs/sync.md).
 *
 * Inside the sync every range is half-open, `[start, end)`, with `end` undefined for unbounded
 * and `start` the empty key for "from the beginning". Every bounded `end` is a *boundary*: a
 * key ending in 0x00. That is what lets a proof request, whose end bound is inclusive, cover
 * exactly one range: `[start, p ++ 00)` holds the same keys as `[start, p]`, since no key lies
 * between `p` and `p ++ 00`. So neighbouring ranges never share a key, and a change proof for
 * one range never reads (or writes) a key of its neighbour, which may be at another revision.
 * (Upstream's ranges share their end key, which makes a change proof fail against an honest
 * server when the neighbour holding that key is at a different root.)
 */
import { compareBytes } from '../../core/bytes.ts';
import { midpoint } from '../../core/midpoint.ts';

/** A half-open key range `[start, end)`; `end` undefined = unbounded. */
export interface KeyRange {
  start: Uint8Array;
  end: Uint8Array | undefined;
}

/** An inclusive key range as users give it; either bound may be absent. */
export interface InclusiveRange {
  start?: Uint8Array | undefined;
  end?: Uint8Array | undefined;
}

export const EMPTY_KEY: Uint8Array = new Uint8Array(0);

/** Keys longer than this are never chosen as split points. */
const MAX_SPLIT_KEY = 64;

/** `key ++ 0x00`: the smallest key after `key`. */
export function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/** True for a valid range boundary (a key ending in 0x00). */
export function isBoundary(key: Uint8Array): boolean {
  return key.length > 0 && key[key.length - 1] === 0;
}

/** The inclusive end a proof request uses for the range end `end` (a boundary). */
export function requestEnd(end: Uint8Array | undefined): Uint8Array | undefined {
  if (end === undefined) return undefined;
  if (!isBoundary(end)) throw new RangeError('range end is not a boundary (a key ending in 0x00)');
  return end.subarray(0, end.length - 1);
}

/** Compares range ends, undefined (unbounded) last. */
export function compareEnd(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  if (a === undefined) return b === undefined ? 0 : 1;
  if (b === undefined) return -1;
  return compareBytes(a, b);
}

export function isEmptyRange(r: KeyRange): boolean {
  return r.end !== undefined && compareBytes(r.start, r.end) >= 0;
}

export function containsKey(r: KeyRange, key: Uint8Array): boolean {
  return compareBytes(key, r.start) >= 0 && (r.end === undefined || compareBytes(key, r.end) < 0);
}

/** The half-open range of a user's inclusive range. */
export function fromInclusive(r: InclusiveRange): KeyRange {
  const start = r.start ?? EMPTY_KEY;
  const end = r.end === undefined ? undefined : successor(r.end);
  if (end !== undefined && compareBytes(start, end) >= 0) throw new RangeError('range start is after its end');
  return { start: start.slice(), end };
}

/**
 * The range of keys starting with `prefix`, as an inclusive range. A proof request cannot
 * stop just before the first key after the prefix (no largest key with a prefix exists), so the
 * range also holds that one key, `prefix` incremented (e.g. prefix 12 → [12, 13]); it is synced
 * and proven like the others. An all-0xff prefix is unbounded.
 *
 * @example
 * prefixRange(fromHex('12'));   // { start: 12, end: 13 }
 * prefixRange(fromHex('12ff')); // { start: 12ff, end: 13 }
 * const client = createLightClient({ db, writer, bootstrap, ranges: [prefixRange(new TextEncoder().encode('users/'))] });
 */
export function prefixRange(prefix: Uint8Array): InclusiveRange {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return { start: prefix.slice(), end: undefined };
  const end = prefix.slice(0, n);
  end[n - 1]++;
  return { start: prefix.slice(), end };
}

/** Sorts and merges overlapping or touching ranges. */
export function normaliseRanges(ranges: KeyRange[]): KeyRange[] {
  const sorted = ranges.filter((r) => !isEmptyRange(r)).sort((a, b) => compareBytes(a.start, b.start));
  const out: KeyRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && (last.end === undefined || compareBytes(r.start, last.end) <= 0)) {
      if (compareEnd(r.end, last.end) > 0) last.end = r.end;
    } else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** Bytes of 0xff after the decremented midpoint: see `splitPoint`. */
const BELOW_PAD = 4;

/**
 * A boundary strictly inside `[start, end)` near its middle, or undefined when the range is too
 * small to split. With `m` the midpoint (docs/sync.md#midpoint), the boundary is `(m - 1) ++ ff ff ff ff ++ 00`
 * (m - 1 as a number of the same length), not `m ++ 00`: just below the subtree whose keys start
 * at `m` instead of inside it. A subtree that holds keys on both sides of a boundary differs
 * from the remote one until both neighbours are synced, so `nextKey` resumes the left item
 * inside it and a further request, whose answer is empty, proves the few keys left (measured:
 * 6 of 22 requests of a 10,000-change catch-up on 1M keys, each an answer to wait for and
 * verify). Below `m` only keys that extend `(m - 1) ++ ff ff ff ff` straddle, none in practice.
 * Falls back to `m ++ 00` where that boundary does not fit.
 */
export function splitPoint(r: KeyRange): Uint8Array | undefined {
  if (isEmptyRange(r)) return undefined;
  const m = midpoint(r.start, r.end);
  const inside = (b: Uint8Array) => b.length <= MAX_SPLIT_KEY && compareBytes(b, r.start) > 0 && (r.end === undefined || compareBytes(b, r.end) < 0);
  const below = decrementPadded(m);
  if (below && inside(below)) return below;
  const mid = successor(m);
  return inside(mid) ? mid : undefined;
}

/** `(m - 1) ++ ff ×BELOW_PAD ++ 00`, or undefined for an all-zero `m`. */
function decrementPadded(m: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(m.length + BELOW_PAD + 1);
  out.set(m);
  let i = m.length - 1;
  while (i >= 0 && out[i] === 0) out[i--] = 0xff;
  if (i < 0) return undefined;
  out[i]--;
  out.fill(0xff, m.length, m.length + BELOW_PAD);
  return out;
}

/**
 * The boundary at which the remaining work of a range starts, given the next key from
 * `nextKey` (which may be any key, e.g. a zero-padded half byte) and the last key received.
 * It is at most `next` (so nothing unproven is marked done) and after `last`.
 */
export function boundaryBefore(next: Uint8Array, last: Uint8Array): Uint8Array {
  if (isBoundary(next)) return next.slice();
  // next = X ++ b with b > 0: X ++ (b-1) ++ ff ++ 00 lies just below it.
  const near = new Uint8Array(next.length + 2);
  near.set(next);
  near[next.length - 1]--;
  near[next.length] = 0xff;
  const afterLast = successor(last);
  return compareBytes(near, afterLast) > 0 ? near : afterLast;
}

/** Position of a key in the key space as a fraction in [0, 1) (first 6 bytes). */
export function keyFraction(key: Uint8Array | undefined): number {
  if (key === undefined) return 1;
  let f = 0;
  let scale = 1 / 256;
  for (let i = 0; i < key.length && i < 6; i++) {
    f += key[i] * scale;
    scale /= 256;
  }
  return f;
}

/** The fraction of the key space a range covers. */
export function rangeWidth(r: KeyRange): number {
  return Math.max(0, keyFraction(r.end) - keyFraction(r.start));
}
