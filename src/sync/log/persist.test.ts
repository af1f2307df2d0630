import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { Mmr, pinnedNodes } from '../../core/mmr.ts';
import { MemoryStore } from '../../core/store.ts';
import { CorruptLogStore, decodeRun, encodeRun, LogStore, MmrFrontier, operationKey } from './persist.ts';

const op = (i: number): Uint8Array => sha256(new TextEncoder().encode(`persist op ${i}`));

describe('MmrFrontier', () => {
  it('rebuilds the same root as Mmr after every append, from empty and from pinned nodes', () => {
    const mmr = new Mmr();
    const empty = MmrFrontier.fromPeaks(0, []);
    expect(toHex(empty.root())).toBe(toHex(mmr.root()));
    for (let i = 0; i < 70; i++) {
      mmr.append(op(i));
      empty.append(op(i));
      expect(toHex(empty.root())).toBe(toHex(mmr.root()));
    }
    for (const lower of [1, 2, 3, 7, 8, 33, 64]) {
      const f = MmrFrontier.fromPeaks(lower, pinnedNodes(mmr, lower));
      for (let i = lower; i < 70; i++) f.append(op(i));
      expect(toHex(f.root())).toBe(toHex(mmr.root()));
      expect(f.peaks().map(toHex)).toEqual(mmr.peakDigests().map(toHex));
    }
  });

  it('refuses a peak count that does not fit the leaf count', () => {
    expect(() => MmrFrontier.fromPeaks(3, [new Uint8Array(32)])).toThrow(RangeError);
    expect(() => MmrFrontier.fromPeaks(1, [new Uint8Array(31)])).toThrow(RangeError);
  });
});

describe('LogStore', () => {
  it('writes operations with their progress, reads them back, resumes and clears', async () => {
    const store = new MemoryStore();
    const log = new LogStore(store);
    expect(await log.run()).toBeUndefined();
    const mmr = new Mmr();
    for (let i = 0; i < 20; i++) mmr.append(op(i));
    const f = MmrFrontier.fromPeaks(5, pinnedNodes(mmr, 5));
    const batch = [5, 6, 7, 8].map(op);
    batch.forEach((o) => f.append(o));
    await log.append(5, 5, batch, f);
    expect(await log.run()).toEqual({ lower: 5, next: 9, frontier: pinnedNodes(mmr, 9) });
    const resumed = MmrFrontier.fromPeaks(9, (await log.run())!.frontier);
    resumed.append(op(9));
    await log.append(5, 9, [op(9)], resumed);
    const read: string[] = [];
    for await (const [i, b] of log.read(6, 10)) read.push(`${i}:${toHex(b)}`);
    expect(read).toEqual([6, 7, 8, 9].map((i) => `${i}:${toHex(op(i))}`));
    await expect(log.append(5, 10, [op(10), op(11)], resumed)).rejects.toThrow(RangeError); // frontier not past the batch
    await log.clear(2);
    expect(await log.run()).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('a gap in the stored operations is CorruptLogStore, not a short read', async () => {
    const store = new MemoryStore();
    await store.write([0, 1, 3].map((i) => ({ type: 'put' as const, key: operationKey(i), value: op(i) })));
    const read = async () => {
      for await (const _ of new LogStore(store).read(0, 4)) void _;
    };
    await expect(read()).rejects.toBeInstanceOf(CorruptLogStore);
  });

  const hostile: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['wrong version', Uint8Array.of(2, ...new Uint8Array(17))],
    ['lower after next', encodeRun({ lower: 2, next: 1, frontier: [new Uint8Array(32)] })],
    ['peak count not popcount(next)', encodeRun({ lower: 0, next: 3, frontier: [new Uint8Array(32)] })],
    ['truncated digest', encodeRun({ lower: 0, next: 1, frontier: [new Uint8Array(32)] }).subarray(0, 40)],
    ['trailing byte', Uint8Array.of(...encodeRun({ lower: 0, next: 1, frontier: [new Uint8Array(32)] }), 0)],
  ];
  for (const [name, bytes] of hostile) {
    it(`progress record: ${name} is CorruptLogStore`, () => {
      expect(() => decodeRun(bytes)).toThrow(CorruptLogStore);
    });
  }
});
