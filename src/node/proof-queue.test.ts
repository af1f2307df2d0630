import { describe, expect, it } from 'vitest';
import { ProofQueue } from './proof-queue.ts';

/** A task the test finishes by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe('ProofQueue', () => {
  it('starts at most `concurrency` requests, the rest in arrival order', async () => {
    const q = new ProofQueue(2);
    const started: number[] = [];
    const tasks = [0, 1, 2, 3, 4].map(() => deferred());
    const done = tasks.map((t, i) =>
      q.run(async () => {
        started.push(i);
        await t.promise;
        return i;
      }),
    );
    await ticks();
    expect(started).toEqual([0, 1]);
    expect(q.waiting).toBe(3);
    tasks[1].resolve();
    await ticks();
    expect(started).toEqual([0, 1, 2]);
    tasks[0].resolve();
    await ticks();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const t of tasks) t.resolve();
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3, 4]);
    expect(q.running).toBe(0);
    expect(q.waiting).toBe(0);
  });

  it('a failed request passes its turn on and rejects with its error', async () => {
    const q = new ProofQueue(1);
    const first = deferred();
    const a = q.run(() => first.promise);
    const b = q.run(async () => 'b');
    first.reject(new Error('no such root'));
    await expect(a).rejects.toThrow('no such root');
    await expect(b).resolves.toBe('b');
    expect(q.running).toBe(0);
  });

  it('rejects a concurrency below one', () => {
    expect(() => new ProofQueue(0)).toThrow('expected concurrency >= 1, got 0');
  });
});
