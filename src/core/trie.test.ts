import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MerkleTrie } from './trie.ts';
import { MemoryStore } from './store.ts';
import { buildRoot, itemsFromKeyValues } from './builder.ts';
import { toHex } from './bytes.ts';
import type { KeyChange } from './types.ts';
import { naiveRoot } from './testing/naive.ts';
import { MerkleDatabase } from './database.ts';
import { keyProof, verifyKeyProof } from './proof.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 }).map((k) => k.map((b) => b & 0x13)); // small alphabet: many shared prefixes
const valArb = fc.uint8Array({ minLength: 0, maxLength: 40 });
const opArb = fc.record({ key: keyArb, value: fc.option(valArb, { nil: undefined }) });

describe('MerkleTrie', () => {
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
});
