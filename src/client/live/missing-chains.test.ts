import { describe, expect, it } from 'vitest';
import { MissingChains } from './missing-chains.ts';

const id = (n: number) => {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const delta = (n: number, parents: number[], logIndex: number) => ({ id: id(n), parents: parents.map(id), logIndex });

describe('MissingChains', () => {
  const cases: { name: string; abandon: { n: number; below?: number }[]; covered?: number; delta: ReturnType<typeof delta>; hangs: boolean }[] = [
    { name: 'a delta on a remembered ancestor hangs on the chain', abandon: [{ n: 1 }], delta: delta(2, [1], 10), hangs: true },
    { name: 'a delta with one remembered parent among others hangs', abandon: [{ n: 1 }], delta: delta(2, [0, 1], 10), hangs: true },
    { name: 'a delta on other parents does not', abandon: [{ n: 1 }], delta: delta(2, [3], 10), hangs: false },
    { name: 'an entry below the covered log size is forgotten', abandon: [{ n: 1, below: 5 }], covered: 5, delta: delta(2, [1], 10), hangs: false },
    { name: 'an entry above the covered log size stays', abandon: [{ n: 1, below: 6 }], covered: 5, delta: delta(2, [1], 10), hangs: true },
    { name: 'an entry of unknown log index stays', abandon: [{ n: 1 }], covered: 1_000_000, delta: delta(2, [1], 10), hangs: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = new MissingChains();
      m.abandon(c.abandon.map((a) => ({ id: id(a.n), below: a.below })));
      if (c.covered !== undefined) m.covered(c.covered);
      expect(m.hangs(c.delta)).toBe(c.hangs);
    });
  }

  it('the chain grows with each delta hung on it: an attacker extending it is dropped at once', () => {
    const m = new MissingChains();
    m.abandon([{ id: id(1) }]);
    for (let i = 2; i < 100; i++) expect(m.hangs(delta(i, [i - 1], 1000 + i))).toBe(true);
    expect(m.has(id(99))).toBe(true);
  });

  it('a delta hung on the chain is forgotten once its own log index is covered', () => {
    const m = new MissingChains();
    m.abandon([{ id: id(1) }]);
    m.hangs(delta(2, [1], 10));
    m.covered(11);
    expect(m.has(id(2))).toBe(false);
    expect(m.has(id(1))).toBe(true);
  });

  it('memory is bounded: the least recently touched go first', () => {
    const m = new MissingChains({ maxIds: 100 });
    m.abandon(Array.from({ length: 100_000 }, (_, i) => ({ id: id(i) })));
    expect(m.size).toBe(100);
    expect(m.has(id(99_999))).toBe(true);
    expect(m.has(id(0))).toBe(false);
  });

  it('clear forgets everything', () => {
    const m = new MissingChains();
    m.abandon([{ id: id(1) }]);
    m.clear();
    expect(m.size).toBe(0);
  });

  it('refuses a nonsense bound', () => {
    expect(() => new MissingChains({ maxIds: 0 })).toThrow(RangeError);
  });
});
