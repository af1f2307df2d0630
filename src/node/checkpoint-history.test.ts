/**
 * The replica's record of the changes from a checkpoint to its head (checkpoint-history.ts):
 * written through a trie over the recorder, turned into history records, read back by
 * `MerkleDatabase`, which then serves the checkpoint; a bound, and a wrong record caught.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { verifyRangeProof } from '../core/proof.ts';
import { MemoryStore, type BatchOp } from '../core/store.ts';
import { MerkleTrie } from '../core/trie.ts';
import type { KeyChange } from '../core/types.ts';
import { randomBytes, randomPuts, seededRandom } from '../sync/state/testing.ts';
import { ChangeRecorder, checkpointHistoryOps, nextRevisionOp } from './checkpoint-history.ts';

/** A store at a checkpoint (a database of `base`), its root, and the recorder over it. */
async function atCheckpoint(base: KeyChange[], maxKeys?: number) {
  const store = new MemoryStore();
  const db = await MerkleDatabase.open(store);
  const checkpoint = await db.commit(base);
  let keys = 0;
  for await (const _ of db.entries()) keys++;
  return { store, checkpoint, keys, recorder: new ChangeRecorder(store, { maxKeys }) };
}

/** What the replica's finish does: the history records replaced by the checkpoint and the head. */
async function writeHistory(store: MemoryStore, ops: BatchOp[]): Promise<MerkleDatabase> {
  const del: BatchOp[] = [];
  for await (const [k] of store.iterate({ gte: Uint8Array.of(0x68), lt: Uint8Array.of(0x69) })) del.push({ type: 'del', key: k });
  await store.write([...del, ...ops]);
  return MerkleDatabase.open(store);
}

describe('ChangeRecorder and checkpointHistoryOps', () => {
  it('a head written through the recorder keeps the checkpoint servable: the view at it rebuilds its root and its range proofs verify', async () => {
    const rnd = seededRandom(3);
    const base = randomPuts(rnd, 500);
    const { store, checkpoint, keys, recorder } = await atCheckpoint(base);
    recorder.start(checkpoint);
    const trie = await MerkleTrie.open(recorder);
    // puts of new keys, changes and deletes of old ones, a key put then deleted, over two commits
    await trie.commit([...randomPuts(rnd, 50), { key: base[0].key, value: fromHex('aa') }, { key: base[1].key, value: undefined }, { key: fromHex('ee01'), value: fromHex('01') }]);
    const head = await trie.commit([{ key: fromHex('ee01'), value: undefined }, { key: base[2].key, value: randomBytes(rnd, 40, 40) }]);
    const recorded = recorder.recorded()!;
    expect(toHex(recorded.from)).toBe(toHex(checkpoint));
    expect(recorded.changes.some((c) => toHex(c.key) === 'ee01')).toBe(false); // absent before and after
    expect(recorded.changes.length).toBeGreaterThan(40);

    const db = await writeHistory(store, checkpointHistoryOps(head, recorded));
    expect(toHex(db.root)).toBe(toHex(head));
    expect(toHex((await db.viewAt(checkpoint)).root)).toBe(toHex(checkpoint));
    expect(await db.retainCheckpoint(checkpoint)).toBe(true);
    const proof = await db.rangeProof(checkpoint, { keyLimit: 1000 });
    verifyRangeProof(proof, { root: checkpoint, keyLimit: 1000 });
    expect(proof.keyValues).toHaveLength(keys);
    expect(db.changesBetween(checkpoint, head)).toHaveLength(recorded.changes.length);
  });

  it('a catch-up written through the recorder extends the history: older roots and the kept checkpoint stay servable', async () => {
    const rnd = seededRandom(7);
    const store = new MemoryStore();
    let db = await MerkleDatabase.open(store);
    const checkpoint = await db.commit(randomPuts(rnd, 200));
    await db.retainCheckpoint(checkpoint);
    const served = await db.commit(randomPuts(rnd, 10));
    const recorder = new ChangeRecorder(store);
    recorder.start(served);
    const head = await (await MerkleTrie.open(recorder)).commit([...randomPuts(rnd, 20), { key: randomPuts(rnd, 1)[0].key, value: undefined }]);
    await store.write([nextRevisionOp(db.revision + 1, head, recorder.recorded()!)]);
    db = await MerkleDatabase.open(store);
    expect(toHex(db.root)).toBe(toHex(head));
    expect(db.isCheckpoint(checkpoint)).toBe(true);
    for (const root of [checkpoint, served]) expect(toHex((await db.viewAt(root)).root)).toBe(toHex(root));
  });

  it('records nothing before start, and forgets on stop', async () => {
    const { checkpoint, recorder } = await atCheckpoint(randomPuts(seededRandom(4), 10));
    const trie = await MerkleTrie.open(recorder);
    await trie.commit([{ key: fromHex('01'), value: fromHex('01') }]);
    expect(recorder.recorded()).toBeUndefined();
    recorder.start(trie.root);
    await trie.commit([{ key: fromHex('02'), value: fromHex('02') }]);
    expect(recorder.recorded()!.changes.map((c) => toHex(c.key))).toEqual(['02']);
    recorder.stop();
    expect(recorder.recorded()).toBeUndefined();
    expect(checkpoint).toBeDefined();
  });

  it('gives up past its key bound (the replica then serves from the head on)', async () => {
    const rnd = seededRandom(5);
    const { checkpoint, recorder } = await atCheckpoint(randomPuts(rnd, 10), 20);
    recorder.start(checkpoint);
    const trie = await MerkleTrie.open(recorder);
    await trie.commit(randomPuts(rnd, 15));
    expect(recorder.recorded()).toBeDefined();
    await trie.commit(randomPuts(rnd, 15));
    expect(recorder.recorded()).toBeUndefined();
    // the writes still land
    expect(trie.root).toEqual((await MerkleTrie.open(recorder)).root);
  });

  it('a wrong record is caught when the view at the checkpoint is built', async () => {
    const rnd = seededRandom(6);
    const { store, checkpoint, recorder } = await atCheckpoint(randomPuts(rnd, 50));
    recorder.start(checkpoint);
    const head = await (await MerkleTrie.open(recorder)).commit(randomPuts(rnd, 5));
    const recorded = recorder.recorded()!;
    const db = await writeHistory(store, checkpointHistoryOps(head, { from: recorded.from, changes: recorded.changes.slice(1) }));
    await expect(db.viewAt(checkpoint)).rejects.toThrow(/does not reproduce/);
  });
});
