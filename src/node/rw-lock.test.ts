import { describe, expect, it } from 'vitest';
import { RwLock } from './rw-lock.ts';

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('RwLock', () => {
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
