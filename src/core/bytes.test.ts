import { describe, expect, it } from 'vitest';
import { fromHex, inKeyRange } from './bytes.ts';

describe('inKeyRange', () => {
  const h = (x: string | undefined) => (x === undefined ? undefined : fromHex(x));
  const cases: [string, string, string | undefined, string | undefined, boolean][] = [
    ['no bounds', '05', undefined, undefined, true],
    ['at the start (inclusive)', '05', '05', undefined, true],
    ['at the end (inclusive)', '05', undefined, '05', true],
    ['before the start', '04', '05', undefined, false],
    ['after the end', '06', undefined, '05', false],
    ['a prefix of the start sorts before it', '05', '0500', '06', false],
    ['an extension of the end sorts after it', '0500', '01', '05', false],
    ['the empty key with an empty start', '', '', '00', true],
    ['inside both bounds', '0a0b', '0a', '0b', true],
  ];
  it.each(cases)('%s', (_, key, start, end, want) => {
    expect(inKeyRange(fromHex(key), h(start), h(end))).toBe(want);
  });
});
