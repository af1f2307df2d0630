import { describe, expect, it } from 'vitest';
import { encodeRangeProofRequest } from '../protocol/codec.ts';
import { canonicalParts, canonicalRangeRequest, requestKey } from '../sync/state/plan.ts';
import { NodeMetrics } from './metrics.ts';
import { announcedCheckpoints, DEFAULT_PROOF_CACHE_BYTES, ENTRY_OVERHEAD_BYTES, ProofCache } from './proof-cache.ts';
import { proofCacheOf } from './proof-cache-wiring.ts';

const root = new Uint8Array(32).fill(7);
const requests = canonicalParts().map((p) => canonicalRangeRequest(root, p.start, p.end));
/** Requests of the inner parts (both bounds given): all the same length. */
const entry = (i: number) => {
  const req = requests[i + 1];
  const bytes = encodeRangeProofRequest(req);
  return { key: requestKey(req), bytes };
};
const answer = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const sizeOf = (i: number, answerBytes: number) => answerBytes + entry(i).bytes.length + entry(i).key.length + ENTRY_OVERHEAD_BYTES;

describe('ProofCache', () => {
  it('keeps an answer under its request and serves it back', () => {
    const cache = new ProofCache({ maxBytes: 1 << 20 });
    const { key, bytes } = entry(0);
    const a = answer(1000);
    expect(cache.get(key, bytes)).toBeUndefined();
    cache.set(key, bytes, a);
    expect(cache.get(key, bytes)).toBe(a);
    expect(cache.bytes).toBe(sizeOf(0, 1000));
  });

  it('never serves an answer for different request bytes under the same key', () => {
    const cache = new ProofCache({ maxBytes: 1 << 20 });
    const { key, bytes } = entry(0);
    cache.set(key, bytes, answer(10));
    expect(cache.get(key, entry(1).bytes)).toBeUndefined();
    expect(cache.get(entry(1).key, bytes)).toBeUndefined();
  });

  it('stays within its byte bound, evicting the least recently used first', () => {
    const evicted: number[] = [];
    let gauge = -1;
    const per = sizeOf(0, 1000);
    const cache = new ProofCache({ maxBytes: per * 3 + 10, onEvict: () => evicted.push(1), onBytes: (b) => (gauge = b) });
    for (const i of [0, 1, 2]) cache.set(entry(i).key, entry(i).bytes, answer(1000, i));
    expect(cache.size).toBe(3);
    cache.get(entry(0).key, entry(0).bytes); // 0 is now the most recently used: 1 leaves first
    cache.set(entry(3).key, entry(3).bytes, answer(1000, 3));
    expect(cache.get(entry(1).key, entry(1).bytes)).toBeUndefined();
    expect(cache.get(entry(0).key, entry(0).bytes)?.[0]).toBe(0);
    expect(cache.get(entry(2).key, entry(2).bytes)?.[0]).toBe(2);
    expect(cache.get(entry(3).key, entry(3).bytes)?.[0]).toBe(3);
    expect(evicted.length).toBe(1);
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    expect(gauge).toBe(cache.bytes);
    for (let i = 4; i < 60; i++) cache.set(entry(i).key, entry(i).bytes, answer(500 + i * 13, i));
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    expect(cache.get(entry(59).key, entry(59).bytes)?.[0]).toBe(59);
  });

  it('does not keep an answer larger than the whole bound, nor evict for it', () => {
    const cache = new ProofCache({ maxBytes: 4096 });
    cache.set(entry(0).key, entry(0).bytes, answer(100));
    cache.set(entry(1).key, entry(1).bytes, answer(5000));
    expect(cache.get(entry(1).key, entry(1).bytes)).toBeUndefined();
    expect(cache.get(entry(0).key, entry(0).bytes)).toBeDefined();
  });

  it('replacing an entry counts its bytes once', () => {
    const cache = new ProofCache({ maxBytes: 1 << 20 });
    cache.set(entry(0).key, entry(0).bytes, answer(100));
    cache.set(entry(0).key, entry(0).bytes, answer(300));
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(sizeOf(0, 300));
  });

  it('with a bound of 0 keeps nothing', () => {
    const cache = new ProofCache({ maxBytes: 0 });
    cache.set(entry(0).key, entry(0).bytes, answer(1));
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
    expect(() => new ProofCache({ maxBytes: -1 })).toThrow(RangeError);
  });

  it('getOrBuild builds once on a miss, then hits; concurrent misses share one build', async () => {
    const outcomes: string[] = [];
    const cache = new ProofCache({ maxBytes: 1 << 20, onLookup: (o) => outcomes.push(o) });
    const { key, bytes } = entry(5);
    let builds = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const build = async () => {
      builds++;
      await gate;
      return answer(64, 9);
    };
    const together = [cache.getOrBuild(key, bytes, build), cache.getOrBuild(key, bytes, build), cache.getOrBuild(key, bytes, build)];
    release();
    const got = await Promise.all(together);
    expect(builds).toBe(1);
    expect(got[1]).toBe(got[0]);
    expect(await cache.getOrBuild(key, bytes, build)).toBe(got[0]);
    expect(builds).toBe(1);
    expect(outcomes).toEqual(['miss', 'hit', 'hit', 'hit']);
  });

  it('getOrBuild keeps no failed answer; a caller that waited on the failed build builds its own', async () => {
    const cache = new ProofCache({ maxBytes: 1 << 20 });
    const { key, bytes } = entry(6);
    let fail!: (e: Error) => void;
    const first = cache.getOrBuild(key, bytes, () => new Promise<Uint8Array>((_, reject) => (fail = reject)));
    const second = cache.getOrBuild(key, bytes, async () => answer(8, 2));
    fail(new Error('peer went away'));
    await expect(first).rejects.toThrow('peer went away');
    expect((await second)[0]).toBe(2);
    expect(cache.get(key, bytes)?.[0]).toBe(2);
    await expect(cache.getOrBuild(entry(7).key, entry(7).bytes, async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(cache.get(entry(7).key, entry(7).bytes)).toBeUndefined();
  });
});

describe('announcedCheckpoints', () => {
  it('accepts the newest two announced checkpoint roots and nothing else', () => {
    const r = (b: number) => new Uint8Array(32).fill(b);
    let ann: { checkpoint?: { root: Uint8Array } } | undefined;
    const accepts = announcedCheckpoints(() => ann);
    expect(accepts(r(1))).toBe(false);
    ann = {};
    expect(accepts(r(1))).toBe(false);
    ann = { checkpoint: { root: r(1) } };
    expect(accepts(r(1))).toBe(true);
    expect(accepts(r(2))).toBe(false);
    ann = { checkpoint: { root: r(2) } };
    expect(accepts(r(2))).toBe(true);
    expect(accepts(r(1))).toBe(true);
    ann = { checkpoint: { root: r(3) } };
    expect(accepts(r(3))).toBe(true);
    expect(accepts(r(2))).toBe(true);
    expect(accepts(r(1))).toBe(false);
  });
});

describe('proofCacheOf (the node wiring)', () => {
  const r = (b: number) => new Uint8Array(32).fill(b);
  it('keeps answers at announced checkpoints, at any root only when asked, never while misbehaving, and counts', async () => {
    const metrics = new NodeMetrics({ defaultMetrics: false });
    let misbehaving = false;
    const node = { announcement: () => ({ checkpoint: { root: r(1) } }), misbehaving: () => misbehaving };
    const served = proofCacheOf(undefined, metrics, node)!;
    expect(served.cache.maxBytes).toBe(DEFAULT_PROOF_CACHE_BYTES);
    expect(served.isCheckpointRoot(r(1))).toBe(true);
    expect(served.isCheckpointRoot(r(2))).toBe(false);
    misbehaving = true;
    expect(served.isCheckpointRoot(r(1))).toBe(false);
    misbehaving = false;
    expect(proofCacheOf({ anyRoot: true }, metrics, node)!.isCheckpointRoot(r(2))).toBe(true);
    expect(proofCacheOf({ maxBytes: 0 }, metrics, node)).toBeUndefined();

    const { key, bytes } = entry(0);
    await served.cache.getOrBuild(key, bytes, async () => answer(100));
    await served.cache.getOrBuild(key, bytes, async () => answer(100));
    expect((await metrics.proofCacheHits.get()).values[0].value).toBe(1);
    expect((await metrics.proofCacheMisses.get()).values[0].value).toBe(1);
    expect((await metrics.proofCacheBytes.get()).values[0].value).toBe(served.cache.bytes);
  });
});

describe('ProofCache memory', () => {
  it('holds a copy of an answer that is a view into a larger buffer, so it holds what it counts', () => {
    const cache = new ProofCache({ maxBytes: 1 << 20 });
    const big = new Uint8Array(100_000);
    const view = big.subarray(10, 110);
    cache.set(entry(0).key, entry(0).bytes, view);
    const kept = cache.get(entry(0).key, entry(0).bytes)!;
    expect(kept.buffer.byteLength).toBe(100);
    expect(cache.bytes).toBe(sizeOf(0, 100));
  });
});
