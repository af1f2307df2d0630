import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import { boundaryBefore, fromInclusive, isBoundary, normaliseRanges, prefixRange, requestEnd, splitPoint } from './ranges.ts';

const h = (s: string | undefined) => (s === undefined ? undefined : fromHex(s));
const hx = (b: Uint8Array | undefined) => (b === undefined ? undefined : toHex(b));

describe('ranges', () => {
  it.each([
    { name: 'already a boundary', next: '1300', last: '12', out: '1300' },
    { name: 'just below a whole byte', next: '13', last: '12', out: '12ff00' },
    { name: 'a zero-padded half byte', next: '1230', last: '1201', out: '122fff00' },
    { name: 'last is closer than the near key', next: '13', last: '12ffff', out: '12ffff00' },
  ])('boundaryBefore: $name', ({ next, last, out }) => {
    const b = boundaryBefore(fromHex(next), fromHex(last));
    expect(toHex(b)).toBe(out);
  });

  it('boundaryBefore lies in (last, next] and is a boundary', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5 }), fc.uint8Array({ minLength: 1, maxLength: 5 }), (last, next) => {
        fc.pre(compareBytes(next, last) > 0);
        const b = boundaryBefore(next, last);
        return isBoundary(b) && compareBytes(b, last) > 0 && compareBytes(b, next) <= 0;
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it.each([
    { name: 'whole key space: just below the subtree at 7f', start: '', end: undefined, mid: '7effffffff00' },
    { name: 'left half (midpoint 3f7fffffff80)', start: '', end: '7effffffff00', mid: '3f7fffffff7fffffffff00' },
    { name: 'a borrow (midpoint 020000)', start: '01ff', end: '020100', mid: '01ffffffffffff00' },
    { name: 'an all-zero midpoint (00) has nothing below: midpoint ++ 00', start: '', end: '000000', mid: '0000' },
    { name: 'nothing fits', start: '12', end: '1200', mid: undefined },
    { name: 'empty range', start: '12', end: '12', mid: undefined },
  ])('splitPoint: $name', ({ start, end, mid }) => {
    expect(hx(splitPoint({ start: fromHex(start), end: h(end) }))).toBe(mid);
  });

  it('splitPoint is a boundary strictly inside the range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4 }), fc.option(fc.uint8Array({ maxLength: 4 }), { nil: undefined }), (start, e) => {
        const end = e === undefined ? undefined : Uint8Array.from([...e, 0]);
        fc.pre(end === undefined || compareBytes(start, end) < 0);
        const m = splitPoint({ start, end });
        if (m === undefined) return true;
        return isBoundary(m) && compareBytes(start, m) < 0 && (end === undefined || compareBytes(m, end) < 0);
      }),
      { seed: 8, numRuns: 300 },
    );
  });

  it.each([
    { prefix: '12', start: '12', end: '13' },
    { prefix: '12ff', start: '12ff', end: '13' },
    { prefix: 'ff', start: 'ff', end: undefined },
    { prefix: '', start: '', end: undefined },
  ])('prefixRange($prefix) = [$start, $end]', ({ prefix, start, end }) => {
    const r = prefixRange(fromHex(prefix));
    expect([hx(r.start), hx(r.end)]).toEqual([start, end]);
  });

  it('inclusive ranges become half-open at end ++ 00; request ends strip it', () => {
    const r = fromInclusive({ start: fromHex('20'), end: fromHex('3fff') });
    expect(hx(r.end)).toBe('3fff00');
    expect(hx(requestEnd(r.end))).toBe('3fff');
    expect(requestEnd(undefined)).toBeUndefined();
    expect(() => requestEnd(fromHex('13'))).toThrow(RangeError);
    expect(() => fromInclusive({ start: fromHex('30'), end: fromHex('20') })).toThrow(RangeError);
  });

  it('normaliseRanges merges overlapping and touching ranges', () => {
    const out = normaliseRanges([
      { start: fromHex('30'), end: fromHex('4000') },
      { start: fromHex('10'), end: fromHex('2000') },
      { start: fromHex('2000'), end: fromHex('2500') },
      { start: fromHex('35'), end: undefined },
    ]);
    expect(out.map((r) => [hx(r.start), hx(r.end)])).toEqual([
      ['10', '2500'],
      ['30', undefined],
    ]);
  });
});
