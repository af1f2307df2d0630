/**
 * The log generator's in-memory trie (memory-trie.ts) has the core trie's roots: after every
 * commit of seeded workloads (fresh keys, puts and deletes among a few keys, deletes of absent
 * keys, down to the empty trie), compared with a `MerkleDatabase`.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { MemoryStore } from '../core/store.ts';
import { EMPTY_ROOT, type KeyChange } from '../core/types.ts';
import { BatchGenerator, generateKeyValues, SeededRandom } from './generate.ts';
import { MemoryTrie } from './memory-trie.ts';

async function sameRoots(batches: KeyChange[][], initial = generateKeyValues(0, 1)): Promise<MemoryTrie> {
  const core = await MerkleDatabase.open(new MemoryStore());
  const mem = new MemoryTrie(() => {});
  if (initial.length) expect(toHex(await mem.bulkLoad(initial))).toBe(toHex(await core.bulkLoad(initial)));
  for (const [i, b] of batches.entries()) {
    const want = toHex(await core.commit(b));
    expect(toHex(await mem.commit(b)), `after commit ${i}`).toBe(want);
  }
  const entries = [...mem.entries()];
  const coreEntries: string[] = [];
  for await (const kv of core.trie.entries()) coreEntries.push(toHex(kv.key) + ':' + toHex(kv.value));
  expect(entries.map((kv) => toHex(kv.key) + ':' + toHex(kv.value))).toEqual(coreEntries);
  expect(mem.size).toBe(coreEntries.length);
  return mem;
}

describe('MemoryTrie', () => {
  it('fresh keys, up to 8 puts a commit, on top of a bulk load', async () => {
    const g = new BatchGenerator(21, 8);
    await sameRoots(Array.from({ length: 300 }, () => g.next()), generateKeyValues(200, 4));
  });

  it('puts and deletes among 16 keys (overwrites, deletes of absent keys)', async () => {
    const g = new BatchGenerator(22, 3, 16);
    await sameRoots(Array.from({ length: 600 }, () => g.next()));
  });

  it('one-byte keys: every nibble branch, down to one key and to the empty trie', async () => {
    const rnd = new SeededRandom(23);
    const batches: KeyChange[][] = [];
    const keys = Array.from({ length: 256 }, (_, i) => Uint8Array.of(i));
    for (let i = 0; i < 400; i++) batches.push([{ key: keys[rnd.below(256)], value: rnd.below(3) === 0 ? undefined : rnd.bytes(rnd.below(40)) }]);
    // then delete everything, one key a commit
    for (const key of keys) batches.push([{ key, value: undefined }]);
    const mem = await sameRoots(batches);
    expect(toHex(mem.root)).toBe(toHex(EMPTY_ROOT));
    expect(mem.size).toBe(0);
  });

  it('refuses keys of another length', async () => {
    const mem = new MemoryTrie(() => {});
    await mem.commit([{ key: Uint8Array.of(1, 2), value: Uint8Array.of(1) }]);
    expect(() => mem.put(Uint8Array.of(1), Uint8Array.of(1))).toThrow(RangeError);
  });
});
