import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NodeCache } from './node-cache.ts';
import { encodeNode } from './node-record.ts';

describe('NodeCache', () => {
  const rec = (i: number) => encodeNode({ path: Uint8Array.of(i & 15, i >> 4), digest: Uint8Array.of(i), children: new Array(16), id: new Uint8Array(32).fill(i) });
  const path = (i: number) => Uint8Array.of(i & 15, i >> 4);
  const key = (i: number) => `k${i}`;

  it('stays within its bytes; the hand evicts entries not read since it last passed, and spares those read', () => {
    const one = NodeCache.cost(path(0), rec(0));
    const cache = new NodeCache(one * 10);
    for (let i = 0; i < 10; i++) cache.set(key(i), path(i), rec(i));
    expect(cache.room).toBe(0);
    // a first eviction pass unmarks all ten (all were just written), then takes the oldest slot
    cache.set(key(10), path(10), rec(10));
    expect(cache.has(key(0))).toBe(false);
    // entries read since are spared; unread ones go, in slot order
    expect(cache.get(key(1))?.id).toEqual(new Uint8Array(32).fill(1));
    cache.set(key(11), path(11), rec(11));
    cache.set(key(12), path(12), rec(12));
    expect(cache.has(key(1))).toBe(true);
    expect(cache.has(key(2))).toBe(false);
    expect(cache.has(key(3))).toBe(false);
    expect(cache.room).toBe(0);
    // a write to a cached key replaces it in place: no eviction
    cache.set(key(5), path(5), rec(50));
    expect(cache.room).toBe(0);
    expect(cache.get(key(5))?.id).toEqual(new Uint8Array(32).fill(50));
    for (let i = 4; i <= 12; i++) if (i !== 5 && cache.has(key(i))) cache.delete(key(i));
    expect(cache.room).toBe(one * 8);
    cache.clear();
    expect(cache.room).toBe(one * 10);
    expect(cache.get(key(1))).toBeUndefined();
  });

  it('NodeCache.whole: set by a scan that lost nothing meanwhile; an eviction, a clear or records written around it end it, a deleted record does not', () => {
    const rec = (i: number) => ({ s: String.fromCharCode(i & 15, i >> 4), path: Uint8Array.of(i & 15, i >> 4), raw: new Uint8Array(100).fill(i) });
    const room = 10 * NodeCache.cost(rec(0).path, rec(0).raw);
    const cache = new NodeCache(room);
    const since = cache.lost;
    for (let i = 0; i < 10; i++) cache.set(rec(i).s, rec(i).path, rec(i).raw);
    cache.markWhole(since);
    expect(cache.whole).toBe(true);
    cache.delete(rec(3).s); // its record is gone from the store too
    expect(cache.whole).toBe(true);
    cache.set(rec(3).s, rec(3).path, rec(3).raw);
    cache.set(rec(3).s, rec(3).path, rec(3).raw); // replaced in place
    expect(cache.whole).toBe(true);
    cache.set(rec(10).s, rec(10).path, rec(10).raw); // no room: one entry is evicted
    expect(cache.whole).toBe(false);
    // a scan during which an entry was lost does not make it whole
    const s2 = cache.lost;
    cache.set(rec(11).s, rec(11).path, rec(11).raw);
    cache.markWhole(s2);
    expect(cache.whole).toBe(false);
    const s3 = cache.lost;
    cache.markWhole(s3);
    expect(cache.whole).toBe(true);
    cache.lose();
    expect(cache.whole).toBe(false);
    cache.markWhole(cache.lost);
    cache.clear();
    expect(cache.whole).toBe(false);
  });

  it('under random use the bytes held never pass the bound and every held entry reads back', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ op: fc.constantFrom('set', 'get', 'delete'), i: fc.integer({ min: 0, max: 60 }) }), { maxLength: 400 }), (ops) => {
        const one = NodeCache.cost(path(0), rec(0));
        const cache = new NodeCache(one * 7 + 3);
        const model = new Map<string, number>();
        for (const { op, i } of ops) {
          if (op === 'set') {
            cache.set(key(i), path(i), rec(i));
            model.set(key(i), i);
          } else if (op === 'delete') {
            cache.delete(key(i));
            model.delete(key(i));
          } else cache.get(key(i));
          expect(cache.room).toBeGreaterThanOrEqual(0);
        }
        let held = 0;
        for (const [k, i] of model) {
          if (!cache.has(k)) continue;
          held++;
          expect(cache.get(k)?.id).toEqual(new Uint8Array(32).fill(i));
        }
        expect(cache.room).toBe(one * 7 + 3 - held * one);
      }),
      { numRuns: 200, seed: 3 },
    );
  });
});
