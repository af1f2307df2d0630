/**
 * Persisted state-sync progress (docs/sync.md; docs/design.md "write a range's data and the
 * progress that describes it in the same transaction").
 *
 * Progress is a partition of the synced key space into segments, each tagged with the revision
 * its local key-values are at: a root (the local keys in the segment are exactly those of the
 * trie at that root) or none (unknown: never fetched). A segment at the target is done; one at
 * an older root is caught up with a change proof; one at none needs range proofs. The engine
 * emits the store operations that move the persisted partition to its new shape, and the driver
 * writes them in the same atomic batch as the trie changes they describe, so a fresh engine on
 * the same store resumes exactly.
 *
 * "Progress" names three things in this code, one each: this stored partition (`StoredProgress`,
 * what a restart resumes from), the engine's snapshot of a running sync (`StateSyncProgress` in
 * engine.ts), and the page's `progress` event built from that snapshot (client/events.ts).
 *
 * Layout (prefix 'p', beside the trie's 'n', 'v', 'm'):
 *   'p' 00           → version 1, target root (32 bytes)
 *   'p' 01 ++ start  → flags (1: has end, 2: has root), [u16 end length, end], [root]
 */
import { compareBytes, concatBytes, equalBytes } from '../../core/bytes.ts';
import type { BatchOp, KVStore } from '../../core/store.ts';
import { compareEnd, type KeyRange } from './ranges.ts';

/** A key range and the revision its local key-values are at (undefined: unknown). */
export interface Segment extends KeyRange {
  root: Uint8Array | undefined;
}

export interface StoredProgress {
  /** The target of the sync that wrote this progress. */
  target: Uint8Array | undefined;
  /** Sorted, non-overlapping. */
  segments: Segment[];
}

const P = 0x70; // 'p'
const META = new Uint8Array([P, 0]);
const SEGMENT = 1;
const VERSION = 1;

const segmentKey = (start: Uint8Array): Uint8Array => concatBytes(new Uint8Array([P, SEGMENT]), start);

export function encodeSegment(s: Segment): Uint8Array {
  const flags = (s.end ? 1 : 0) | (s.root ? 2 : 0);
  const parts: Uint8Array[] = [new Uint8Array([flags])];
  if (s.end) {
    if (s.end.length > 0xffff) throw new RangeError(`segment end of ${s.end.length} bytes is too long`);
    parts.push(new Uint8Array([s.end.length >> 8, s.end.length & 255]), s.end);
  }
  if (s.root) parts.push(s.root);
  return concatBytes(...parts);
}

/** Throws `TypeError` on a malformed record (a corrupted store is not silently resumed). */
export function decodeSegment(start: Uint8Array, b: Uint8Array): Segment {
  const fail = (why: string): never => {
    throw new TypeError(`malformed sync progress record: ${why}`);
  };
  if (b.length < 1) fail('empty');
  const flags = b[0];
  if (flags > 3) fail(`unknown flags ${flags}`);
  let o = 1;
  let end: Uint8Array | undefined;
  if (flags & 1) {
    if (b.length < o + 2) fail('truncated end length');
    const n = (b[o] << 8) | b[o + 1];
    o += 2;
    if (b.length < o + n) fail('truncated end');
    end = b.slice(o, o + n);
    o += n;
  }
  let root: Uint8Array | undefined;
  if (flags & 2) {
    if (b.length < o + 32) fail('truncated root');
    root = b.slice(o, o + 32);
    o += 32;
  }
  if (o !== b.length) fail('trailing bytes');
  return { start, end, root };
}

/** Reads the persisted progress (empty when none was stored). */
export async function loadProgress(store: KVStore): Promise<StoredProgress> {
  const meta = await store.get(META);
  let target: Uint8Array | undefined;
  if (meta) {
    if (meta.length !== 33 || meta[0] !== VERSION) throw new TypeError('malformed sync progress meta record');
    target = meta.slice(1);
  }
  const segments: Segment[] = [];
  for await (const [k, v] of store.iterate({ gte: new Uint8Array([P, SEGMENT]), lt: new Uint8Array([P, SEGMENT + 1]) })) {
    segments.push(decodeSegment(k.slice(2), v));
  }
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1];
    if (prev.end === undefined || compareBytes(prev.end, segments[i].start) > 0) {
      throw new TypeError('malformed sync progress: overlapping segments');
    }
  }
  return { target, segments };
}

/** Merges adjacent segments at the same revision (the persisted form). */
export function canonicalSegments(segments: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const last = out[out.length - 1];
    if (last && last.end !== undefined && equalBytes(last.end, s.start) && equalBytes(last.root, s.root)) last.end = s.end;
    else out.push({ start: s.start, end: s.end, root: s.root });
  }
  return out;
}

function sameSegment(a: Segment, b: Segment): boolean {
  return compareEnd(a.end, b.end) === 0 && equalBytes(a.root, b.root);
}

/**
 * The store operations that replace the persisted `previous` segments by `next` (both sorted
 * and canonical) and record `target`. Unchanged segments cost nothing.
 */
export function progressOps(previous: readonly Segment[], next: readonly Segment[], target: Uint8Array, previousTarget?: Uint8Array): BatchOp[] {
  const ops: BatchOp[] = [];
  if (!previousTarget || !equalBytes(previousTarget, target)) {
    ops.push({ type: 'put', key: META, value: concatBytes(new Uint8Array([VERSION]), target) });
  }
  let i = 0;
  let j = 0;
  while (i < previous.length || j < next.length) {
    const c = i >= previous.length ? 1 : j >= next.length ? -1 : compareBytes(previous[i].start, next[j].start);
    if (c < 0) ops.push({ type: 'del', key: segmentKey(previous[i++].start) });
    else if (c > 0) {
      ops.push({ type: 'put', key: segmentKey(next[j].start), value: encodeSegment(next[j]) });
      j++;
    } else {
      if (!sameSegment(previous[i], next[j])) ops.push({ type: 'put', key: segmentKey(next[j].start), value: encodeSegment(next[j]) });
      i++;
      j++;
    }
  }
  return ops;
}

/** Operations that remove all stored progress (the segments given are what is stored). */
export function clearProgressOps(stored: readonly Segment[]): BatchOp[] {
  return [{ type: 'del', key: META }, ...stored.map((s): BatchOp => ({ type: 'del', key: segmentKey(s.start) }))];
}
