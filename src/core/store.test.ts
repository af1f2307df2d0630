import { describe, expect, it } from 'vitest';
import { MemoryStore } from './store.ts';

describe('MemoryStore bounds', () => {
  it('applies the stricter of paired bounds, and every single bound', () => {
    const s = new MemoryStore();
    s.writeSync([1, 2, 3, 4, 5].map((i) => ({ type: 'put' as const, key: new Uint8Array([i]), value: new Uint8Array([i]) })));
    const keys = (o: Parameters<MemoryStore['iterateSync']>[0]) => [...s.iterateSync(o)].map(([k]) => k[0]);
    const k = (i: number) => new Uint8Array([i]);
    expect(keys({ gte: k(2), gt: k(2) })).toEqual([3, 4, 5]);
    expect(keys({ gte: k(3), gt: k(1) })).toEqual([3, 4, 5]);
    expect(keys({ lte: k(4), lt: k(4) })).toEqual([1, 2, 3]);
    expect(keys({ lte: k(2), lt: k(5) })).toEqual([1, 2]);
    expect(keys({ gt: k(1), lt: k(5), reverse: true, limit: 2 })).toEqual([4, 3]);
    expect(keys({ gte: k(6) })).toEqual([]);
  });
});
