import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { compareBytes, fromHex } from '../../core/bytes.ts';
import { encodePage, type Entry, Page, pageSize } from './page.ts';

const sortedEntries = fc
  .uniqueArray(fc.tuple(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 8 })), {
    selector: ([k]) => Array.from(k).join(','),
    maxLength: 40,
  })
  .map((es) => es.sort((a, b) => compareBytes(a[0], b[0])) as Entry[]);

describe('page format', () => {
  test('layout of a two-entry page, byte for byte', () => {
    const bytes = encodePage([
      [fromHex('01'), fromHex('aabb')],
      [fromHex('0203'), new Uint8Array(0)],
    ]);
    // format, reserved, count=2, offsets [0,1,3,5,5], data
    expect(Array.from(bytes)).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 0x01, 0xaa, 0xbb, 0x02, 0x03]);
    expect(bytes.length).toBe(pageSize(2, 5));
  });

  test('any sorted entries round-trip', () => {
    fc.assert(
      fc.property(sortedEntries, (entries) => {
        const page = new Page(encodePage(entries));
        expect(page.count).toBe(entries.length);
        expect(page.entries().map(([k, v]) => [Array.from(k), Array.from(v)])).toEqual(entries.map(([k, v]) => [Array.from(k), Array.from(v)]));
      }),
    );
  });

  test('binary search agrees with a linear scan for any probe', () => {
    fc.assert(
      fc.property(sortedEntries, fc.uint8Array({ maxLength: 7 }), (entries, probe) => {
        const page = new Page(encodePage(entries));
        const lower = entries.findIndex(([k]) => compareBytes(k, probe) >= 0);
        const upper = entries.findIndex(([k]) => compareBytes(k, probe) > 0);
        expect(page.lowerBound(probe)).toBe(lower < 0 ? entries.length : lower);
        expect(page.upperBound(probe)).toBe(upper < 0 ? entries.length : upper);
        const at = entries.findIndex(([k]) => compareBytes(k, probe) === 0);
        expect(page.indexOf(probe)).toBe(at);
        for (let i = 0; i < entries.length; i++) expect(Math.sign(page.compareAt(i, probe))).toBe(Math.sign(compareBytes(entries[i][0], probe)));
      }),
    );
  });

  test('a key that is a prefix of another sorts first', () => {
    const page = new Page(encodePage([[fromHex('ab'), fromHex('01')], [fromHex('ab00'), fromHex('02')]]));
    expect(page.indexOf(fromHex('ab'))).toBe(0);
    expect(page.indexOf(fromHex('ab00'))).toBe(1);
    expect(page.lowerBound(fromHex('ab00'))).toBe(1);
    expect(page.indexOf(new Uint8Array(0))).toBe(-1);
  });

  test('a page decoded from a view at an offset reads the right bytes', () => {
    const inner = encodePage([[fromHex('10'), fromHex('20')]]);
    const outer = new Uint8Array(inner.length + 5);
    outer.set(inner, 3);
    const page = new Page(outer.subarray(3, 3 + inner.length));
    expect(Array.from(page.valueAt(0))).toEqual([0x20]);
  });
});

// Damaged records: each must be rejected with StorageCorrupted, never read out of bounds.
const good = encodePage([[fromHex('01'), fromHex('aabb')], [fromHex('0203'), fromHex('cc')]]);
const patch = (at: number, bytes: number[]) => {
  const b = good.slice();
  b.set(bytes, at);
  return b;
};
const HOSTILE: Array<{ name: string; bytes: Uint8Array }> = [
  { name: 'empty record', bytes: new Uint8Array(0) },
  { name: 'header only', bytes: good.subarray(0, 8) },
  { name: 'unknown format byte', bytes: patch(0, [2]) },
  { name: 'count far beyond the record', bytes: patch(4, [0xff, 0xff, 0xff, 0x7f]) },
  { name: 'count one too many', bytes: patch(4, [3]) },
  { name: 'offset goes backwards', bytes: patch(16, [0]) },
  { name: 'end offset past the data', bytes: patch(24, [9]) },
  { name: 'end offset short of the data', bytes: patch(24, [5]) },
  { name: 'trailing garbage', bytes: new Uint8Array([...good, 0]) },
  { name: 'truncated data', bytes: good.subarray(0, good.length - 1) },
];

describe('hostile page records', () => {
  test.each(HOSTILE)('$name', ({ bytes }) => {
    expect(() => new Page(bytes)).toThrowError(expect.objectContaining({ name: 'StorageCorrupted' }));
  });

  test('random bytes never decode into out-of-range views', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        let page: Page;
        try {
          page = new Page(bytes);
        } catch (err) {
          expect((err as Error).name).toBe('StorageCorrupted');
          return;
        }
        for (let i = 0; i < page.count; i++) {
          expect(page.keyAt(i).byteOffset + page.keyAt(i).length).toBeLessThanOrEqual(bytes.byteOffset + bytes.length);
          expect(page.valueAt(i).byteOffset + page.valueAt(i).length).toBeLessThanOrEqual(bytes.byteOffset + bytes.length);
        }
      }),
    );
  });
});
