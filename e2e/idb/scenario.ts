/**
 * Seeded workloads for the IndexedDB store tests, shared by the page (which keeps the
 * reference model) and the worker (which replays a stream of batches for the crash test).
 */
import type { BatchOp, IterateOptions } from '../../src/core/store.ts';
import { seededRandom } from '../../src/sync/state/testing.ts';

/** A seeded generator (mulberry32), so every run replays the same sequence. */
export const rng = seededRandom;

export type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

// A small alphabet with the edge bytes, so keys share prefixes and one is often a prefix of another.
const ALPHABET = [0x00, 0x01, 0x10, 0x7f, 0x80, 0xfe, 0xff];

export function randomKey(r: Rand): Uint8Array {
  const k = new Uint8Array(1 + int(r, 4));
  for (let i = 0; i < k.length; i++) k[i] = pick(r, ALPHABET);
  return k;
}

export function randomBytes(r: Rand, n: number): Uint8Array<ArrayBuffer> {
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = int(r, 256);
  return v;
}

/** A batch of puts, overwrites and deletes; `deleteShare` of the ops are deletes. */
export function randomBatch(r: Rand, deleteShare: number, maxOps = 60, maxValue = 120): BatchOp[] {
  const ops: BatchOp[] = [];
  const n = 1 + int(r, maxOps);
  for (let i = 0; i < n; i++) {
    // now and then the same key twice in one batch: the later op must win
    const key = i > 0 && r() < 0.05 ? ops[int(r, ops.length)].key : randomKey(r);
    if (r() < deleteShare) ops.push({ type: 'del', key });
    else ops.push({ type: 'put', key, value: randomBytes(r, int(r, maxValue + 1)) });
  }
  return ops;
}

/** Iterate options with every bound kind, both directions and a spread of limits. */
export function randomRange(r: Rand): IterateOptions {
  const o: IterateOptions = {};
  const lower = int(r, 4); // none, gte, gt, both
  if (lower === 1 || lower === 3) o.gte = randomKey(r);
  if (lower === 2 || lower === 3) o.gt = randomKey(r);
  const upper = int(r, 4); // none, lte, lt, both
  if (upper === 1 || upper === 3) o.lte = randomKey(r);
  if (upper === 2 || upper === 3) o.lt = randomKey(r);
  if (r() < 0.5) o.reverse = true;
  const limit = pick(r, [undefined, undefined, 0, 1, 3, 17, 200]);
  if (limit !== undefined) o.limit = limit;
  return o;
}

/** The progress key the crash stream writes in the same batch as its data. */
export const PROGRESS_KEY = new TextEncoder().encode('\xffprogress');

/** Batch `i` of the crash stream: data plus the progress record saying "batch i is done". */
export function streamBatch(seed: number, i: number): BatchOp[] {
  const r = rng(seed * 100_003 + i);
  const ops = randomBatch(r, 0.2, 400, 300);
  ops.push({ type: 'put', key: PROGRESS_KEY, value: new Uint8Array([i >> 8, i & 255]) });
  return ops;
}
