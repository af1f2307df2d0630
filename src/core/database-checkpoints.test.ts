import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.ts';
import { MerkleDatabase } from './database.ts';
import { verifyRangeProof } from './proof.ts';
import { MemoryStore } from './store.ts';

const key = (i: number) => Uint8Array.of(i >> 8, i & 255);
const commitOne = (db: MerkleDatabase, i: number) => db.commit([{ key: key(i % 50), value: Uint8Array.of(i & 255, i >> 8) }]);

describe('checkpoint roots beyond the history window', () => {
  it('keeps the last two checkpoints servable past the window; the third oldest goes', async () => {
    const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 4 });
    const c1 = await commitOne(db, 1);
    expect(await db.retainCheckpoint(c1)).toBe(true);
    for (let i = 2; i < 10; i++) await commitOne(db, i);
    const c2 = await commitOne(db, 10);
    expect(await db.retainCheckpoint(c2)).toBe(true);
    for (let i = 11; i < 20; i++) await commitOne(db, i);
    // both far past the 4-commit window, still servable
    for (const c of [c1, c2]) {
      expect(db.isCheckpoint(c)).toBe(true);
      const proof = await db.rangeProof(c, { keyLimit: 100 });
      expect(() => verifyRangeProof(proof, { root: c, keyLimit: 100 })).not.toThrow();
    }
    const c3 = await commitOne(db, 20);
    await db.retainCheckpoint(c3);
    expect(db.checkpoints().map(toHex)).toEqual([c2, c3].map(toHex));
    await commitOne(db, 21);
    expect(db.isCheckpoint(c1)).toBe(false);
    expect(db.hasRoot(c1)).toBe(false);
    expect(db.hasRoot(c2)).toBe(true);
  });

  it('refuses a root outside the window', async () => {
    const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 2 });
    const old = await commitOne(db, 1);
    for (let i = 2; i < 6; i++) await commitOne(db, i);
    expect(await db.retainCheckpoint(old)).toBe(false);
    expect(db.isCheckpoint(old)).toBe(false);
    expect(db.isCheckpoint(new Uint8Array(32))).toBe(false);
  });

  it('lets the oldest checkpoint go past maxCheckpointRevisions, and says so', async () => {
    const dropped: string[] = [];
    const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 2, maxCheckpointRevisions: 5, onCheckpointDropped: (r) => dropped.push(toHex(r)) });
    const c = await commitOne(db, 1);
    await db.retainCheckpoint(c);
    for (let i = 2; i < 9; i++) await commitOne(db, i);
    expect(db.isCheckpoint(c)).toBe(true);
    expect(db.roots()).toHaveLength(8);
    await commitOne(db, 9);
    expect(dropped).toEqual([toHex(c)]);
    expect(db.isCheckpoint(c)).toBe(false);
    expect(db.roots()).toHaveLength(3);
  });

  it('a reopened database keeps its checkpoints and their revisions', async () => {
    const store = new MemoryStore();
    const db = await MerkleDatabase.open(store, { historySize: 3 });
    const c = await commitOne(db, 1);
    await db.retainCheckpoint(c);
    for (let i = 2; i < 12; i++) await commitOne(db, i);
    const again = await MerkleDatabase.open(store, { historySize: 3 });
    expect(again.isCheckpoint(c)).toBe(true);
    await commitOne(again, 12);
    expect(again.hasRoot(c)).toBe(true);
    const proof = await again.rangeProof(c, { keyLimit: 100 });
    expect(() => verifyRangeProof(proof, { root: c, keyLimit: 100 })).not.toThrow();
  });

  it('a bulk load forgets the checkpoints', async () => {
    const db = await MerkleDatabase.open(new MemoryStore());
    const c = await commitOne(db, 1);
    await db.retainCheckpoint(c);
    await db.commit([{ key: key(0), value: undefined }, { key: key(1), value: undefined }]);
    // the trie is empty again, so a bulk load is allowed
    await db.bulkLoad([{ key: key(7), value: Uint8Array.of(1) }]);
    expect(db.checkpoints()).toEqual([]);
  });
});
