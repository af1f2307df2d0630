/**
 * The page index's pure rules (page-index.ts): building the index from stored keys (and
 * refusing what this store never writes), the stored page size, which pages a batch touches,
 * compaction chunks, and rebuilding pages (splits, folds, merges) against in-memory pages.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import type { BatchOp } from '../../core/store.ts';
import { StorageCorrupted } from './errors.ts';
import { mergeEntries, minPageBytes, normalizeOps } from './layout.ts';
import { encodePage, type Entry, Page, PAGE_FORMAT } from './page.ts';
import { compactionChunkEnd, type Draft, groupByPage, indexFromKeys, isSlot, pagesTouched, rebuildPages, type Slot, slotOf, storedPageBytes } from './page-index.ts';
import { type PageMeta, toBinaryKey } from './schema.ts';

const h = fromHex;
const meta = (over: Partial<PageMeta> = {}): PageMeta => ({ format: PAGE_FORMAT, pageBytes: 512, seq: 0, ...over });
const index = (...fences: string[]): Slot[] => fences.map((f) => slotOf(h(f)));
const put = (key: string, value = '00'): BatchOp => ({ type: 'put', key: h(key), value: h(value) });
const del = (key: string): BatchOp => ({ type: 'del', key: h(key) });

describe('indexFromKeys', () => {
  test('one slot per stored key, fences as bytes', () => {
    const slots = indexFromKeys('db', [toBinaryKey(h('')), toBinaryKey(h('10')), toBinaryKey(h('2000'))], meta());
    expect(slots.map((s) => toHex(s.fence))).toEqual(['', '10', '2000']);
    expect(slots.every((s) => !s.dead && s.key.byteLength === s.fence.length)).toBe(true);
  });

  test.each([
    { name: 'no meta record', keys: [''], meta: undefined, message: 'has no page metadata of format 1' },
    { name: 'another page format', keys: [''], meta: meta({ format: 2 }), message: 'has no page metadata of format 1' },
    { name: 'a meta record of another shape', keys: [''], meta: { hello: 'world' } as unknown as PageMeta, message: 'has no page metadata of format 1' },
    { name: 'no pages', keys: [], meta: meta(), message: 'has no first page' },
    { name: 'no page at the empty fence', keys: ['10', '20'], meta: meta(), message: 'has no first page' },
  ])('$name: StorageCorrupted', ({ keys, meta, message }) => {
    const err = (() => {
      try {
        indexFromKeys('db', keys.map((k) => toBinaryKey(h(k))), meta);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StorageCorrupted);
    expect((err as Error).message).toContain(message);
  });
});

describe('storedPageBytes', () => {
  test.each([
    { name: 'no meta yet: the fallback', meta: undefined, out: 32768 },
    { name: 'a database without the field: the fallback', meta: { format: 1, seq: 3 } as unknown as PageMeta, out: 32768 },
    { name: 'the stored size', meta: meta({ pageBytes: 4096 }), out: 4096 },
    { name: 'the smallest size a store writes', meta: meta({ pageBytes: 256 }), out: 256 },
  ])('$name', ({ meta, out }) => expect(storedPageBytes('db', meta, 32768)).toBe(out));

  test.each([
    { name: 'below 256', value: 255 },
    { name: 'zero', value: 0 },
    { name: 'negative', value: -4096 },
    { name: 'fractional', value: 1024.5 },
    { name: 'NaN', value: NaN },
    { name: 'infinite', value: Infinity },
    { name: 'a string', value: '4096' },
    { name: 'null', value: null },
  ])('$name: StorageCorrupted', ({ value }) => {
    expect(() => storedPageBytes('db', meta({ pageBytes: value as number }), 32768)).toThrow(StorageCorrupted);
  });
});

describe('groupByPage', () => {
  const idx = index('', '10', '20');
  test.each([
    { name: 'no ops: no groups', keys: [], groups: [] },
    { name: 'all in the first page', keys: ['', '01', '0fff'], groups: [[0, 0, 3]] },
    { name: 'a key equal to a fence starts that page', keys: ['0f', '10'], groups: [[0, 0, 1], [1, 1, 2]] },
    { name: 'the last page holds everything past its fence', keys: ['20', 'ff', 'ffff'], groups: [[2, 0, 3]] },
    { name: 'skips untouched pages', keys: ['01', '2001'], groups: [[0, 0, 1], [2, 1, 2]] },
  ])('$name', ({ keys, groups }) => {
    expect(groupByPage(idx, keys.map((k) => put(k))).map((g) => [g.at, g.from, g.to])).toEqual(groups);
  });

  test('groups cover the batch in order, each key inside its page', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uint8Array({ maxLength: 3 }), { selector: toHex, maxLength: 8 }), fc.array(fc.uint8Array({ maxLength: 3 }), { maxLength: 40 }), (fences, keys) => {
        const idx = [slotOf(new Uint8Array(0)), ...fences.filter((f) => f.length > 0).sort(compareBytes).map(slotOf)];
        const ops = normalizeOps(keys.map((key) => ({ type: 'del', key })));
        const groups = groupByPage(idx, ops);
        let at = 0;
        for (const g of groups) {
          expect(g.from).toBe(at);
          at = g.to;
          for (let i = g.from; i < g.to; i++) {
            expect(compareBytes(ops[i].key, idx[g.at].fence)).toBeGreaterThanOrEqual(0);
            if (idx[g.at + 1]) expect(compareBytes(ops[i].key, idx[g.at + 1].fence)).toBeLessThan(0);
          }
        }
        expect(at).toBe(ops.length);
        expect(pagesTouched(idx, ops, Infinity)).toBe(groups.length);
      }),
    );
  });
});

describe('pagesTouched', () => {
  const idx = index('', '10', '20', '30');
  const ops = ['01', '11', '12', '21', '31'].map((k) => put(k));
  test.each([
    { name: 'every page touched', cap: Infinity, pages: 4 },
    { name: 'stops at the cap', cap: 2, pages: 2 },
    { name: 'a cap of zero counts nothing', cap: 0, pages: 0 },
  ])('$name', ({ cap, pages }) => expect(pagesTouched(idx, ops, cap)).toBe(pages));
  test('no ops touch no page', () => expect(pagesTouched(idx, [], 10)).toBe(0));
});

describe('compactionChunkEnd', () => {
  const idx = index('', '10', '20', '30');
  const keys = ['01', '02', '11', '21', '22', '31'].map(h);
  test.each([
    { name: 'one page: its keys', cursor: 0, max: 1, end: 2 },
    { name: 'two pages', cursor: 0, max: 2, end: 3 },
    { name: 'from the middle', cursor: 2, max: 2, end: 5 },
    { name: 'more pages than left: to the end', cursor: 3, max: 64, end: 6 },
    { name: 'at the end: empty', cursor: 6, max: 1, end: 6 },
  ])('$name', ({ cursor, max, end }) => expect(compactionChunkEnd(idx, keys, cursor, max)).toBe(end));
});

/** An in-memory page store for rebuildPages: every slot's page, and the slots it was asked for. */
function pagesOf(slots: Slot[], entries: Entry[][]) {
  const map = new Map(slots.map((s, i) => [s, new Page(encodePage(entries[i]))]));
  const asked: Slot[] = [];
  return {
    map,
    asked,
    load: async (s: Slot) => {
      asked.push(s);
      const p = map.get(s);
      if (!p) throw new Error('no such slot');
      return p;
    },
  };
}

const kv = (key: string, valueBytes: number): Entry => [h(key), new Uint8Array(valueBytes)];
const flatten = (next: (Slot | Draft)[], pages: Map<Slot, Page>): string[] =>
  next.flatMap((x) => (isSlot(x) ? pages.get(x)!.entries() : x.entries)).map(([k]) => toHex(k));

async function rebuild(slots: Slot[], entries: Entry[][], ops: BatchOp[], pageBytes: number) {
  const store = pagesOf(slots, entries);
  const groups = groupByPage(slots, ops);
  const loaded = await Promise.all(groups.map((g) => store.load(slots[g.at])));
  const out = await rebuildPages(slots, ops, groups, loaded, pageBytes, store.load);
  return { ...out, store };
}

describe('rebuildPages', () => {
  test('an overflowing page splits; the new fences are the first keys of the pieces', async () => {
    const slots = index('');
    const ops = normalizeOps(['10', '20', '30', '40'].map((k) => ({ type: 'put', key: h(k), value: new Uint8Array(150) }) as BatchOp));
    const { next, replaced } = await rebuild(slots, [[]], ops, 400);
    expect(next.every((x) => !isSlot(x))).toBe(true);
    expect(next.map((d) => toHex(d.fence))).toEqual(['', '30']);
    expect(next.map((d) => (d as Draft).entries.length)).toEqual([2, 2]);
    expect([...replaced.keys()]).toEqual(slots);
  });

  test('untouched slots are kept as the same objects, and never read', async () => {
    const slots = index('', '10', '20');
    // every page above a quarter of 1024 bytes: no merge reads a neighbour
    const entries = [[kv('01', 300)], [kv('11', 300)], [kv('21', 300)]];
    const { next, store } = await rebuild(slots, entries, [put('11', 'aa'.repeat(300))], 1024);
    expect(next[0]).toBe(slots[0]);
    expect(next[2]).toBe(slots[2]);
    expect(isSlot(next[1])).toBe(false);
    expect(store.asked).toEqual([slots[1]]);
  });

  test('an emptied page folds into its left neighbour', async () => {
    const slots = index('', '10');
    const folded = await rebuild(slots, [[kv('01', 200)], [kv('11', 200)]], [del('11')], 512);
    expect(folded.next).toEqual([slots[0]]);
    expect(folded.replaced.has(slots[1])).toBe(true);
  });

  test('the emptied first page stays at the empty fence, empty when no neighbour fits', async () => {
    const slots = index('', '10');
    const alone = await rebuild(slots, [[kv('01', 200)], [kv('11', 500)]], [del('01')], 512);
    expect(alone.next.map((x) => toHex(x.fence))).toEqual(['', '10']);
    expect((alone.next[0] as Draft).entries).toEqual([]);
    expect(alone.next[1]).toBe(slots[1]);
    // with room, it takes its right neighbour in, under its own (empty) fence
    const merged = await rebuild(slots, [[kv('01', 200)], [kv('11', 200)]], [del('01')], 512);
    expect(merged.next.map((x) => toHex(x.fence))).toEqual(['']);
    expect(flatten(merged.next, merged.store.map)).toEqual(['11']);
  });

  test('a small rebuilt page merges with an untouched neighbour when both fit, keeping the left fence', async () => {
    const slots = index('', '10', '20');
    const entries = [[kv('01', 480)], [kv('11', 10), kv('12', 10)], [kv('21', 20)]];
    const { next, replaced, store } = await rebuild(slots, entries, [del('12')], 512);
    // page 1 shrank below a quarter of 512: it takes page 2 (right) in; page 0 is too full
    expect(next.map((x) => toHex(x.fence))).toEqual(['', '10']);
    expect(next[0]).toBe(slots[0]);
    expect(replaced.has(slots[2])).toBe(true);
    expect(flatten(next, store.map)).toEqual(['01', '11', '21']);
  });

  test('a small page stays alone when no neighbour fits with it', async () => {
    const slots = index('', '10', '20');
    const entries = [[kv('01', 480)], [kv('11', 10), kv('12', 10)], [kv('21', 480)]];
    const { next } = await rebuild(slots, entries, [del('12')], 512);
    expect(next.map((x) => toHex(x.fence))).toEqual(['', '10', '20']);
    expect(next[0]).toBe(slots[0]);
    expect(next[2]).toBe(slots[2]);
  });

  test('any batch: the rebuilt pages hold exactly the merged entries, in order, within their fences and size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 60 }),
        fc.array(fc.record({ key: fc.integer({ min: 0, max: 255 }), del: fc.boolean(), size: fc.integer({ min: 0, max: 120 }) }), { maxLength: 60 }),
        fc.integer({ min: 256, max: 1024 }),
        async (present, changes, pageBytes) => {
          const all: Entry[] = present.sort((a, b) => a - b).map((k) => [Uint8Array.of(k), new Uint8Array(40)]);
          // the starting pages: the entries cut into runs of eight
          const slots: Slot[] = [slotOf(new Uint8Array(0))];
          const entries: Entry[][] = [[]];
          for (let i = 0; i < all.length; i++) {
            if (i > 0 && i % 8 === 0) {
              slots.push(slotOf(all[i][0]));
              entries.push([]);
            }
            entries[entries.length - 1].push(all[i]);
          }
          const ops = normalizeOps(changes.map((c) => (c.del ? { type: 'del', key: Uint8Array.of(c.key) } : { type: 'put', key: Uint8Array.of(c.key), value: new Uint8Array(c.size) })));
          const { next, store } = await rebuild(slots, entries, ops, pageBytes);
          const expected = mergeEntries(all, ops).map(([k]) => toHex(k));
          expect(flatten(next, store.map)).toEqual(expected);
          expect(next[0].fence.length).toBe(0);
          for (let i = 0; i < next.length; i++) {
            const x = next[i];
            const keys = isSlot(x) ? store.map.get(x)!.entries().map(([k]) => k) : x.entries.map(([k]) => k);
            for (const k of keys) {
              expect(compareBytes(k, x.fence)).toBeGreaterThanOrEqual(0);
              if (next[i + 1]) expect(compareBytes(k, next[i + 1].fence)).toBeLessThan(0);
            }
            if (!isSlot(x) && x.entries.length > 1) expect(x.size).toBeLessThanOrEqual(pageBytes);
            if (!isSlot(x)) expect(x.size).toBe(encodePage(x.entries).length);
          }
        },
      ),
    );
  });

  test('minPageBytes is a quarter page', () => expect(minPageBytes(1024)).toBe(256));
});
