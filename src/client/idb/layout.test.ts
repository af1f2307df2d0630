import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import { MemoryStore, type BatchOp } from '../../core/store.ts';
import { entriesSize, mergeEntries, normalizeOps, pageIndexOf, splitEntries } from './layout.ts';
import { type Entry, pageSize } from './page.ts';

const h = fromHex;
const show = (es: readonly Entry[]) => es.map(([k, v]) => `${toHex(k)}=${toHex(v)}`);
const fences = (...hex: string[]) => hex.map((x) => ({ fence: h(x) }));

describe('pageIndexOf', () => {
  const index = fences('', '10', '20');
  test.each([
    { name: 'empty key lands in the first page', key: '', at: 0 },
    { name: 'below the second fence', key: '0fff', at: 0 },
    { name: 'exactly a fence', key: '10', at: 1 },
    { name: 'extension of a fence', key: '1000', at: 1 },
    { name: 'between fences', key: '1f', at: 1 },
    { name: 'past the last fence', key: 'ff', at: 2 },
  ])('$name', ({ key, at }) => expect(pageIndexOf(index, h(key))).toBe(at));
});

describe('normalizeOps', () => {
  test('sorts and keeps the last op per key', () => {
    const ops: BatchOp[] = [
      { type: 'put', key: h('02'), value: h('a0') },
      { type: 'put', key: h('01'), value: h('b0') },
      { type: 'del', key: h('02') },
      { type: 'put', key: h('01'), value: h('b1') },
      { type: 'put', key: h('02'), value: h('a2') },
    ];
    expect(normalizeOps(ops).map((o) => `${o.type}:${toHex(o.key)}:${o.type === 'put' ? toHex(o.value) : ''}`)).toEqual(['put:01:b1', 'put:02:a2']);
  });

  test.each([
    { name: 'not an array', ops: {} as unknown as BatchOp[], message: 'expected an array of ops, got object' },
    { name: 'string key', ops: [{ type: 'put', key: 'k', value: h('00') }] as unknown as BatchOp[], message: 'op 0: expected Uint8Array key' },
    { name: 'missing value', ops: [{ type: 'put', key: h('00') }] as unknown as BatchOp[], message: 'op 0: expected Uint8Array value' },
    { name: 'unknown type', ops: [{ type: 'delete', key: h('00') }] as unknown as BatchOp[], message: 'op 0: expected type "put" or "del", got delete' },
    { name: 'null op', ops: [null] as unknown as BatchOp[], message: 'op 0: expected Uint8Array key' },
  ])('rejects $name', ({ ops, message }) => {
    expect(() => normalizeOps(ops)).toThrowError(new TypeError(message));
  });
});

const opArb = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: fc.uint8Array({ maxLength: 3 }), value: fc.uint8Array({ maxLength: 4 }) }),
  fc.record({ type: fc.constant('del' as const), key: fc.uint8Array({ maxLength: 3 }) }),
);

describe('mergeEntries', () => {
  test('equals applying the batch to MemoryStore', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.array(opArb, { maxLength: 30 }), (before, batch) => {
        const model = new MemoryStore();
        model.writeSync(before);
        const entries = [...model.iterateSync({})] as Entry[];
        model.writeSync(batch);
        expect(show(mergeEntries(entries, normalizeOps(batch)))).toEqual(show([...model.iterateSync({})]));
      }),
    );
  });
});

const kv = (i: number, valueBytes: number): Entry => [new Uint8Array([i >> 8, i & 255]), new Uint8Array(valueBytes)];

describe('splitEntries', () => {
  test.each([
    { name: 'fits: one piece', n: 10, value: 10, pageBytes: 1024, pieces: [10] },
    { name: 'no entries: one empty piece', n: 0, value: 10, pageBytes: 1024, pieces: [0] },
    // 20 entries of 20 bytes + 12 fixed = 412 bytes; 300-byte pages: two balanced halves
    { name: 'slightly over: halves, not full + sliver', n: 20, value: 10, pageBytes: 300, pieces: [10, 10] },
    { name: 'an entry larger than a page sits alone', n: 3, value: 500, pageBytes: 300, pieces: [1, 1, 1] },
  ])('$name', ({ n, value, pageBytes, pieces }) => {
    const entries = Array.from({ length: n }, (_, i) => kv(i, value));
    expect(splitEntries(entries, pageBytes).map((p) => p.length)).toEqual(pieces);
  });

  test('pieces keep order, fit the page unless alone, and number the fewest possible', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), fc.integer({ min: 256, max: 2048 }), (sizes, pageBytes) => {
        const entries = sizes.map((s, i) => kv(i, s));
        const pieces = splitEntries(entries, pageBytes);
        expect(pieces.flat()).toEqual(entries);
        for (const p of pieces) {
          if (p.length > 1) expect(entriesSize(p)).toBeLessThanOrEqual(pageBytes);
          if (entries.length) expect(p.length).toBeGreaterThan(0);
        }
        if (pieces.length > 1) expect(pieces.length).toBeLessThanOrEqual(2 * Math.ceil(entriesSize(entries) / pageBytes) + entries.filter((e) => entriesSize([e]) > pageBytes / 2).length);
        for (let i = 1; i < pieces.length; i++) expect(compareBytes(pieces[i - 1].at(-1)![0], pieces[i][0][0])).toBeLessThan(0);
      }),
    );
  });

  test('sequential fill: a large sorted run becomes nearly full pages', () => {
    const entries = Array.from({ length: 4000 }, (_, i) => kv(i, 94)); // 104 bytes each
    const pieces = splitEntries(entries, 32 * 1024);
    const sizes = pieces.map(entriesSize);
    expect(Math.min(...sizes)).toBeGreaterThan(0.9 * 32 * 1024);
    expect(pieces.length).toBe(Math.ceil(entriesSize(entries) / (32 * 1024)));
  });

  test('page size accounting matches the encoder', () => {
    expect(entriesSize([kv(1, 3)])).toBe(pageSize(1, 5));
  });
});
