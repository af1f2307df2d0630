import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { midpoint } from './midpoint.ts';
import { compareBytes, fromHex, toHex } from './bytes.ts';

const hex = (h: string | undefined) => (h === undefined ? undefined : fromHex(h));

// docs/sync.md#midpoint (the same as AvalancheGo database/merkle/sync/sync_test.go Test_Midpoint).
const SPEC_VECTORS: Array<{ name: string; start?: string; end?: string; mid: string }> = [
  { name: 'carry into the first byte', start: '01ff', end: '0201', mid: '0200' },
  { name: 'absent start, odd last byte', end: 'ffff00', mid: '7fff80' },
  { name: 'absent start, odd sum adds 7f', end: 'ff', mid: '7f7f' },
  { name: 'wide range', start: '01ff', end: 'ff01', mid: '8080' },
  { name: 'adjacent two-byte keys', start: '8cff', end: '8d00', mid: '8cff7f' },
  { name: 'shorter end', start: '7eff', end: '7f', mid: '7eff7f' },
  { name: 'both absent', mid: '7f' },
  { name: 'absent start, end 7f', end: '7f', mid: '3f7f' },
  { name: 'start 7f, absent end', start: '7f', mid: 'bf' },
  { name: 'start ffff, absent end: extra byte', start: 'ffff', mid: 'ffff7f7f' },
  { name: 'start ff, absent end: extra byte', start: 'ff', mid: 'ff7f7f' },
];

// Cases around "no key fits" (not in the spec table; the reasoning is in midpoint.ts).
const EDGE_VECTORS: Array<{ name: string; start?: string; end?: string; mid: string }> = [
  { name: 'end = start ++ 00: nothing between, returns end', start: '01', end: '0100', mid: '0100' },
  { name: 'absent start, end 00: nothing between, returns end', end: '00', mid: '00' },
  { name: 'absent start, empty end: returns end', end: '', mid: '' },
  { name: 'start = end: returns end', start: 'abcd', end: 'abcd', mid: 'abcd' },
  { name: 'end = start ++ 00 00: start ++ 00 (upstream returns end)', start: '01', end: '010000', mid: '0100' },
  { name: 'absent start, end 0000: 00', end: '0000', mid: '00' },
  { name: 'empty start, end 0001', start: '', end: '0001', mid: '00007f' },
  { name: 'start ends ff, end ends ff: extra byte (upstream rule)', start: '01ff', end: '02ff', mid: '027f00' },
];

describe('midpoint: spec vectors', () => {
  for (const v of SPEC_VECTORS) {
    test(v.name, () => {
      expect(toHex(midpoint(hex(v.start), hex(v.end)))).toBe(v.mid);
    });
  }
});

describe('midpoint: edge vectors', () => {
  for (const v of EDGE_VECTORS) {
    test(v.name, () => {
      expect(toHex(midpoint(hex(v.start), hex(v.end)))).toBe(v.mid);
    });
  }
  test('start after end is a RangeError (upstream test feeds ffffff, ffff)', () => {
    expect(() => midpoint(fromHex('ffffff'), fromHex('ffff'))).toThrow(RangeError);
  });
  test('does not alias its inputs', () => {
    const end = fromHex('0100');
    const mid = midpoint(fromHex('01'), end);
    mid[0] = 9;
    expect(toHex(end)).toBe('0100');
  });
});

/**
 * An independent statement of the upstream rule with BigInt arithmetic: pad both to L bytes
 * (L grows by one when start ends in ff and end is absent or ends in ff), mid = (S + E) / 2;
 * an odd sum appends 7f.
 */
function referenceMidpoint(start: Uint8Array | undefined, end: Uint8Array | undefined): Uint8Array {
  const s = start ?? new Uint8Array(0);
  const e = end ?? new Uint8Array(0);
  let L = Math.max(s.length, e.length);
  if (L === 0) return Uint8Array.of(0x7f);
  if (s.length > 0 && s[s.length - 1] === 0xff && (end === undefined || e[e.length - 1] === 0xff)) L++;
  const num = (b: Uint8Array, fill: number) => {
    let n = 0n;
    for (let i = 0; i < L; i++) n = n * 256n + BigInt(i < b.length ? b[i] : fill);
    return n;
  };
  const total = num(s, 0) + num(e, end === undefined ? 0xff : 0);
  let half = total / 2n;
  const out = new Uint8Array(L);
  for (let i = L - 1; i >= 0; i--) {
    out[i] = Number(half & 0xffn);
    half >>= 8n;
  }
  if (total % 2n === 1n) return Uint8Array.of(...out, 0x7f);
  return out;
}

function isNextKey(a: Uint8Array, b: Uint8Array): boolean {
  return b.length === a.length + 1 && b[a.length] === 0 && compareBytes(a, b.subarray(0, a.length)) === 0;
}

// Bytes from a small alphabet so prefixes, trailing zeros and ff runs are common.
const edgyBytes = fc.uint8Array({ minLength: 0, maxLength: 6 }).chain((b) =>
  fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff).chain((x) =>
    fc.boolean().map((useAlphabet) => (useAlphabet ? b.map((v) => [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, x][v % 7]) : b)),
  ),
);
const bound = fc.option(edgyBytes, { nil: undefined, freq: 5 });

describe('midpoint: properties (seeded)', () => {
  test('start < mid < end whenever a key fits; returns end when none does', () => {
    fc.assert(
      fc.property(bound, bound, (a, b) => {
        let start = a;
        let end = b;
        if (start !== undefined && end !== undefined && compareBytes(start, end) > 0) [start, end] = [end, start];
        const mid = midpoint(start, end);
        const s = start ?? new Uint8Array(0);
        const noRoom = end !== undefined && (compareBytes(s, end) === 0 || isNextKey(s, end));
        if (noRoom) {
          expect(toHex(mid)).toBe(toHex(end!));
          return;
        }
        if (start !== undefined) expect(compareBytes(start, mid)).toBeLessThan(0);
        if (end !== undefined) expect(compareBytes(mid, end)).toBeLessThan(0);
      }),
      { seed: 0x5eed, numRuns: 3000 },
    );
  });

  test('agrees with the BigInt statement of the upstream rule except where that lands on end', () => {
    fc.assert(
      fc.property(bound, bound, (a, b) => {
        let start = a;
        let end = b;
        if (start !== undefined && end !== undefined && compareBytes(start, end) >= 0) return;
        if (end !== undefined && end.length === 0) return; // upstream: Nothing (no split)
        const ref = referenceMidpoint(start, end);
        if (end !== undefined && compareBytes(ref, end) === 0) return; // the documented deviation
        expect(toHex(midpoint(start, end))).toBe(toHex(ref));
      }),
      { seed: 42, numRuns: 3000 },
    );
  });

  test('long random keys (as upstream: lengths 1..99)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 99 }), fc.uint8Array({ minLength: 1, maxLength: 99 }), (a, b) => {
        const order = compareBytes(a, b);
        if (order === 0) return;
        const [start, end] = order < 0 ? [a, b] : [b, a];
        const mid = midpoint(start, end);
        if (isNextKey(start, end)) return;
        expect(compareBytes(start, mid)).toBeLessThan(0);
        expect(compareBytes(mid, end)).toBeLessThan(0);
        expect(toHex(mid)).toBe(toHex(referenceMidpoint(start, end)));
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});
