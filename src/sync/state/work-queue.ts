/**
 * The work queue of the state sync (docs/sync.md): the synced key space as a partition
 * of non-overlapping work items, each a key range tagged with the revision of its local keys
 * (undefined: never fetched, fetch with range proofs; a root: fetch a change proof from it).
 * An item at the target is done. Pure: time comes in as `now` (ms).
 *
 * - Split at the midpoint while requests in flight plus items queued are fewer than twice the
 *   concurrency, widest item first, and (beyond upstream) only items wide enough to hold more
 *   than one answer's worth of keys at the density seen so far: splitting sparse ranges only
 *   multiplies requests and proof overhead.
 * - Priorities: retry > stale (made stale by a target change) > left half > right half, then
 *   the lowest start, so completed ranges grow contiguously.
 * - Done neighbours (same root, nothing in flight) merge.
 * - `next` leaves whole the items its `keepWhole` names: the engine's (engine.ts `#keepWhole`)
 *   are the canonical plan's parts (plan.ts), items narrower than one answer at the density
 *   answers of their kind showed, and change-proof work before any change proof showed one.
 */
import { compareBytes, equalBytes } from '../../core/bytes.ts';
import { backoffDelay } from '../peers.ts';
import type { Segment } from './stored-progress.ts';
import { compareEnd, isEmptyRange, rangeWidth, splitPoint } from './ranges.ts';

export const RIGHT = 0;
export const LEFT = 1;
export const STALE = 2;
export const RETRY = 3;
export type Priority = typeof RIGHT | typeof LEFT | typeof STALE | typeof RETRY;

export interface WorkItem extends Segment {
  priority: Priority;
  /** The request fetching this item, if one is in flight. */
  requestId: number | undefined;
  /** Failed or invalid attempts since the item last made progress. */
  attempts: number;
  /** Not to be requested before this time. */
  notBefore: number;
}

const isDone = (item: Segment, target: Uint8Array): boolean => item.root !== undefined && equalBytes(item.root, target);

export class WorkQueue {
  #items: WorkItem[];

  /** `segments`: sorted and non-overlapping. */
  constructor(segments: readonly Segment[], priority: (s: Segment) => Priority = () => LEFT) {
    this.#items = [];
    for (const s of segments) {
      if (isEmptyRange(s)) continue;
      const last = this.#items[this.#items.length - 1];
      if (last && (last.end === undefined || compareBytes(last.end, s.start) > 0)) throw new RangeError('work items overlap');
      this.#items.push({ start: s.start, end: s.end, root: s.root, priority: priority(s), requestId: undefined, attempts: 0, notBefore: 0 });
    }
  }

  get items(): readonly Readonly<WorkItem>[] {
    return this.#items;
  }

  segments(): Segment[] {
    return this.#items.map((i) => ({ start: i.start, end: i.end, root: i.root }));
  }

  get inFlight(): number {
    let n = 0;
    for (const i of this.#items) if (i.requestId !== undefined) n++;
    return n;
  }

  /** Items that still need a request and have none in flight. */
  queued(target: Uint8Array): number {
    let n = 0;
    for (const i of this.#items) if (i.requestId === undefined && !isDone(i, target)) n++;
    return n;
  }

  /** Nothing queued and nothing in flight. */
  isComplete(target: Uint8Array): boolean {
    return this.#items.every((i) => i.requestId === undefined && isDone(i, target));
  }

  /** Fraction of the key space done at `target`. */
  doneFraction(target: Uint8Array): number {
    let f = 0;
    for (const i of this.#items) if (isDone(i, target) && i.requestId === undefined) f += rangeWidth(i);
    return f;
  }

  doneCount(target: Uint8Array): number {
    let n = 0;
    for (const i of this.#items) if (isDone(i, target) && i.requestId === undefined) n++;
    return n;
  }

  byRequest(requestId: number): Readonly<WorkItem> | undefined {
    return this.#items.find((i) => i.requestId === requestId);
  }

  /** After a target change: items that were done are now stale work. */
  retarget(previous: Uint8Array, target: Uint8Array): void {
    for (const i of this.#items) {
      if (i.requestId === undefined && isDone(i, previous) && !isDone(i, target)) {
        i.priority = STALE;
        i.attempts = 0;
        i.notBefore = 0;
      }
    }
    this.mergeDone(target);
  }

  /**
   * The next item to request at `now`, split first while the queue is short; undefined when
   * none is ready; items for which `keepWhole` holds are not split (the engine's rule: the
   * plan's parts, items one answer likely covers). The caller must `assign` it.
   */
  next(target: Uint8Array, now: number, concurrency: number, keepWhole?: (item: Readonly<WorkItem>) => boolean): Readonly<WorkItem> | undefined {
    while (this.inFlight + this.queued(target) < 2 * concurrency) {
      if (!this.#splitWidest(target, now, keepWhole)) break;
    }
    let best: WorkItem | undefined;
    for (const i of this.#items) {
      if (i.requestId !== undefined || isDone(i, target) || i.notBefore > now) continue;
      if (!best || i.priority > best.priority) best = i;
    }
    return best;
  }

  /** Whether some item could be requested at `now`. */
  hasReady(target: Uint8Array, now: number): boolean {
    return this.#items.some((i) => i.requestId === undefined && !isDone(i, target) && i.notBefore <= now);
  }

  /** When the earliest item in backoff becomes ready (undefined: none waits). */
  nextReady(target: Uint8Array, now: number): number | undefined {
    let at: number | undefined;
    for (const i of this.#items) {
      if (i.requestId !== undefined || isDone(i, target) || i.notBefore <= now) continue;
      if (at === undefined || i.notBefore < at) at = i.notBefore;
    }
    return at;
  }

  #splitWidest(target: Uint8Array, now: number, keepWhole?: (item: Readonly<WorkItem>) => boolean): boolean {
    const candidates = this.#items
      .map((item, index) => ({ item, index }))
      .filter(({ item }) => item.requestId === undefined && !isDone(item, target) && item.notBefore <= now && !keepWhole?.(item))
      .sort((a, b) => rangeWidth(b.item) - rangeWidth(a.item) || a.index - b.index);
    for (const { item, index } of candidates) {
      const mid = splitPoint(item);
      if (!mid) continue;
      const left: WorkItem = { ...item, end: mid, priority: item.priority > LEFT ? item.priority : LEFT };
      const right: WorkItem = { ...item, start: mid, priority: item.priority >= STALE ? item.priority : RIGHT };
      this.#items.splice(index, 1, left, right);
      return true;
    }
    return false;
  }

  assign(item: Readonly<WorkItem>, requestId: number): void {
    const i = this.#find(item);
    if (i.requestId !== undefined) throw new Error('work item already in flight');
    i.requestId = requestId;
  }

  /** The request ended without progress; with `failed`, the item is retried with backoff. */
  release(requestId: number, now: number, failed: boolean): void {
    const i = this.#items.find((x) => x.requestId === requestId);
    if (!i) return;
    i.requestId = undefined;
    if (failed) {
      i.attempts++;
      i.priority = RETRY;
      i.notBefore = now + backoffDelay(i.attempts - 1);
    }
  }

  /**
   * The response to `requestId` was applied: `[start, resume)` (all of it without `resume`) is
   * now at `root`; the rest stays at its old revision, queued with the same priority.
   */
  complete(requestId: number, root: Uint8Array, resume: Uint8Array | undefined, target: Uint8Array): void {
    const index = this.#items.findIndex((x) => x.requestId === requestId);
    if (index < 0) throw new Error(`no work item for request ${requestId}`);
    const item = this.#items[index];
    const inside = resume !== undefined && compareBytes(resume, item.start) > 0 && compareEnd(resume, item.end) < 0;
    if (resume !== undefined && !inside) throw new RangeError('resume point outside the work item');
    const done: WorkItem = { ...item, end: inside ? resume : item.end, root, requestId: undefined, attempts: 0, notBefore: 0 };
    const parts = [done];
    if (inside) parts.push({ ...item, start: resume, requestId: undefined, attempts: 0, notBefore: 0 });
    this.#items.splice(index, 1, ...parts);
    this.mergeDone(target);
  }

  /** Merges adjacent done items at `target` with nothing in flight. */
  mergeDone(target: Uint8Array): void {
    const out: WorkItem[] = [];
    for (const i of this.#items) {
      const last = out[out.length - 1];
      if (
        last &&
        last.requestId === undefined &&
        i.requestId === undefined &&
        isDone(last, target) &&
        isDone(i, target) &&
        last.end !== undefined &&
        equalBytes(last.end, i.start)
      ) {
        last.end = i.end;
      } else out.push(i);
    }
    this.#items = out;
  }

  #find(item: Readonly<WorkItem>): WorkItem {
    const i = this.#items.find((x) => x === item || (equalBytes(x.start, item.start) && compareEnd(x.end, item.end) === 0));
    if (!i) throw new Error('unknown work item');
    return i;
  }
}
