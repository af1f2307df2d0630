/**
 * Range scans of the packed store (packed-store.ts `iterate`): the pages' entries within the
 * bounds, merged with the write log's overlay (which wins; its deletions hide page entries).
 * A scan walks a `Snapshot` (the index and overlay as of its start, plus the pre-write pages
 * of slots replaced since); pages come in through `pageAt`, so the walk runs in Node against
 * in-memory pages (page-scan.test.ts).
 *
 * When another connection commits, `pageAt` moves the snapshot to the new state and returns
 * undefined; both cursors then continue after the last key yielded (each page whole, keys
 * strictly in order, no snapshot across pages).
 */
import { compareBytes } from '../../core/bytes.ts';
import type { IterateOptions } from '../../core/store.ts';
import { pageIndexOf } from './layout.ts';
import type { Page } from './page.ts';
import type { Slot } from './page-index.ts';
import { overlayBound, type OverlayEntry } from './write-log.ts';

/** What one iteration sees. */
export interface Snapshot {
  index: readonly Slot[];
  /** Pre-write contents of slots replaced since the snapshot was taken. */
  readonly pinned: Map<Slot, Page>;
  /** The write log's overlay when the snapshot was taken (immutable). */
  overlay: readonly OverlayEntry[];
}

/** The page `snap` sees at `slot`; undefined when the snapshot moved to a new state (look again). */
export type SnapshotPages = (snap: Snapshot, slot: Slot) => Promise<Page | undefined>;

export interface Bounds {
  lower: Uint8Array | undefined;
  lowerInclusive: boolean;
  upper: Uint8Array | undefined;
  upperInclusive: boolean;
}

/** The scan's bounds; with both bounds given on one side the stricter applies (their intersection). */
export function scanBounds(o: IterateOptions): Bounds {
  const useGt = o.gt !== undefined && (o.gte === undefined || compareBytes(o.gt, o.gte) >= 0);
  const useLt = o.lt !== undefined && (o.lte === undefined || compareBytes(o.lt, o.lte) <= 0);
  return { lower: useGt ? o.gt : o.gte, lowerInclusive: !useGt, upper: useLt ? o.lt : o.lte, upperInclusive: !useLt };
}

export function inBounds(b: Bounds, k: Uint8Array): boolean {
  if (b.lower) {
    const c = compareBytes(k, b.lower);
    if (c < 0 || (c === 0 && !b.lowerInclusive)) return false;
  }
  if (b.upper) {
    const c = compareBytes(k, b.upper);
    if (c > 0 || (c === 0 && !b.upperInclusive)) return false;
  }
  return true;
}

/**
 * The snapshot's page entries merged with its overlay, within `b`, in scan order, at most
 * `limit` of them (a limit of 0 or less yields nothing, as MemoryStore). Keys and values are
 * copies.
 */
export async function* scanSnapshot(snap: Snapshot, b: Bounds, reverse: boolean, limit: number, pageAt: SnapshotPages): AsyncGenerator<[Uint8Array, Uint8Array]> {
  if (!(limit > 0)) return;
  const pages = scanPages(snap, b, reverse, pageAt);
  // where the overlay cursor starts, or continues after `last` (a new overlay after a reload)
  const startAt = (ov: readonly OverlayEntry[], last: Uint8Array | undefined): number => {
    if (reverse) {
      if (last) return overlayBound(ov, last, false) - 1;
      return (b.upper ? overlayBound(ov, b.upper, b.upperInclusive) : ov.length) - 1;
    }
    if (last) return overlayBound(ov, last, true);
    return b.lower ? overlayBound(ov, b.lower, !b.lowerInclusive) : 0;
  };
  try {
    let ov = snap.overlay;
    let j = startAt(ov, undefined);
    let last: Uint8Array | undefined;
    let n = 0;
    let p = await pages.next();
    for (;;) {
      // after another connection's commit the page scan moved to the new state: follow it
      while (!p.done && last && (reverse ? compareBytes(p.value[0], last) >= 0 : compareBytes(p.value[0], last) <= 0)) p = await pages.next();
      if (snap.overlay !== ov) {
        ov = snap.overlay;
        j = startAt(ov, last);
      }
      const e = j >= 0 && j < ov.length && inBounds(b, ov[j].key) ? ov[j] : undefined;
      if (p.done && !e) return;
      // which comes first in scan order: the page's entry (<0), the overlay's (>0), or one key (0)
      const c = p.done ? 1 : !e ? -1 : reverse ? compareBytes(e.key, p.value[0]) : compareBytes(p.value[0], e.key);
      if (c >= 0) {
        j += reverse ? -1 : 1;
        last = e!.key;
        if (c === 0) p = await pages.next();
        if (e!.value) {
          yield [e!.key.slice(), e!.value.slice()];
          if (++n >= limit) return;
        }
      } else {
        const kv = p.value!;
        last = kv[0];
        p = await pages.next();
        yield kv;
        if (++n >= limit) return;
      }
    }
  } finally {
    await pages.return(undefined);
  }
}

/** Page entries within bounds, in scan order. */
export async function* scanPages(snap: Snapshot, b: Bounds, reverse: boolean, pageAt: SnapshotPages): AsyncGenerator<[Uint8Array, Uint8Array]> {
  const { lower, lowerInclusive, upper, upperInclusive } = b;
  // The scan is a cursor: `pos` is the next position (a key, inclusive or not), so it can
  // continue in a fresh index if another connection's commit forces a reload.
  if (!reverse) {
    let pos = lower;
    let inclusive = lowerInclusive;
    for (;;) {
      const index = snap.index;
      const s = pos ? pageIndexOf(index, pos) : 0;
      const page = await pageAt(snap, index[s]);
      if (!page) continue;
      let i = pos ? (inclusive ? page.lowerBound(pos) : page.upperBound(pos)) : 0;
      for (; i < page.count; i++) {
        if (upper) {
          const c = page.compareAt(i, upper);
          if (c > 0 || (c === 0 && !upperInclusive)) return;
        }
        yield [page.keyAt(i).slice(), page.valueAt(i).slice()];
      }
      const next = index[s + 1];
      if (!next) return;
      if (upper) {
        const c = compareBytes(next.fence, upper);
        if (c > 0 || (c === 0 && !upperInclusive)) return;
      }
      pos = next.fence;
      inclusive = true;
    }
  } else {
    let pos = upper;
    let inclusive = upperInclusive;
    for (;;) {
      const index = snap.index;
      let s = pos ? pageIndexOf(index, pos) : index.length - 1;
      if (pos && !inclusive && compareBytes(index[s].fence, pos) === 0) {
        if (s === 0) return; // nothing sorts below the empty key
        s--;
      }
      const page = await pageAt(snap, index[s]);
      if (!page) continue;
      let i = pos ? (inclusive ? page.upperBound(pos) : page.lowerBound(pos)) - 1 : page.count - 1;
      for (; i >= 0; i--) {
        if (lower) {
          const c = page.compareAt(i, lower);
          if (c < 0 || (c === 0 && !lowerInclusive)) return;
        }
        yield [page.keyAt(i).slice(), page.valueAt(i).slice()];
      }
      // every earlier page holds keys below this fence
      if (s === 0 || (lower && compareBytes(index[s].fence, lower) <= 0)) return;
      pos = index[s].fence;
      inclusive = false;
    }
  }
}
