import { describe, expect, it } from 'vitest';
import { stopWithin, type StopOverrun } from './stop-deadline.ts';

describe('stopWithin', () => {
  it('resolves with the part when it stops in time, reporting nothing', async () => {
    const overruns: StopOverrun[] = [];
    await stopWithin('fast', Promise.resolve(), 1_000, (o) => overruns.push(o));
    expect(overruns).toEqual([]);
  });

  it('resolves at the deadline when the part never stops, and reports the overrun', async () => {
    const overruns: StopOverrun[] = [];
    await stopWithin('stuck', new Promise<void>(() => {}), 20, (o) => overruns.push(o));
    expect(overruns).toEqual([{ part: 'stuck', timeoutMs: 20 }]);
  });

  it('reports a part that fails to stop with its error, without throwing', async () => {
    const seen: unknown[] = [];
    await stopWithin('broken', Promise.reject(new Error('boom')), 1_000, (_, err) => seen.push(err));
    expect((seen[0] as Error).message).toBe('boom');
  });

  it('a part that fails after its deadline is no unhandled rejection', async () => {
    let fail!: (e: Error) => void;
    const late = new Promise<void>((_, reject) => (fail = reject));
    await stopWithin('late', late, 10, () => {});
    fail(new Error('too late'));
    await new Promise((r) => setTimeout(r, 10));
  });
});
