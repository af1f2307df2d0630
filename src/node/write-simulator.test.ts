import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KeyChange } from '../core/types.ts';
import { BatchGenerator } from './generate.ts';
import { startWriteSimulator } from './write-simulator.ts';

describe('startWriteSimulator', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('commits the seeded batches, one per tick', async () => {
    const seen: KeyChange[][] = [];
    const stop = startWriteSimulator({ perSec: 10, seed: 5, commit: async (c) => seen.push(c), stopping: () => false, log: () => {} });
    await vi.advanceTimersByTimeAsync(300);
    stop();
    const expected = new BatchGenerator(5);
    expect(seen).toEqual([expected.next(), expected.next(), expected.next()]);
  });

  it('starts no commit while one is in flight: the rate is an upper bound, not a queue', async () => {
    let started = 0;
    let finish!: () => void;
    const commit = (): Promise<void> => {
      started++;
      return new Promise<void>((resolve) => (finish = resolve));
    };
    const stop = startWriteSimulator({ perSec: 10, seed: 1, commit, stopping: () => false, log: () => {} });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(started).toBe(1);
    finish();
    await vi.advanceTimersByTimeAsync(100);
    expect(started).toBe(2);
    stop();
  });

  it('starts nothing once the node is stopping, and nothing after its stop call', async () => {
    let stopping = false;
    let commits = 0;
    const stop = startWriteSimulator({ perSec: 10, seed: 1, commit: async () => commits++, stopping: () => stopping, log: () => {} });
    await vi.advanceTimersByTimeAsync(100);
    expect(commits).toBe(1);
    stopping = true;
    await vi.advanceTimersByTimeAsync(500);
    expect(commits).toBe(1);
    stopping = false;
    stop();
    await vi.advanceTimersByTimeAsync(500);
    expect(commits).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('logs a failed commit and keeps going', async () => {
    const lines: string[] = [];
    let calls = 0;
    const commit = async (): Promise<void> => {
      calls++;
      if (calls === 1) throw new Error('the node is stopping');
    };
    const stop = startWriteSimulator({ perSec: 10, seed: 1, commit, stopping: () => false, log: (l) => lines.push(l) });
    await vi.advanceTimersByTimeAsync(200);
    stop();
    expect(lines).toEqual(['simulated write failed: the node is stopping']);
    expect(calls).toBe(2);
  });
});
