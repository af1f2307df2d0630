import { describe, expect, it } from 'vitest';
import { RwLock } from './rwlock.ts';
import { MerkleDatabase } from './database.ts';
import { MemoryStore } from './store.ts';
import { verifyRangeProof } from './proof.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('RwLock', () => {
  it('lets readers share, holds a writer until they finish, and queues readers behind a waiting writer', async () => {
    const lock = new RwLock();
    const log: string[] = [];
    let release1!: () => void;
    const r1 = lock.read(() => new Promise<void>((r) => (release1 = () => { log.push('r1 done'); r(); })));
    const r2 = lock.read(async () => void log.push('r2'));
    await r2;
    const w = lock.write(async () => void log.push('w'));
    const r3 = lock.read(async () => void log.push('r3'));
    await tick();
    expect(log).toEqual(['r2']);
    release1();
    await Promise.all([r1, w, r3]);
    expect(log).toEqual(['r2', 'r1 done', 'w', 'r3']);
  });

  it('readers share, a writer waits for them and excludes new readers', async () => {
    const lock = new RwLock();
    const events: string[] = [];
    const g1 = gate();
    const g2 = gate();
    const r1 = lock.read(async () => {
      events.push('r1 start');
      await g1.promise;
      events.push('r1 end');
    });
    const r2 = lock.read(async () => {
      events.push('r2 start');
      await g2.promise;
      events.push('r2 end');
    });
    const w = lock.write(async () => {
      events.push('w');
    });
    const r3 = lock.read(async () => {
      events.push('r3');
    });
    await Promise.resolve();
    expect(events).toEqual(['r1 start', 'r2 start']);
    g1.open();
    g2.open();
    await Promise.all([r1, r2, w, r3]);
    expect(events).toEqual(['r1 start', 'r2 start', 'r1 end', 'r2 end', 'w', 'r3']);
  });

  it('writers are exclusive and run in order; errors release the lock', async () => {
    const lock = new RwLock();
    const events: number[] = [];
    const ws = [1, 2, 3].map((i) =>
      lock.write(async () => {
        events.push(i);
        await Promise.resolve();
        events.push(-i);
        if (i === 2) throw new Error('boom');
      }),
    );
    const results = await Promise.allSettled(ws);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(events).toEqual([1, -1, 2, -2, 3, -3]);
    expect(await lock.read(async () => 'ok')).toBe('ok');
  });
});

describe('MerkleDatabase under concurrent commits', () => {
  it('serves proofs that verify while a writer commits', async () => {
    const db = await MerkleDatabase.open(new MemoryStore());
    await db.commit(Array.from({ length: 300 }, (_, i) => ({ key: new Uint8Array([i & 255, i >> 8]), value: new Uint8Array([i]) })));
    const writes = (async () => {
      for (let n = 0; n < 30; n++) await db.commit([{ key: new Uint8Array([n, 9]), value: new Uint8Array([n, n]) }]);
    })();
    const reads = (async () => {
      for (let n = 0; n < 30; n++) {
        const root = db.root;
        const proof = await db.rangeProof(root, { keyLimit: 50 });
        verifyRangeProof(proof, { root, keyLimit: 50 });
      }
    })();
    await Promise.all([writes, reads]);
    expect(db.revision).toBeGreaterThan(30);
  });
});
