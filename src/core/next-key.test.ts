import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { nextKey } from './next-key.ts';
import { MerkleDatabase } from './database.ts';
import { MemoryStore } from './store.ts';
import { compareBytes, fromHex, toHex } from './bytes.ts';
import { keyToPath } from './path.ts';
import type { KeyValue } from './types.ts';

async function dbOf(kvs: [string, string][]) {
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.commit(kvs.map(([k, v]) => ({ key: fromHex(k), value: fromHex(v) })));
  return db;
}

/** Commits a range proof's key-values locally, deleting local keys in [start, last] it shows absent (docs/sync.md). */
async function commitRange(local: MerkleDatabase, kvs: KeyValue[], start: Uint8Array | undefined, upTo: Uint8Array | undefined) {
  const dels = [];
  for await (const kv of local.entries(start, upTo)) if (!kvs.some((x) => compareBytes(x.key, kv.key) === 0)) dels.push({ key: kv.key, value: undefined });
  await local.commit([...dels, ...kvs.map((kv) => ({ key: kv.key, value: kv.value }))]);
}

const localProofOf = (db: MerkleDatabase) => (p: Uint8Array) => db.trie.view().proofPath(p);

describe('nextKey: docs/sync.md examples', () => {
  it('remote {10:01, 1111:02}, local {13:03}, range proof for (none, 12] with end 20 → 13', async () => {
    const remote = await dbOf([['10', '01'], ['1111', '02']]);
    const local = await dbOf([['13', '03']]);
    const proof = await remote.rangeProof(remote.root, { end: fromHex('12'), keyLimit: 100 });
    const last = proof.keyValues[proof.keyValues.length - 1].key;
    await commitRange(local, proof.keyValues, undefined, last);
    expect(toHex((await nextKey(last, fromHex('20'), proof.endProof, localProofOf(local)))!)).toBe('13');
  });
  it('local {11:01, 1111:02} synced by a proof for (none, 20], then local put 1115 → 1115', async () => {
    const remote = await dbOf([['11', '01'], ['1111', '02']]);
    const local = await dbOf([]);
    const proof = await remote.rangeProof(remote.root, { end: fromHex('20'), keyLimit: 100 });
    const last = proof.keyValues[proof.keyValues.length - 1].key;
    await commitRange(local, proof.keyValues, undefined, last);
    await local.commit([{ key: fromHex('1115'), value: fromHex('03') }]);
    expect(toHex((await nextKey(last, fromHex('20'), proof.endProof, localProofOf(local)))!)).toBe('1115');
  });
  it('local {11, 12, 12a0} synced by a proof for (none, 12], then local delete 12a0 → 12a0', async () => {
    const remote = await dbOf([['11', '01'], ['12', '02'], ['12a0', '03']]);
    const local = await dbOf([]);
    const proof = await remote.rangeProof(remote.root, { end: fromHex('12'), keyLimit: 100 });
    const last = proof.keyValues[proof.keyValues.length - 1].key;
    expect(toHex(last)).toBe('12');
    await commitRange(local, [...proof.keyValues, { key: fromHex('12a0'), value: fromHex('03') }], undefined, undefined);
    await local.commit([{ key: fromHex('12a0'), value: undefined }]);
    expect(toHex((await nextKey(last, fromHex('20'), proof.endProof, localProofOf(local)))!)).toBe('12a0');
  });
});

describe('nextKey: nothing differs after the last key', () => {
  it('a local trie that already equals the remote right of the last key is done (no empty request for last ++ 00)', async () => {
    const kvs: [string, string][] = [['10', '01'], ['11', '02'], ['1111', '03'], ['20', '04'], ['2f00', '05'], ['90', '06']];
    const remote = await dbOf(kvs);
    // the local side already holds everything past 12 (an earlier sync at this root)
    const local = await dbOf(kvs.filter(([k]) => k > '12'));
    const proof = await remote.rangeProof(remote.root, { end: fromHex('12'), keyLimit: 100 });
    const last = proof.keyValues[proof.keyValues.length - 1].key;
    await commitRange(local, proof.keyValues, undefined, last);
    expect(toHex(local.root)).toBe(toHex(remote.root));
    expect(await nextKey(last, undefined, proof.endProof, localProofOf(local))).toBeUndefined();
    // one value right of the last key differs: not done, and the answer is at or before it
    await local.commit([{ key: fromHex('2f00'), value: fromHex('ff') }]);
    const next = await nextKey(last, undefined, proof.endProof, localProofOf(local));
    expect(next).toBeDefined();
    expect(compareBytes(next!, fromHex('2f00'))).toBeLessThanOrEqual(0);
    expect(compareBytes(next!, last)).toBeGreaterThan(0);
  });
});

describe('nextKey: upstream pitfalls', () => {
  it('a one-node exclusion end proof whose root is not a prefix of the last key falls back to last ++ 00', async () => {
    // remote root sits at path 5; the proven key 40 is not under it
    const remote = await dbOf([['50', '01'], ['51', '02']]);
    const endProof = await remote.trie.view().proofPath(keyToPath(fromHex('40')));
    expect(endProof.length).toBe(1);
    const local = await dbOf([]);
    expect(toHex((await nextKey(fromHex('40'), fromHex('60'), endProof, localProofOf(local)))!)).toBe('4000');
  });
  it('an empty end proof gives last ++ 00, and past the end gives done', async () => {
    const local = await dbOf([]);
    expect(toHex((await nextKey(fromHex('40'), undefined, [], localProofOf(local)))!)).toBe('4000');
    expect(await nextKey(fromHex('40'), fromHex('4000'), [], localProofOf(local))).toBeUndefined();
  });
});

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((k) => k.map((b) => b & 0x31));
const stateArb = fc.uniqueArray(fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 3 }) }), { selector: (kv) => toHex(kv.key), maxLength: 60 });

describe('nextKey against a brute-force oracle', () => {
  // `end` itself belongs to the neighbouring work item, which starts at it (docs/sync.md splits at the midpoint)
  it('never skips a key where local and remote differ', async () => {
    await fc.assert(
      fc.asyncProperty(stateArb, stateArb, fc.option(keyArb, { nil: undefined }), fc.integer({ min: 1, max: 12 }), async (remoteKvs, localKvs, end, limit) => {
        const remote = await MerkleDatabase.open(new MemoryStore());
        await remote.commit(remoteKvs.map((kv) => ({ key: kv.key, value: kv.value })));
        const local = await MerkleDatabase.open(new MemoryStore());
        await local.commit(localKvs.map((kv) => ({ key: kv.key, value: kv.value })));
        if (remoteKvs.length === 0) return;
        const proof = await remote.rangeProof(remote.root, { end, keyLimit: limit });
        if (proof.keyValues.length === 0) return;
        const last = proof.keyValues[proof.keyValues.length - 1].key;
        if (end && compareBytes(last, end) >= 0) return;
        await commitRange(local, proof.keyValues, undefined, last);
        const next = await nextKey(last, end, proof.endProof, localProofOf(local));
        // oracle: the first key after `last` (and within end) whose value differs
        const r = new Map(remoteKvs.map((kv) => [toHex(kv.key), toHex(kv.value)]));
        const l = new Map<string, string>();
        for await (const kv of local.entries()) l.set(toHex(kv.key), toHex(kv.value));
        const keys = [...new Set([...r.keys(), ...l.keys()])].sort();
        const firstDiff = keys.find((k) => k > toHex(last) && (!end || k < toHex(end)) && r.get(k) !== l.get(k));
        if (next === undefined) expect(firstDiff).toBeUndefined();
        else {
          expect(compareBytes(next, last)).toBeGreaterThan(0);
          if (firstDiff !== undefined) expect(compareBytes(next, fromHex(firstDiff))).toBeLessThanOrEqual(0);
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});
