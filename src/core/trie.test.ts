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

  it('buildRoot: an onNode that builds another trie meanwhile changes neither root (the builder keeps per-depth arrays)', () => {
    const kvs = (seed: number) => {
      const model = new Map<string, Uint8Array>();
      for (const k of fc.sample(fc.uint8Array({ minLength: 1, maxLength: 5 }), { numRuns: 400, seed })) model.set(toHex(k), k.map((x) => x ^ seed));
      return { model, items: itemsFromKeyValues([...model].map(([k, v]) => ({ key: Uint8Array.from(Buffer.from(k, 'hex')), value: v }))) };
    };
    const a = kvs(3);
    const b = kvs(11);
    const inner: string[] = [];
    const outer = buildRoot(a.items, () => void inner.push(toHex(buildRoot(b.items))));
    expect(inner.length).toBeGreaterThan(100);
    expect(toHex(outer)).toBe(toHex(naiveRoot(a.model)));
    expect(new Set(inner)).toEqual(new Set([toHex(naiveRoot(b.model))]));
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

describe('elided leaves (a record names its leaf children by index only)', () => {
  const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

  it('random commits, each on a trie reopened from the store (nodes read back, leaves filled in from values), match the naive root; proofs verify', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 1, maxLength: 6 }), async (batches) => {
        const store = new MemoryStore();
        const model = new Map<string, Uint8Array>();
        const keys = new Map<string, Uint8Array>();
        for (const batch of batches) {
          // a tiny cache: most nodes come from their records
          const trie = await MerkleTrie.open(store, { cacheBytes: 512 });
          for (const op of batch) {
            keys.set(toHex(op.key), op.key);
            if (op.value === undefined) model.delete(toHex(op.key));
            else model.set(toHex(op.key), op.value);
          }
          expect(toHex(await trie.commit(batch))).toBe(toHex(naiveRoot(model)));
        }
        const fresh = await MerkleTrie.open(store);
        for (const key of keys.values()) {
          const { value, proof } = await keyProof(fresh.view(), key);
          if (proof.length) verifyKeyProof(fresh.root, key, value, proof);
        }
      }),
      { numRuns: 150, seed: 77 },
    );
  });

  // each step committed on a trie reopened from the store; roots from Firewood's merkledb-compatible
  // cases (docs/hashing.md#test-vectors), and back again by deletes
  const steps: [string, KeyChange[], string][] = [
    ['00→00', [{ key: hex('00'), value: hex('00') }], '073615413d814b23383fc2c8d8af13abfffcb371b654b98dbf47dd74b1e4d1b9'],
    ['+ 0001: a leaf under a key that prefixes it', [{ key: hex('0001'), value: hex('0001') }], 'c3bdc20aff5cba30f81ffd7689e94e1dbeece4a08e27f0104262431604cf45c6'],
    ['+ 000102: the leaf 0001 gets a child', [{ key: hex('000102'), value: hex('000102') }], '229011c50ad4d5c2f4efe02b8db54f361ad295c4eee2bf76ea4ad1bb92676f97'],
    ['+ 0008: a leaf beside 0001', [{ key: hex('0008'), value: hex('0008') }], 'a683b4881cb540b969f885f538ba5904699d480152f350659475a962d6240ef9'],
    ['- 0008', [{ key: hex('0008'), value: undefined }], '229011c50ad4d5c2f4efe02b8db54f361ad295c4eee2bf76ea4ad1bb92676f97'],
    ['- 000102: 0001 is a leaf again', [{ key: hex('000102'), value: undefined }], 'c3bdc20aff5cba30f81ffd7689e94e1dbeece4a08e27f0104262431604cf45c6'],
    ['0001 → 32 bytes of 01', [{ key: hex('0001'), value: new Uint8Array(32).fill(1) }], '3edbf1fdd345db01e47655bcd0a9a456857c4093188cf35c5c89b8b0fb3de17e'],
    ['- 0001', [{ key: hex('0001'), value: undefined }], '073615413d814b23383fc2c8d8af13abfffcb371b654b98dbf47dd74b1e4d1b9'],
  ];
  it('the vectors, step by step on a reopened trie: put into and out of leaves, split a leaf, keys prefixing keys', async () => {
    const store = new MemoryStore();
    for (const [name, changes, root] of steps) {
      const trie = await MerkleTrie.open(store);
      expect(toHex(await trie.commit(changes)), name).toBe(root);
      // and the store alone gives it back: every key's proof from a trie with an empty cache
      const fresh = await MerkleTrie.open(store);
      for (const key of ['00', '0001', '000102', '0008'].map(hex)) {
        const { value, proof } = await keyProof(fresh.view(), key);
        verifyKeyProof(fresh.root, key, value, proof);
      }
    }
  });

  it('a leaf split on a reopened trie: the new branch takes the old leaf from the record, elided again', async () => {
    const store = new MemoryStore();
    const a = await MerkleTrie.open(store);
    await a.commit([{ key: hex('1100'), value: hex('01') }, { key: hex('2200'), value: hex('02') }]);
    const b = await MerkleTrie.open(store);
    // 1101 splits the leaf 1100 (the root record names it by index only) into a node at 1 1 0
    const root = await b.commit([{ key: hex('1101'), value: hex('03') }]);
    const model = new Map([['1100', hex('01')], ['2200', hex('02')], ['1101', hex('03')]]);
    expect(toHex(root)).toBe(toHex(naiveRoot(model)));
    // the new node's record elides both its leaves: 1 flag + 32 id + 1 count + 2 index bytes
    expect(store.getSync(Uint8Array.of(0x6e, 1, 1, 0))).toHaveLength(36);
    const c = await MerkleTrie.open(store);
    expect(toHex(await c.commit([{ key: hex('1100'), value: undefined }]))).toBe(toHex(naiveRoot(new Map([['2200', hex('02')], ['1101', hex('03')]]))));
  });

  it('elideLeaves: false (the full node) writes leaves in full, marked; either form reads the other\'s store', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 1, maxLength: 6 }), async (batches) => {
        const store = new MemoryStore();
        const model = new Map<string, Uint8Array>();
        for (const [i, batch] of batches.entries()) {
          // commits alternate between the two forms, each on a trie reopened from the store
          const trie = await MerkleTrie.open(store, { cacheBytes: 512, elideLeaves: i % 2 === 1 });
          for (const op of batch) {
            if (op.value === undefined) model.delete(toHex(op.key));
            else model.set(toHex(op.key), op.value);
          }
          expect(toHex(await trie.commit(batch))).toBe(toHex(naiveRoot(model)));
        }
      }),
      { numRuns: 100, seed: 78 },
    );
    const store = new MemoryStore();
    const full = await MerkleTrie.open(store, { elideLeaves: false });
    await full.commit([{ key: hex('1100'), value: hex('01') }, { key: hex('2200'), value: hex('02') }]);
    // flags 06: packed, leaves marked (bit 4 of each index byte), in full
    const root = store.getSync(Uint8Array.of(0x6e))!;
    expect(root[0]).toBe(0x06);
    expect(root[34]).toBe(0x11);
    expect(root).toHaveLength(34 + 2 * (2 + 2 + 32));
  });

  it('a 10,000-key trie stores at least 60 fewer bytes of node records per leaf than records with every child in full', async () => {
    // 10,000 random 32-byte keys (seeded): none prefixes another, so each is a leaf child
    const keys = fc.sample(fc.uint8Array({ minLength: 32, maxLength: 32 }), { numRuns: 10_000, seed: 3 });
    const kvs = [...new Map(keys.map((k) => [toHex(k), { key: k, value: k.subarray(0, 8) }])).values()];
    const store = new MemoryStore();
    const trie = await MerkleTrie.open(store);
    await trie.commit(kvs);
    let stored = 0;
    for (const [k, v] of store.iterateSync({ gte: Uint8Array.of(0x6e), lt: Uint8Array.of(0x6f) })) stored += k.length + v.length;
    // independently, from the builder: the bytes of records holding every child in full (flags,
    // id, count; per child index, suffix length, packed suffix, id), and how many children are leaves
    let fullBytes = 0;
    let leaves = 0;
    buildRoot(itemsFromKeyValues(kvs), (n) => {
      if (!n.children.some((c) => c)) return;
      fullBytes += 1 + n.path.length + 1 + 32 + 1;
      for (const c of n.children) {
        if (!c) continue;
        fullBytes += 2 + ((c.tokens - n.path.length) >> 1) + 32;
        if (c.tokens === 64) leaves++;
      }
    });
    expect(leaves).toBe(kvs.length);
    // an elided leaf keeps its index byte: 2 + 30 suffix bytes (59 or 60 tokens at this depth) + 32 - 1
    expect(stored).toBeLessThanOrEqual(fullBytes - 60 * leaves);
  });
});
