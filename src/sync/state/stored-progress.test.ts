import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../core/bytes.ts';
import { MemoryStore } from '../../core/store.ts';
import { canonicalSegments, decodeSegment, encodeSegment, loadProgress, progressOps, type Segment } from './stored-progress.ts';

const root = (b: number) => new Uint8Array(32).fill(b);
const show = (ss: Segment[]) => ss.map((s) => `${toHex(s.start)}-${s.end ? toHex(s.end) : '∞'}@${s.root ? s.root[0] : '-'}`);

/** Sorted partitions of the key space from cut points and roots. */
const partition = fc
  .tuple(fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { maxLength: 6 }), fc.array(fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), { minLength: 7, maxLength: 7 }))
  .map(([cuts, roots]) => {
    const bounds = [...cuts].sort((a, b) => a - b).map((c) => new Uint8Array([c, 0]));
    const starts = [new Uint8Array(0), ...bounds];
    return starts.map((start, i): Segment => ({ start, end: bounds[i], root: roots[i] === undefined ? undefined : root(roots[i]!) }));
  });

describe('progress', () => {
  it('segments round-trip', () => {
    for (const s of [
      { start: fromHex('12'), end: fromHex('1300'), root: root(7) },
      { start: new Uint8Array(0), end: undefined, root: undefined },
      { start: fromHex('aa'), end: undefined, root: root(1) },
    ]) {
      expect(decodeSegment(s.start, encodeSegment(s))).toEqual(s);
    }
  });

  it.each([
    { name: 'empty', bytes: '' },
    { name: 'unknown flags', bytes: '08' },
    { name: 'truncated end', bytes: '010005aa' },
    { name: 'truncated root', bytes: '02aa' },
    { name: 'trailing bytes', bytes: '0000' },
  ])('rejects a malformed record: $name', ({ bytes }) => {
    expect(() => decodeSegment(new Uint8Array(0), fromHex(bytes))).toThrow(TypeError);
  });

  it('the ops of any change of partition, written, load back as the new partition', async () => {
    await fc.assert(
      fc.asyncProperty(partition, partition, async (a, b) => {
        const store = new MemoryStore();
        const ca = canonicalSegments(a);
        const cb = canonicalSegments(b);
        await store.write(progressOps([], ca, root(9)));
        expect(show((await loadProgress(store)).segments)).toEqual(show(ca));
        await store.write(progressOps(ca, cb, root(8), root(9)));
        const loaded = await loadProgress(store);
        expect(show(loaded.segments)).toEqual(show(cb));
        expect(loaded.target).toEqual(root(8));
      }),
      { seed: 3, numRuns: 100 },
    );
  });

  it('unchanged segments cost no operation', () => {
    const s = canonicalSegments([
      { start: new Uint8Array(0), end: fromHex('4000'), root: root(1) },
      { start: fromHex('4000'), end: undefined, root: undefined },
    ]);
    expect(progressOps(s, s, root(1), root(1))).toEqual([]);
  });

  it('merges neighbours at the same revision only', () => {
    const merged = canonicalSegments([
      { start: new Uint8Array(0), end: fromHex('2000'), root: root(1) },
      { start: fromHex('2000'), end: fromHex('3000'), root: root(1) },
      { start: fromHex('3000'), end: undefined, root: root(2) },
    ]);
    expect(show(merged)).toEqual(['-3000@1', '3000-∞@2']);
  });
});
