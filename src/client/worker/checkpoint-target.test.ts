import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { MemoryStore } from '../../core/store.ts';
import { syncState } from '../../sync/state/driver.ts';
import { MemoryStateSource } from '../../sync/state/memory-source.ts';
import { randomPuts, seededRandom } from '../../sync/state/testing.ts';
import { checkpointTarget } from './checkpoint-target.ts';

async function writerDb(): Promise<MerkleDatabase> {
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.commit(randomPuts(seededRandom(3), 3000));
  return db;
}

describe('checkpointTarget', () => {
  it('a fresh store goes to the checkpoint; without one, or once synced, to the head', async () => {
    const db = await writerDb();
    const checkpoint = { seq: 3, root: db.root };
    const head = new Uint8Array(32).fill(9);
    const store = new MemoryStore();
    expect(toHex((await checkpointTarget(store, { checkpoint, stateRoot: head }))!)).toBe(toHex(db.root));
    expect(await checkpointTarget(store, { stateRoot: head })).toBeUndefined();
    await syncState({ store, sources: [new MemoryStateSource('a', db)], target: db.root });
    expect(await checkpointTarget(store, { checkpoint, stateRoot: head })).toBeUndefined();
  });

  it('a first sync cut off part way resumes at the checkpoint', async () => {
    const db = await writerDb();
    const store = new MemoryStore();
    const stop = new AbortController();
    await expect(
      syncState({
        store,
        sources: [new MemoryStateSource('a', db)],
        target: db.root,
        canonicalRoot: db.root,
        concurrency: 1,
        signal: stop.signal,
        onProgress: (p) => void (p.keyValuesReceived > 0 && stop.abort(new Error('reload'))),
      }),
    ).rejects.toThrow('reload');
    expect(toHex((await checkpointTarget(store, { checkpoint: { seq: 1, root: db.root }, stateRoot: new Uint8Array(32) }))!)).toBe(toHex(db.root));
  });
});
