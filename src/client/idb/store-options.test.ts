import { describe, expect, test } from 'vitest';
import { resolveStoreOptions, type PackedIdbStoreOptions } from './store-options.ts';

describe('resolveStoreOptions', () => {
  test('defaults; the page size stays open for the database to decide', () => {
    expect(resolveStoreOptions({})).toEqual({ pageBytes: undefined, cacheBytes: 16 * 1024 * 1024, durability: 'relaxed', logBytes: 48 * 1024 * 1024, compactPages: 64, logAmplification: 4 });
  });

  test('given values are kept', () => {
    const o: PackedIdbStoreOptions = { pageBytes: 512, cacheBytes: 0, durability: 'strict', logBytes: 0, compactPages: 1, logAmplification: 0 };
    expect(resolveStoreOptions(o)).toEqual(o);
  });

  test.each([
    { name: 'pageBytes below 256', o: { pageBytes: 255 }, message: 'expected pageBytes to be an integer >= 256, got 255' },
    { name: 'fractional pageBytes', o: { pageBytes: 300.5 }, message: 'expected pageBytes to be an integer >= 256, got 300.5' },
    { name: 'negative logBytes', o: { logBytes: -1 }, message: 'expected logBytes >= 0, got -1' },
    { name: 'NaN logBytes', o: { logBytes: NaN }, message: 'expected logBytes >= 0, got NaN' },
    { name: 'zero compactPages', o: { compactPages: 0 }, message: 'expected compactPages to be an integer >= 1, got 0' },
    { name: 'negative logAmplification', o: { logAmplification: -2 }, message: 'expected logAmplification >= 0, got -2' },
  ])('$name: RangeError', ({ o, message }) => {
    expect(() => resolveStoreOptions(o)).toThrow(new RangeError(message));
  });
});
