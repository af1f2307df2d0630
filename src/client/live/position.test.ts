import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../core/store.ts';
import { loadProgress, progressOps } from '../../sync/state/stored-progress.ts';
import { EMPTY_KEY } from '../../sync/state/ranges.ts';
import { advanceProgress, decodePosition, encodePosition, loadPosition, positionHolds, positionOps, type LivePosition } from './position.ts';

const r = (b: number) => new Uint8Array(32).fill(b);

describe('live position record', () => {
  const cases: [string, LivePosition][] = [
    ['no delta yet, seq unknown', { root: r(1), heads: [], logSize: 0, seq: undefined }],
    ['one head, seq 0', { root: r(2), heads: [r(3)], logSize: 7, seq: 0 }],
    ['merge heads, large numbers', { root: r(4), heads: [r(5), r(6)], logSize: 2 ** 40 + 3, seq: 2 ** 50 }],
  ];
  for (const [name, p] of cases) {
    it(`round-trips: ${name}`, () => {
      expect(decodePosition(encodePosition(p))).toEqual(p);
    });
  }

  it('rejects malformed records', () => {
    const good = encodePosition(cases[1][1]);
    expect(() => decodePosition(good.slice(0, 50))).toThrow(TypeError);
    expect(() => decodePosition(good.slice(0, good.length - 1))).toThrow(/head count/);
    expect(() => decodePosition(Uint8Array.of(2, ...good.slice(1)))).toThrow(TypeError);
  });

  it('holds only when every stored segment stands at its root', async () => {
    const store = new MemoryStore();
    const p: LivePosition = { root: r(9), heads: [], logSize: 0, seq: 1 };
    expect(positionHolds(p, await loadProgress(store))).toBe(false);
    await store.write([...positionOps(p), ...progressOps([], [{ start: EMPTY_KEY, end: Uint8Array.of(5), root: r(9) }, { start: Uint8Array.of(5), end: undefined, root: r(8) }], r(9))]);
    expect(positionHolds(await loadPosition(store), await loadProgress(store))).toBe(false);
    const progress = await loadProgress(store);
    await store.write(progressOps(progress.segments, [{ start: EMPTY_KEY, end: undefined, root: r(9) }], r(9), progress.target));
    expect(positionHolds(await loadPosition(store), await loadProgress(store))).toBe(true);
  });

  it('advanceProgress moves every segment and the target to the new root', async () => {
    const store = new MemoryStore();
    const ranges = [
      { start: Uint8Array.of(1), end: Uint8Array.of(2), root: r(1) },
      { start: Uint8Array.of(7), end: undefined, root: r(1) },
    ];
    await store.write(progressOps([], ranges, r(1)));
    const { ops, next } = advanceProgress(await loadProgress(store), r(2));
    await store.write(ops);
    expect(await loadProgress(store)).toEqual(next);
    expect(next.segments.map((s) => s.root)).toEqual([r(2), r(2)]);
    expect(next.target).toEqual(r(2));
  });
});
