import { describe, expect, it } from 'vitest';
import { PeerFillBudget } from './fill-budget.ts';

describe('PeerFillBudget', () => {
  const cases: { name: string; spends: [peer: string, ids: number, at: number][]; ask: [peer: string, at: number]; exhausted: boolean }[] = [
    { name: 'a fresh peer has its budget', spends: [], ask: ['a', 0], exhausted: false },
    { name: 'under the budget', spends: [['a', 999, 0]], ask: ['a', 1], exhausted: false },
    { name: 'at the budget', spends: [['a', 600, 0], ['a', 400, 10]], ask: ['a', 20], exhausted: true },
    { name: 'another peer is not charged', spends: [['a', 1000, 0]], ask: ['b', 1], exhausted: false },
    { name: 'the window ends', spends: [['a', 1000, 0]], ask: ['a', 60_000], exhausted: false },
    { name: 'a new window starts with the next spend', spends: [['a', 1000, 0], ['a', 10, 60_000]], ask: ['a', 60_001], exhausted: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const b = new PeerFillBudget({ maxIds: 1000, windowMs: 60_000 });
      for (const [peer, ids, at] of c.spends) b.spend(peer, ids, at);
      expect(b.exhausted(...c.ask)).toBe(c.exhausted);
    });
  }

  it('remembers at most maxPeers peers', () => {
    const b = new PeerFillBudget({ maxIds: 1, maxPeers: 2 });
    for (const p of ['a', 'b', 'c']) b.spend(p, 1, 0);
    expect(b.exhausted('a', 1)).toBe(false);
    expect(b.exhausted('c', 1)).toBe(true);
  });

  it('refuses nonsense bounds', () => {
    expect(() => new PeerFillBudget({ maxIds: -1 })).toThrow(RangeError);
    expect(() => new PeerFillBudget({ maxIds: 1, windowMs: 0 })).toThrow(RangeError);
  });
});
