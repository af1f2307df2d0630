/**
 * The packed store's page index (packed-store.ts): the in-memory list of page fences loaded at
 * open, and the pure decisions a write makes with it: which pages a sorted batch touches, how
 * many pages a compaction chunk covers, and how touched pages are rebuilt (split when they
 * overflow, folded or merged when they shrink). No IndexedDB here: page contents come in
 * through a loader, so every rule runs in Node (page-index.test.ts).
 *
 * Pages partition the key space by fence (layout.ts): slot i holds [fence_i, fence_i+1), and
 * the first fence is the empty key, so every key has a page.
 */
import { compareBytes } from '../../core/bytes.ts';
import type { BatchOp } from '../../core/store.ts';
import { StorageCorrupted } from './errors.ts';
import { entriesSize, mergeEntries, minPageBytes, pageIndexOf, splitEntries } from './layout.ts';
import { type Entry, type Page, PAGE_FORMAT, pageSize } from './page.ts';
import { type BinaryKey, type PageMeta, toBinaryKey } from './schema.ts';

/**
 * A page's place in the index. Replaced (never mutated, but for `dead`) when its page is
 * rewritten, so the page cache and iterators can key on the object itself.
 */
export interface Slot {
  readonly fence: Uint8Array;
  readonly key: BinaryKey;
  /** Set once a commit replaced this page: a read that raced it must look again. */
  dead: boolean;
}

/** A page being built by a write, not yet committed. */
export interface Draft {
  fence: Uint8Array;
  entries: Entry[];
  size: number;
}

export const EMPTY_PAGE_SIZE = pageSize(0, 0);

export const slotOf = (fence: Uint8Array): Slot => ({ fence, key: toBinaryKey(fence), dead: false });
export const isSlot = (x: Slot | Draft): x is Slot => 'dead' in x;

/**
 * The index from the `pages` store's keys (IndexedDB returns them sorted) and its `meta`
 * record. Throws `StorageCorrupted` when the database was not written by this store: no meta,
 * another page format, or no first page (the empty fence every key falls back to).
 */
export function indexFromKeys(dbName: string, keys: readonly BinaryKey[], meta: PageMeta | undefined): Slot[] {
  if (!meta || meta.format !== PAGE_FORMAT) throw new StorageCorrupted(`database "${dbName}" has no page metadata of format ${PAGE_FORMAT}`);
  if (keys.length === 0 || keys[0].byteLength !== 0) throw new StorageCorrupted(`database "${dbName}" has no first page`);
  return keys.map((k) => slotOf(new Uint8Array(k)));
}

/**
 * The target page size a store opened without `pageBytes` takes: the one its database was last
 * written with (`meta.pageBytes`), else `fallback`. Throws `StorageCorrupted` on a stored value
 * no store writes (not an integer of at least 256).
 */
export function storedPageBytes(dbName: string, meta: PageMeta | undefined, fallback: number): number {
  const stored: unknown = meta?.pageBytes;
  if (stored === undefined) return fallback;
  if (typeof stored !== 'number' || !Number.isInteger(stored) || stored < 256) {
    throw new StorageCorrupted(`database "${dbName}" records a page size of ${String(stored)} bytes; a store writes integers >= 256`);
  }
  return stored;
}

/** A run of sorted ops `[from, to)` that falls in the page at `at`. */
export interface PageGroup {
  at: number;
  from: number;
  to: number;
}

/** Groups sorted ops by the page that holds them, in page order. */
export function groupByPage(index: readonly Slot[], ops: readonly BatchOp[]): PageGroup[] {
  const groups: PageGroup[] = [];
  for (let i = 0; i < ops.length; ) {
    const at = pageIndexOf(index, ops[i].key);
    const nextFence = index[at + 1]?.fence;
    let j = i + 1;
    while (j < ops.length && (!nextFence || compareBytes(ops[j].key, nextFence) < 0)) j++;
    groups.push({ at, from: i, to: j });
    i = j;
  }
  return groups;
}

/** Pages that sorted ops touch, counted up to `cap` at most (the count stops there). */
export function pagesTouched(index: readonly Slot[], ops: readonly BatchOp[], cap: number): number {
  let pages = 0;
  let nextFence: Uint8Array | undefined;
  for (let i = 0; i < ops.length && pages < cap; i++) {
    if (i === 0 || (nextFence && compareBytes(ops[i].key, nextFence) >= 0)) {
      pages++;
      nextFence = index[pageIndexOf(index, ops[i].key) + 1]?.fence;
    }
  }
  return pages;
}

/**
 * The end (exclusive) of the next compaction chunk: sorted `keys` from `cursor` on, as far as
 * they fall in at most `maxPages` pages.
 */
export function compactionChunkEnd(index: readonly Slot[], keys: readonly Uint8Array[], cursor: number, maxPages: number): number {
  let pages = 0;
  let page = -1;
  let end = cursor;
  for (; end < keys.length; end++) {
    const at = pageIndexOf(index, keys[end]);
    if (at !== page) {
      if (pages === maxPages) break;
      pages++;
      page = at;
    }
  }
  return end;
}

/** The index after a write, as drafts and the untouched slots between them. */
export interface Rebuilt {
  next: (Slot | Draft)[];
  /** Every slot the write replaces, with its page before the write. */
  replaced: Map<Slot, Page>;
}

/**
 * Rebuilds the pages sorted `ops` touch: each touched page (`loaded[g]` for `groups[g]`) takes
 * its ops, and is split when it overflows `pageBytes` or, emptied, folds into its left
 * neighbour (the first page always stays). A rebuilt page below a quarter of `pageBytes` then
 * merges with a neighbour when the two fit in one page; an untouched neighbour is read through
 * `load`.
 */
export async function rebuildPages(
  index: readonly Slot[],
  ops: readonly BatchOp[],
  groups: readonly PageGroup[],
  loaded: readonly Page[],
  pageBytes: number,
  load: (slot: Slot) => Promise<Page>,
): Promise<Rebuilt> {
  const replaced = new Map<Slot, Page>();
  // 1. Rebuild the touched pages, splitting the ones that overflow.
  const next: (Slot | Draft)[] = [];
  let g = 0;
  for (let s = 0; s < index.length; s++) {
    if (g >= groups.length || groups[g].at !== s) {
      next.push(index[s]);
      continue;
    }
    const slot = index[s];
    const page = loaded[g];
    replaced.set(slot, page);
    const entries = mergeEntries(page.entries(), ops.slice(groups[g].from, groups[g].to));
    g++;
    if (entries.length === 0) {
      // an empty page's range folds into its left neighbour; the first page always stays
      if (s === 0) next.push({ fence: slot.fence, entries, size: EMPTY_PAGE_SIZE });
      continue;
    }
    const pieces = splitEntries(entries, pageBytes);
    for (let p = 0; p < pieces.length; p++) {
      next.push({ fence: p === 0 ? slot.fence : pieces[p][0][0].slice(), entries: pieces[p], size: entriesSize(pieces[p]) });
    }
  }

  // 2. Merge small rebuilt pages into a neighbour when the two fit in one page.
  const asDraft = async (x: Slot | Draft): Promise<{ draft: Draft; slot?: Slot; page?: Page }> => {
    if (!isSlot(x)) return { draft: x };
    const page = await load(x);
    return { draft: { fence: x.fence, entries: page.entries(), size: page.byteLength }, slot: x, page };
  };
  const min = minPageBytes(pageBytes);
  for (let i = 0; i < next.length; i++) {
    const cur = next[i];
    if (isSlot(cur) || cur.size >= min) continue;
    while (cur.size < min && i + 1 < next.length) {
      const right = await asDraft(next[i + 1]);
      if (cur.size + right.draft.size - EMPTY_PAGE_SIZE > pageBytes) break;
      cur.entries = cur.entries.concat(right.draft.entries);
      cur.size += right.draft.size - EMPTY_PAGE_SIZE;
      if (right.slot) replaced.set(right.slot, right.page!);
      next.splice(i + 1, 1);
    }
    if (cur.size < min && i > 0) {
      const left = await asDraft(next[i - 1]);
      if (left.draft.size + cur.size - EMPTY_PAGE_SIZE <= pageBytes) {
        left.draft.entries = left.draft.entries.concat(cur.entries);
        left.draft.size += cur.size - EMPTY_PAGE_SIZE;
        if (left.slot) replaced.set(left.slot, left.page!);
        next.splice(i - 1, 2, left.draft);
        i--;
      }
    }
  }
  return { next, replaced };
}
