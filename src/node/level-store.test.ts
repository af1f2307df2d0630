import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IterateOptions, KVStore } from '../core/store.ts';
import { MemoryStore, readRange } from '../core/store.ts';
import { LevelStore, PrefixedStore, prefixEnd } from './level-store.ts';

const b = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

async function keys(store: KVStore, o: IterateOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of store.iterate(o)) out.push(hex(k));
  return out;
}

let dir: string;
let store: LevelStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'level-store-'));
  store = await LevelStore.open(join(dir, 'db'));
});
afterEach(async () => {
  if (store.status === 'open') await store.close();
  await rm(dir, { recursive: true, force: true });
});

// keys chosen to catch string-vs-byte ordering mistakes (0x80+ bytes, prefixes of each other)
const KEYS = [b(), b(0), b(0, 0), b(1), b(1, 0xff), b(0x7f), b(0x80), b(0xff), b(0xff, 0xff)];
async function fill(s: KVStore): Promise<void> {
  await s.write([...KEYS].reverse().map((k, i) => ({ type: 'put' as const, key: k, value: b(i) })));
}

describe('LevelStore', () => {
  it('get returns values and undefined for missing keys, binary-safe', async () => {
    await store.write([{ type: 'put', key: b(0, 1, 0xff), value: b(0, 0, 0) }]);
    expect(await store.get(b(0, 1, 0xff))).toEqual(b(0, 0, 0));
    expect(await store.get(b(0, 1))).toBeUndefined();
    await store.write([{ type: 'put', key: b(9), value: b() }]);
    expect(await store.get(b(9))).toEqual(b());
  });

  const cases: [string, IterateOptions, string[]][] = [
    ['all, byte order', {}, ['', '00', '0000', '01', '01ff', '7f', '80', 'ff', 'ffff']],
    ['gte/lt', { gte: b(1), lt: b(0x80) }, ['01', '01ff', '7f']],
    ['gt/lte', { gt: b(1), lte: b(0x80) }, ['01ff', '7f', '80']],
    ['reverse', { reverse: true, gte: b(0x7f) }, ['ffff', 'ff', '80', '7f']],
    ['limit', { limit: 3 }, ['', '00', '0000']],
    ['reverse + limit', { reverse: true, limit: 2 }, ['ffff', 'ff']],
    ['empty range', { gt: b(0xff, 0xff) }, []],
  ];
  for (const [name, o, want] of cases) {
    it(`iterate: ${name} (matches MemoryStore)`, async () => {
      await fill(store);
      const mem = new MemoryStore();
      await fill(mem);
      expect(await keys(store, o)).toEqual(want);
      expect(await keys(mem, o)).toEqual(want);
    });
  }

  const rangeCases: [string, IterateOptions & { limit: number }, string[]][] = [
    ['all', { limit: 100 }, ['', '00', '0000', '01', '01ff', '7f', '80', 'ff', 'ffff']],
    ['gte/lt', { gte: b(1), lt: b(0x80), limit: 100 }, ['01', '01ff', '7f']],
    ['gt/lte + limit', { gt: b(1), lte: b(0x80), limit: 2 }, ['01ff', '7f']],
    ['limit 0', { limit: 0 }, []],
    ['empty range', { gt: b(0xff, 0xff), limit: 5 }, []],
  ];
  for (const [name, o, want] of rangeCases) {
    it(`range: ${name} (matches iterate and MemoryStore), also under a prefix`, async () => {
      await fill(store);
      const mem = new MemoryStore();
      await fill(mem);
      expect((await store.range(o)).map(([k]) => hex(k))).toEqual(want);
      expect((await readRange(mem, o)).map(([k]) => hex(k))).toEqual(want);
      const view = store.prefix(b(0x42));
      await fill(view);
      expect((await readRange(view, o)).map(([k]) => hex(k))).toEqual(want);
    });
  }

  it('range reads past the byte budget of one LevelDB round trip, up to the limit', async () => {
    const ops = Array.from({ length: 3000 }, (_, i) => ({ type: 'put' as const, key: b(i >> 8, i & 0xff), value: new Uint8Array(1000).fill(i & 0xff) }));
    await store.write(ops);
    const got = await store.range({ gte: b(0, 5), limit: 2500 });
    expect(got).toHaveLength(2500);
    expect(hex(got[0][0])).toBe('0005');
    expect(hex(got[2499][0])).toBe(hex(b(2504 >> 8, 2504 & 0xff)));
    expect(got[2499][1][0]).toBe(2504 & 0xff);
  });

  it('iterates past the internal batch size', async () => {
    const ops = Array.from({ length: 1000 }, (_, i) => ({ type: 'put' as const, key: b(i >> 8, i & 0xff), value: b(1) }));
    await store.write(ops);
    expect((await keys(store, {})).length).toBe(1000);
    expect((await keys(store, { reverse: true, limit: 600 }))[599]).toBe('0190');
  });

  it('write is atomic: a failing batch applies nothing', async () => {
    await store.write([{ type: 'put', key: b(1), value: b(1) }]);
    const bad = [
      { type: 'put' as const, key: b(2), value: b(2) },
      { type: 'del' as const, key: b(1) },
      { type: 'put' as const, key: null as unknown as Uint8Array, value: b(3) },
    ];
    await expect(store.write(bad)).rejects.toThrow();
    expect(await store.get(b(1))).toEqual(b(1));
    expect(await store.get(b(2))).toBeUndefined();
  });

  it('put and del in one batch', async () => {
    await fill(store);
    await store.write([
      { type: 'del', key: b(0x80) },
      { type: 'put', key: b(0x80, 1), value: b(5) },
    ]);
    expect(await keys(store, { gte: b(0x7f), lt: b(0xff) })).toEqual(['7f', '8001']);
  });

  it('persists across close and reopen', async () => {
    await fill(store);
    await store.close();
    store = await LevelStore.open(join(dir, 'db'));
    expect(await keys(store, {})).toHaveLength(KEYS.length);
    expect(await store.get(b(0xff, 0xff))).toEqual(b(0));
  });
});

describe('prefix views', () => {
  it('prefixEnd', () => {
    expect(prefixEnd(b(1, 2))).toEqual(b(1, 3));
    expect(prefixEnd(b(1, 0xff))).toEqual(b(2));
    expect(prefixEnd(b(0xff, 0xff))).toBeUndefined();
    expect(prefixEnd(b())).toBeUndefined();
  });

  for (const p of [b(1), b(0xff), b(0xff, 0xff), b(0, 0)]) {
    it(`prefix ${hex(p)}: isolated, bounded, stripped, nested`, async () => {
      await fill(store); // neighbours, some of them inside the view's range
      const mirror = new MemoryStore();
      await fill(mirror);
      const view = store.prefix(p);
      await fill(view);
      await fill(new PrefixedStore(mirror, p));
      expect(await keys(view, {})).toEqual(['', '00', '0000', '01', '01ff', '7f', '80', 'ff', 'ffff']);
      expect(await keys(view, { gt: b(1), lte: b(0x80), reverse: true })).toEqual(['80', '7f', '01ff']);
      expect(await view.get(b(0x7f))).toEqual(b(3));
      const inner = (view as LevelStore).prefix(b(1));
      expect(await keys(inner, {})).toEqual(['', 'ff']);
      await view.write([{ type: 'del', key: b() }]);
      await new PrefixedStore(mirror, p).write([{ type: 'del', key: b() }]);
      expect(await view.get(b())).toBeUndefined();
      expect(await keys(store, {})).toEqual(await keys(mirror, {}));
    });
  }
});
