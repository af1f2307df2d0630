/**
 * Pure page-layout rules of the packed store: which page holds a key, how a batch is
 * normalised, merged into a page's entries, and cut into page-sized pieces. No I/O: the store
 * (packed-store.ts) applies these inside one IndexedDB transaction.
 *
 * Pages partition the key space by their fence (lowest key a page may hold): page i holds
 * [fence_i, fence_i+1). The first page's fence is the empty key, so every key has a page.
 */
import { compareBytes } from '../../core/bytes.ts';
import type { BatchOp } from '../../core/store.ts';
import { entrySize, type Entry, pageSize } from './page.ts';

/** Index of the page whose range holds `key`: the last fence <= key. `fences[0]` is empty. */
export function pageIndexOf(fences: readonly { fence: Uint8Array }[], key: Uint8Array): number {
  let lo = 0;
  let hi = fences.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(fences[mid].fence, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * Sorts a batch by key and keeps only the last operation on each key (a batch applies in
 * order, so a later op on the same key wins). Throws `TypeError` on malformed ops.
 */
export function normalizeOps(ops: readonly BatchOp[]): BatchOp[] {
  if (!Array.isArray(ops)) throw new TypeError(`expected an array of ops, got ${typeof ops}`);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (!(op?.key instanceof Uint8Array)) throw new TypeError(`op ${i}: expected Uint8Array key`);
    if (op.type === 'put') {
      if (!(op.value instanceof Uint8Array)) throw new TypeError(`op ${i}: expected Uint8Array value`);
    } else if (op.type !== 'del') throw new TypeError(`op ${i}: expected type "put" or "del", got ${String((op as { type: unknown }).type)}`);
  }
  const sorted = ops.slice().sort((a, b) => compareBytes(a.key, b.key)); // stable: batch order kept among equal keys
  const out: BatchOp[] = [];
  for (const op of sorted) {
    const last = out.length - 1;
    if (last >= 0 && compareBytes(out[last].key, op.key) === 0) out[last] = op;
    else out.push(op);
  }
  return out;
}

/** Applies sorted, deduplicated ops to a page's sorted entries; returns the new sorted entries. */
export function mergeEntries(entries: readonly Entry[], ops: readonly BatchOp[]): Entry[] {
  const out: Entry[] = [];
  let i = 0;
  for (const op of ops) {
    while (i < entries.length && compareBytes(entries[i][0], op.key) < 0) out.push(entries[i++]);
    if (i < entries.length && compareBytes(entries[i][0], op.key) === 0) i++; // replaced or deleted
    if (op.type === 'put') out.push([op.key, op.value]);
  }
  while (i < entries.length) out.push(entries[i++]);
  return out;
}

/** Encoded size of a page holding these entries. */
export function entriesSize(entries: readonly Entry[]): number {
  let payload = 0;
  for (const [k, v] of entries) payload += k.length + v.length;
  return pageSize(entries.length, payload);
}

/**
 * Cuts sorted entries into the fewest pages of at most `pageBytes` each, balanced so that a
 * slightly overfull page splits into halves rather than a full page and a sliver (a sliver
 * would be merged back on the next write). An entry larger than `pageBytes` gets a page alone.
 * Returns one empty piece for no entries.
 */
export function splitEntries(entries: readonly Entry[], pageBytes: number): Entry[][] {
  const total = entriesSize(entries);
  if (total <= pageBytes) return [entries.slice()];
  const pieces = Math.ceil(total / pageBytes);
  const target = total / pieces;
  const out: Entry[][] = [];
  let piece: Entry[] = [];
  let size = pageSize(0, 0);
  for (const e of entries) {
    const add = entrySize(e[0], e[1]);
    if (piece.length > 0 && (size + add > pageBytes || size + add / 2 > target)) {
      out.push(piece);
      piece = [];
      size = pageSize(0, 0);
    }
    piece.push(e);
    size += add;
  }
  out.push(piece);
  return out;
}

/** A page below this size is merged with a neighbour when the two fit in one page. */
export function minPageBytes(pageBytes: number): number {
  return Math.floor(pageBytes / 4);
}
