import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { builtToNode, encodeBuilt, encodeNode, MerkleTrie, NodeCache } from './trie.ts';
import { MemoryStore } from './store.ts';
import { buildRoot, itemsFromKeyValues } from './builder.ts';
import { keyToPath } from './path.ts';
import { toHex } from './bytes.ts';
import type { KeyChange } from './types.ts';
import { naiveRoot } from './testing/naive.ts';
import { MerkleDatabase } from './database.ts';
import { keyProof, verifyKeyProof } from './proof.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 }).map((k) => k.map((b) => b & 0x13)); // small alphabet: many shared prefixes
const valArb = fc.uint8Array({ minLength: 0, maxLength: 40 });
const opArb = fc.record({ key: keyArb, value: fc.option(valArb, { nil: undefined }) });

describe('MerkleTrie', () => {
  it('a node record encoded from the builder\'s node equals the record of the trie node', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ key: keyArb, value: valArb }), { maxLength: 40 }), (kvs) => {
        const unique = [...new Map(kvs.map((kv) => [toHex(kv.key), kv])).values()];
        let branches = 0;
        buildRoot(itemsFromKeyValues(unique), (n) => {
          if (!n.children.some((c) => c !== undefined)) return;
          branches++;
          expect(toHex(encodeBuilt(n))).toBe(toHex(encodeNode(builtToNode(n))));
        });
        expect(branches).toBeLessThanOrEqual(unique.length);
      }),
      { numRuns: 200, seed: 5 },
    );
  });

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

  it('matches the naive root after random puts and deletes, commit by commit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 30 }), { maxLength: 6 }), async (batches) => {
        const trie = await MerkleTrie.open(new MemoryStore());
        const model = new Map<string, Uint8Array>();
        for (const batch of batches) {
          for (const op of batch) {
            if (op.value === undefined) model.delete(toHex(op.key));
            else model.set(toHex(op.key), op.value);
          }
          const root = await trie.commit(batch);
          expect(toHex(root)).toBe(toHex(naiveRoot(model)));
          // reopening the store gives the same root and values
          const again = await MerkleTrie.open(trie.store);
          expect(toHex(again.root)).toBe(toHex(root));
          const listed = [];
          for await (const kv of again.entries()) listed.push([toHex(kv.key), toHex(kv.value)]);
          expect(listed).toEqual([...model.entries()].map(([k, v]) => [k, toHex(v)]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
        }
      }),
      { numRuns: 150, seed: 42 },
    );
  });

  it('bulk load equals incremental commits and the builder, on 3,000 random keys', async () => {
    const rnd = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 6 }), { numRuns: 3000, seed: 7 });
    const model = new Map<string, Uint8Array>();
    for (const k of rnd) model.set(toHex(k), k.map((x) => x ^ 0x5a));
    const kvs = [...model.entries()].map(([k, v]) => ({ key: Uint8Array.from(Buffer.from(k, 'hex')), value: v }));
    const items = itemsFromKeyValues(kvs);
    const fromBuilder = buildRoot(items);
    const bulk = await MerkleTrie.open(new MemoryStore());
    const sorted = items.map((i) => ({ key: i.key, value: i.value! }));
    await bulk.bulkLoad(sorted);
    const inc = await MerkleTrie.open(new MemoryStore());
    await inc.commit(kvs.map((kv) => ({ key: kv.key, value: kv.value })));
    expect(toHex(fromBuilder)).toBe(toHex(naiveRoot(model)));
    expect(toHex(bulk.root)).toBe(toHex(fromBuilder));
    expect(toHex(inc.root)).toBe(toHex(fromBuilder));
    // deleting everything from the bulk-loaded trie empties it
    const root = await bulk.commit(kvs.map((kv) => ({ key: kv.key, value: undefined })));
    expect(toHex(root)).toBe('00'.repeat(32));
  });
});

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

describe('leaves without node records', () => {
  it('a node that loses its children and becomes a leaf leaves no stale record', async () => {
    const b = (...x: number[]) => new Uint8Array(x);
    const db = await MerkleDatabase.open(new MemoryStore());
    await db.commit([{ key: b(0x21, 0x00), value: b() }, { key: b(0x21, 0x10), value: b() }, { key: b(0x00), value: b() }]);
    await db.commit([{ key: b(0x21, 0x00), value: undefined }, { key: b(0x21, 0x10), value: undefined }, { key: b(0x21), value: b(7) }]);
    // a fresh trie on the same store (empty node cache) reads everything from the records
    const fresh = await MerkleTrie.open(db.trie.store);
    for (const key of [b(0x21), b(0x00), b(0x21, 0x00)]) {
      const { value, proof } = await keyProof(fresh.view(), key);
      verifyKeyProof(fresh.root, key, value, proof);
    }
    expect(await fresh.get(b(0x21))).toEqual(b(7));
  });

  it('random commits: proofs from a fresh trie on the store verify for every key', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 1, maxLength: 5 }), async (batches) => {
        const db = await MerkleDatabase.open(new MemoryStore());
        const keys = new Map<string, Uint8Array>();
        for (const batch of batches) {
          await db.commit(batch);
          for (const op of batch) keys.set(toHex(op.key), op.key);
        }
        const fresh = await MerkleTrie.open(db.trie.store);
        for (const key of keys.values()) {
          const { value, proof } = await keyProof(fresh.view(), key);
          if (proof.length) verifyKeyProof(fresh.root, key, value, proof);
        }
      }),
      { numRuns: 100, seed: 21 },
    );
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

  it('warmNodes caches committed node records without evicting, in chunks, and views then read none', async () => {
    const store = new MemoryStore();
    const trie = await MerkleTrie.open(store, { cacheBytes: 64 * 1024 * 1024 });
    const kvs = Array.from({ length: 3000 }, (_, i) => ({ key: new Uint8Array([i >> 8, i & 255, (i * 7) & 255]), value: new Uint8Array([i & 255]) }));
    await trie.commit(kvs);
    // a fresh trie on the store: empty cache
    const fresh = await MerkleTrie.open(store, { cacheBytes: 64 * 1024 * 1024 });
    let after: Uint8Array | undefined;
    let chunks = 0;
    do {
      after = await fresh.warmNodes(after, 100);
      chunks++;
    } while (after);
    expect(chunks).toBeGreaterThan(1);
    let nodeReads = 0;
    const get = store.get.bind(store);
    store.get = (k) => {
      if (k[0] === 0x6e) nodeReads++;
      return get(k);
    };
    // new keys (an existing key is a leaf: leaves have no records, their values are read)
    const added = kvs.slice(0, 50).map((kv) => ({ key: new Uint8Array([kv.key[0], kv.key[1], kv.key[2] ^ 1]), value: new Uint8Array([9]) }));
    const view = fresh.view();
    await view.apply(added);
    expect(nodeReads).toBe(0);
    const model = new Map(kvs.map((kv) => [toHex(kv.key), kv.value]));
    for (const kv of added) model.set(toHex(kv.key), kv.value);
    expect(toHex(view.root)).toBe(toHex(naiveRoot(model)));

    // a cache too small for all records: the warm-up stops when full, evicting nothing
    const small = await MerkleTrie.open(store, { cacheBytes: 4096 });
    expect(await small.warmNodes(undefined, 1_000_000)).toBeUndefined();
    const reads = nodeReads;
    await small.view().prefetch([kvs[0].key]);
    expect(nodeReads).toBeGreaterThan(reads);
  });

  it('a cache that holds every record (a whole warm-up scan) lets puts and deletes of existing keys read nothing; a partial one reads', async () => {
    const store = new MemoryStore();
    const trie = await MerkleTrie.open(store);
    const kvs = Array.from({ length: 3000 }, (_, i) => ({ key: new Uint8Array([i >> 8, i & 255, (i * 7) & 255]), value: new Uint8Array([i & 255]) }));
    await trie.commit(kvs);
    const warm = async (t: MerkleTrie, limit: number) => {
      let after: Uint8Array | undefined;
      do after = await t.warmNodes(after, limit);
      while (after);
    };
    let reads = 0;
    const get = store.get.bind(store);
    store.get = (k) => {
      reads++;
      return get(k);
    };
    const model = new Map<string, Uint8Array>(kvs.map((kv) => [toHex(kv.key), kv.value]));
    const updates = (v: number) => kvs.filter((_, i) => i % 60 === 0).map((kv) => ({ key: kv.key, value: new Uint8Array([v, v]) }));
    const applyAndCheck = async (t: MerkleTrie, changes: KeyChange[]) => {
      const view = t.view();
      await view.prefetchChanges(changes);
      const before = reads;
      await view.apply(changes, { prefetched: true });
      expect(reads).toBe(before); // everything the puts needed was prefetched
      for (const c of changes) {
        if (c.value) model.set(toHex(c.key), c.value);
        else model.delete(toHex(c.key));
      }
      expect(toHex(view.root)).toBe(toHex(naiveRoot(model)));
      await t.commitView(view);
    };

    const whole = await MerkleTrie.open(store, { cacheBytes: 64 * 1024 * 1024 });
    await warm(whole, 100);
    reads = 0;
    await applyAndCheck(whole, updates(1));
    expect(reads).toBe(0); // no node record, no old value
    // commits keep it whole: again nothing is read, nor for deletes of existing keys
    await applyAndCheck(whole, [...updates(2), { key: kvs[1].key, value: undefined }, { key: kvs[2].key, value: undefined }]);
    expect(reads).toBe(0);
    // and no prefetch is needed: the changes find every node in memory, the leaves unread
    expect(whole.cacheWhole).toBe(true);
    const direct = whole.view();
    const more: KeyChange[] = [...updates(6), { key: kvs[4].key, value: undefined }, { key: new Uint8Array([9, 9, 9, 9]), value: new Uint8Array([1]) }];
    await direct.apply(more, { prefetched: true });
    expect(reads).toBe(0);
    for (const c of more) {
      if (c.value) model.set(toHex(c.key), c.value);
      else model.delete(toHex(c.key));
    }
    expect(toHex(direct.root)).toBe(toHex(naiveRoot(model)));
    await whole.commitView(direct);

    // a warm-up that stopped when the cache was full: the leaves' paths are looked up
    const partial = await MerkleTrie.open(store, { cacheBytes: 16 * 1024 });
    await warm(partial, 100);
    reads = 0;
    await applyAndCheck(partial, updates(3));
    expect(reads).toBeGreaterThanOrEqual(updates(3).length);

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
});

/** A MemoryStore whose writes, while `hold`, wait until `release()` (or fail with `fail()`). */
class GatedStore extends MemoryStore {
  hold = false;
  gates: { release: () => void; fail: (err: Error) => void }[] = [];

  override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
    if (!this.hold) return super.write(ops);
    return new Promise<void>((resolve, reject) => {
      this.gates.push({ release: () => resolve(super.write(ops)), fail: reject });
    });
  }
}

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

describe('staged commits', () => {
  const kv = (i: number, v: number) => ({ key: Uint8Array.of(i >> 8, i & 255, (i * 37) & 255), value: Uint8Array.of(v, i & 255) });

  it('views made while a write is in flight read the staged state, with a cache too small to hold it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.record({ i: fc.integer({ min: 0, max: 400 }), v: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }) }), { maxLength: 40 }), { minLength: 2, maxLength: 5 }), async (batches) => {
        const store = new GatedStore();
        // a tiny cache: staged node records are evicted at once and must come from the staged ops
        const trie = await MerkleTrie.open(store, { cacheBytes: 1024 });
        const initial = Array.from({ length: 300 }, (_, i) => kv(i, 1));
        const model = new Map(initial.map((c) => [toHex(c.key), c.value]));
        await trie.commit(initial);
        store.hold = true;
        const durable: Promise<void>[] = [];
        for (const batch of batches) {
          // the previous batch's write is still in flight: this view starts on its staged state
          const view = trie.view();
          const changes = batch.map(({ i, v }) => (v === undefined ? { key: kv(i, 0).key, value: undefined } : kv(i, v)));
          await view.apply(changes);
          for (const c of changes) {
            if (c.value === undefined) model.delete(toHex(c.key));
            else model.set(toHex(c.key), c.value);
          }
          expect(toHex(view.root)).toBe(toHex(naiveRoot(model)));
          durable.push(trie.stageView(view).durable);
          // a point read sees the staged value
          const probe = changes[0];
          if (probe) expect((await trie.get(probe.key)) && toHex((await trie.get(probe.key))!)).toBe(model.has(toHex(probe.key)) ? toHex(model.get(toHex(probe.key))!) : undefined);
        }
        expect(store.gates.length).toBe(batches.length);
        for (const g of store.gates.splice(0)) g.release();
        await Promise.all(durable);
        // the store alone, reopened, holds the same state
        const again = await MerkleTrie.open(store);
        expect(toHex(again.root)).toBe(toHex(naiveRoot(model)));
        const listed: string[] = [];
        for await (const e of again.entries()) listed.push(toHex(e.key));
        expect(listed).toEqual([...model.keys()].sort());
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  it('a scan waits for staged writes; a failed write puts the trie back at its state before', async () => {
    const store = new GatedStore();
    const trie = await MerkleTrie.open(store, { cacheBytes: 1 << 20 });
    const model = new Map(Array.from({ length: 200 }, (_, i) => [toHex(kv(i, 1).key), kv(i, 1).value]));
    await trie.commit(Array.from({ length: 200 }, (_, i) => kv(i, 1)));
    store.hold = true;
    // a scan started while a write is staged sees the state after it, not the store before it
    let view = trie.view();
    await view.apply([kv(500, 9)]);
    model.set(toHex(kv(500, 9).key), kv(500, 9).value);
    const first = trie.stageView(view);
    const scanned: string[] = [];
    const scan = (async () => {
      for await (const e of trie.entries()) scanned.push(toHex(e.key));
    })();
    await new Promise((r) => setTimeout(r, 10));
    expect(scanned).toEqual([]);
    store.gates.shift()!.release();
    await first.durable;
    await scan;
    expect(scanned).toEqual([...model.keys()].sort());
    const before = toHex(trie.root);
    expect(before).toBe(toHex(naiveRoot(model)));

    view = trie.view();
    await view.apply([kv(5, 9), kv(501, 9)]);
    const staged = trie.stageView(view);
    expect(toHex(trie.root)).toBe(toHex(staged.root));
    expect(toHex(staged.root)).not.toBe(before);
    expect(await trie.get(kv(501, 9).key)).toEqual(kv(501, 9).value);
    store.gates.shift()!.fail(new Error('quota'));
    await expect(staged.durable).rejects.toThrow('quota');
    expect(toHex(trie.root)).toBe(before);
    expect(await trie.get(kv(501, 9).key)).toBeUndefined();
    store.hold = false;
    const again = trie.view();
    await again.apply([kv(7, 3)]);
    model.set(toHex(kv(7, 3).key), kv(7, 3).value);
    expect(toHex(again.root)).toBe(toHex(naiveRoot(model)));
    expect(toHex(await trie.commitView(again))).toBe(toHex(naiveRoot(model)));
  });
});

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
