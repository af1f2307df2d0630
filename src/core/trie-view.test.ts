import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MerkleTrie } from './trie.ts';
import { MemoryStore } from './store.ts';
import { toHex } from './bytes.ts';
import { naiveRoot } from './testing/naive.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 }).map((k) => k.map((b) => b & 0x13)); // small alphabet: many shared prefixes
const valArb = fc.uint8Array({ minLength: 0, maxLength: 40 });
const opArb = fc.record({ key: keyArb, value: fc.option(valArb, { nil: undefined }) });

describe('TrieView', () => {
  it('entries and range read runs of the store merged with a view\'s changes, past one run', async () => {
    const trie = await MerkleTrie.open(new MemoryStore());
    const key = (i: number) => Uint8Array.of(i >> 8, i & 255);
    const model = new Map<string, string>();
    const initial = Array.from({ length: 5000 }, (_, i) => ({ key: key(2 * i), value: Uint8Array.of(1) }));
    for (const c of initial) model.set(toHex(c.key), '01');
    await trie.commit(initial);
    const v = trie.view();
    // deletes and puts in the view, some inside the first run, some across its end
    const changes = [];
    for (let i = 0; i < 10000; i += 7) changes.push({ key: key(i), value: i % 3 === 0 ? undefined : Uint8Array.of(2) });
    for (const c of changes) {
      if (c.value) model.set(toHex(c.key), '02');
      else model.delete(toHex(c.key));
    }
    await v.apply(changes);
    const sorted = [...model.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const listed = [];
    for await (const kv of v.entries()) listed.push([toHex(kv.key), toHex(kv.value)]);
    expect(listed).toEqual(sorted);
    const from = key(3001);
    const to = key(9000);
    const inRange = sorted.filter(([k]) => k >= toHex(from) && k <= toHex(to));
    const limited = [];
    for await (const kv of v.entries(from, to, 2100)) limited.push(toHex(kv.key));
    expect(limited).toEqual(inRange.slice(0, 2100).map(([k]) => k));
    expect((await v.range(from, to, 2100)).map((kv) => toHex(kv.key))).toEqual(inRange.slice(0, 2100).map(([k]) => k));
    expect((await v.range(from, to)).length).toBe(inRange.length);
    expect(await v.range(from, to, 0)).toEqual([]);
  });

  it('one view: the root read after each batch of changes matches the naive root, and so does the commit', async () => {
    // the live follower's pattern: many deltas on one view, the root checked after each
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 30 }), { maxLength: 3 }), fc.array(fc.array(opArb, { maxLength: 12 }), { maxLength: 8 }), async (before, deltas) => {
        const trie = await MerkleTrie.open(new MemoryStore());
        const model = new Map<string, Uint8Array>();
        const apply = (batch: { key: Uint8Array; value: Uint8Array | undefined }[]) => {
          for (const op of batch) {
            if (op.value === undefined) model.delete(toHex(op.key));
            else model.set(toHex(op.key), op.value);
          }
        };
        for (const batch of before) {
          await trie.commit(batch);
          apply(batch);
        }
        const view = trie.view();
        for (const delta of deltas) {
          await view.apply(delta);
          apply(delta);
          expect(toHex(view.root)).toBe(toHex(naiveRoot(model)));
        }
        const root = await trie.commitView(view);
        expect(toHex(root)).toBe(toHex(naiveRoot(model)));
        const again = await MerkleTrie.open(trie.store);
        const check = again.view();
        await check.put(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]), new Uint8Array([1]));
        model.set(toHex(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), new Uint8Array([1]));
        expect(toHex(check.root)).toBe(toHex(naiveRoot(model)));
      }),
      { numRuns: 150, seed: 7 },
    );
  });
});

describe('puts over existing leaves', () => {
  it('replace them without reading their old values, and give the same root and state', async () => {
    const store = new MemoryStore();
    const kv = (i: number, v: number) => ({ key: Uint8Array.of(i >> 8, i & 255, (i * 37) & 255, 7), value: Uint8Array.of(v, i & 255) });
    const initial = Array.from({ length: 600 }, (_, i) => kv(i, 1));
    await (await MerkleTrie.open(store)).commit(initial);
    const model = new Map(initial.map((c) => [toHex(c.key), c.value]));
    let valueReads = 0;
    const get = store.get.bind(store);
    store.get = (k) => {
      if (k[0] === 0x76) valueReads++;
      return get(k);
    };
    // a fresh trie (cold cache): 40 existing keys get new values, one is deleted, one is new, and
    // one absent key is deleted (nothing happens)
    const trie = await MerkleTrie.open(store);
    const changes = [...Array.from({ length: 40 }, (_, j) => kv(j * 15, 9)), { key: kv(3, 1).key, value: undefined }, kv(5000, 4), { key: kv(7000, 1).key, value: undefined }];
    for (const c of changes) {
      if (c.value === undefined) model.delete(toHex(c.key));
      else model.set(toHex(c.key), c.value);
    }
    const root = await trie.commit(changes);
    expect(toHex(root)).toBe(toHex(naiveRoot(model)));
    // no old value is read: the deleted key's leaf is named by its parent, so it exists
    expect(valueReads).toBe(0);
    const again = await MerkleTrie.open(store);
    expect(toHex(again.root)).toBe(toHex(root));
    for (const c of changes) expect(await again.get(c.key)).toEqual(c.value);
  });
});
