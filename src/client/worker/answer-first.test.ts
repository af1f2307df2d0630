import { afterEach, describe, expect, it, vi } from 'vitest';
import { AnswerFirst } from './answer-first.ts';

describe('AnswerFirst', () => {
  afterEach(() => void vi.useRealTimers());

  const settled = async (p: Promise<void>): Promise<boolean> => {
    let done = false;
    void p.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    return done;
  };

  it.each([
    ['nothing in flight: at once', 0, 0, true],
    ['one in flight: waits', 1, 0, false],
    ['one in flight, then it ends: resolves', 1, 1, true],
    ['two in flight, one ends: waits', 2, 1, false],
    ['two in flight, both end: resolves', 2, 2, true],
  ])('%s', async (_name, begun, ended, expected) => {
    vi.useFakeTimers();
    const a = new AnswerFirst();
    const ends = Array.from({ length: begun }, () => a.begin());
    const idle = a.idle(1_000);
    for (const end of ends.slice(0, ended)) end();
    expect(await settled(idle)).toBe(expected);
  });

  it('waits at most maxMs', async () => {
    vi.useFakeTimers();
    const a = new AnswerFirst();
    a.begin();
    const idle = a.idle(1_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(idle)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(idle)).toBe(true);
  });

  it('an end called twice counts once', async () => {
    vi.useFakeTimers();
    const a = new AnswerFirst();
    const first = a.begin();
    a.begin();
    first();
    first();
    expect(await settled(a.idle(1_000))).toBe(false);
  });
});
