/** The `follow` record's codec: a round trip at the bounds, and every malformed length refused. */
import { describe, expect, it } from 'vitest';
import { decodeFollow, encodeFollow, type FollowRecord } from './follow-record.ts';

const h = (n: number) => new Uint8Array(32).fill(n);

describe('follow record', () => {
  const rows: [string, FollowRecord][] = [
    ['no heads (genesis), log 0', { root: h(1), heads: [], logSize: 0 }],
    ['one head', { root: h(2), heads: [h(3)], logSize: 12345 }],
    ['255 heads, a large log', { root: h(4), heads: Array.from({ length: 255 }, (_, i) => h(i)), logSize: 2 ** 40 }],
  ];
  for (const [name, r] of rows) {
    it(`round trip: ${name}`, () => {
      expect(decodeFollow(encodeFollow(r))).toEqual(r);
    });
  }

  it('more than 255 heads cannot be encoded', () => {
    expect(() => encodeFollow({ root: h(1), heads: Array.from({ length: 256 }, () => h(0)), logSize: 1 })).toThrow('expected at most 255 heads, got 256');
  });

  it('a truncated, padded or short record is refused', () => {
    const good = encodeFollow({ root: h(1), heads: [h(2), h(3)], logSize: 7 });
    for (const bad of [good.subarray(0, 40), good.subarray(0, good.length - 1), Uint8Array.of(...good, 0), new Uint8Array(0)]) {
      expect(() => decodeFollow(bad)).toThrow('malformed follow record');
    }
  });
});
