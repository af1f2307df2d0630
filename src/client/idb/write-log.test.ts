import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryStore, type BatchOp } from '../../core/store.ts';
import { StorageCorrupted } from './errors.ts';
import { decodeLogRecord, encodeLogRecord, lastOpOn, LogRecords, logRecordSize, Overlay, overlayBound } from './write-log.ts';

const b = (...xs: number[]) => new Uint8Array(xs);

describe('Overlay.held: the ops on logged keys', () => {
  const put = (k: number): BatchOp => ({ type: 'put', key: b(k), value: b(k) });
  const del = (k: number): BatchOp => ({ type: 'del', key: b(k) });
  const many = Array.from({ length: 100 }, (_, i) => put(2 * i)); // sorted, unique: 0, 2, ..., 198
  it.each([
    { name: 'empty overlay', logged: [], ops: [put(1), put(2)], want: [] },
    { name: 'large overlay (per-op lookups)', logged: [1, 2, 3], ops: [put(1), del(2), put(4)], want: [1, 2] },
    { name: 'small overlay, many ops (binary search)', logged: [0, 7, 100, 198, 250], ops: many, want: [0, 100, 198] },
    { name: 'small overlay, keys before and after every op', logged: [0, 255], ops: many.slice(1, 99), want: [] },
  ])('$name', ({ logged, ops, want }) => {
    const o = new Overlay();
    o.apply(logged.map(put), 1);
    expect(o.held(ops).map((op) => op.key[0])).toEqual(want);
    expect(o.held(ops)).toEqual(ops.filter((op) => o.has(op.key)));
  });
});

describe('log record codec', () => {
  it('round-trips puts, deletes, empty keys and values, in order', () => {
    const ops: BatchOp[] = [
      { type: 'put', key: b(2), value: b(9, 9) },
      { type: 'del', key: b(1) },
      { type: 'put', key: b(), value: b() },
      { type: 'put', key: b(2), value: b(7) },
    ];
    const bytes = encodeLogRecord(ops);
    expect(bytes.length).toBe(logRecordSize(ops));
    expect(decodeLogRecord(bytes)).toEqual(ops);
  });

  it.each([
    { name: 'shorter than the count', bytes: b(1, 0, 0) },
    { name: 'an unknown op kind', bytes: b(1, 0, 0, 0, 7, 0, 0, 0, 0) },
    { name: 'a key length past the end', bytes: b(1, 0, 0, 0, 0, 9, 0, 0, 0, 1) },
    { name: 'fewer ops than counted', bytes: b(2, 0, 0, 0, 0, 1, 0, 0, 0, 5) },
    { name: 'trailing bytes', bytes: b(0, 0, 0, 0, 1) },
  ])('rejects $name with StorageCorrupted', ({ bytes }) => {
    expect(() => decodeLogRecord(bytes)).toThrow(StorageCorrupted);
  });
});

describe('lastOpOn: a key\'s last op in one record, without decoding it (store-reader.ts)', () => {
  const put = (k: number[], v: number[]): BatchOp => ({ type: 'put', key: b(...k), value: b(...v) });
  const del = (k: number[]): BatchOp => ({ type: 'del', key: b(...k) });
  it.each([
    { name: 'absent', ops: [put([1], [1]), del([3])], key: [2], want: undefined },
    { name: 'a put', ops: [put([1], [1]), put([2], [5, 6])], key: [2], want: put([2], [5, 6]) },
    { name: 'a delete', ops: [put([1], [1]), del([2])], key: [2], want: del([2]) },
    { name: 'a later put wins over a delete', ops: [del([2]), put([2], [9])], key: [2], want: put([2], [9]) },
    { name: 'a later delete wins over a put', ops: [put([2], [9]), del([2])], key: [2], want: del([2]) },
    { name: 'a prefix of a logged key is another key', ops: [put([2, 0], [1])], key: [2], want: undefined },
    { name: 'a logged prefix of the key is another key', ops: [put([2], [1])], key: [2, 0], want: undefined },
    { name: 'the empty key', ops: [put([], [4]), put([0], [5])], key: [], want: put([], [4]) },
    { name: 'an empty value', ops: [put([7], [])], key: [7], want: put([7], []) },
    { name: 'an empty record', ops: [], key: [1], want: undefined },
  ])('$name', ({ ops, key, want }) => {
    expect(lastOpOn(encodeLogRecord(ops), b(...key))).toEqual(want);
  });

  it('agrees with decoding the record, for any ops and key', () => {
    const bytes = fc.uint8Array({ maxLength: 3 });
    const op = fc.oneof(
      fc.record({ type: fc.constant('put' as const), key: bytes, value: fc.uint8Array({ maxLength: 4 }) }),
      fc.record({ type: fc.constant('del' as const), key: bytes }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), bytes, (ops, key) => {
        const decoded = decodeLogRecord(encodeLogRecord(ops));
        const last = decoded.filter((o) => o.key.length === key.length && o.key.every((x, i) => x === key[i])).at(-1);
        expect(lastOpOn(encodeLogRecord(ops), key)).toEqual(last && (last.type === 'put' ? { ...last, key: last.key.slice(), value: last.value.slice() } : { ...last, key: last.key.slice() }));
      }),
      { seed: 18, numRuns: 500 },
    );
  });

  it.each([
    { name: 'shorter than the count', bytes: b(1, 0, 0) },
    { name: 'an unknown op kind', bytes: b(1, 0, 0, 0, 7, 0, 0, 0, 0) },
    { name: 'a key length past the end', bytes: b(1, 0, 0, 0, 0, 9, 0, 0, 0, 1) },
    { name: 'a value length past the end', bytes: b(1, 0, 0, 0, 1, 1, 0, 0, 0, 5, 9, 0, 0, 0) },
    { name: 'fewer ops than counted', bytes: b(2, 0, 0, 0, 0, 1, 0, 0, 0, 5) },
    { name: 'trailing bytes', bytes: b(0, 0, 0, 0, 1) },
    { name: 'trailing bytes after a hit', bytes: b(1, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0) },
  ])('rejects $name with StorageCorrupted', ({ bytes }) => {
    expect(() => lastOpOn(bytes, b(5))).toThrow(StorageCorrupted);
  });
});

describe('Overlay', () => {
  it('holds the newest op per key, sorted snapshots stay as they were, dropThrough forgets old records only', () => {
    const o = new Overlay();
    o.apply([{ type: 'put', key: b(3), value: b(1) }, { type: 'put', key: b(1), value: b(1) }], 1);
    const first = o.sorted();
    o.apply([{ type: 'del', key: b(3) }, { type: 'put', key: b(2), value: b(2) }], 2);
    expect(first.map((e) => [...e.key])).toEqual([[1], [3]]);
    expect(first[1].value).toEqual(b(1));
    expect(o.sorted().map((e) => [[...e.key], e.value && [...e.value], e.rec])).toEqual([
      [[1], [1], 1],
      [[2], [2], 2],
      [[3], undefined, 2],
    ]);
    o.dropThrough(1);
    expect(o.sorted().map((e) => [...e.key])).toEqual([[2], [3]]);
    expect(o.get(b(1))).toBeUndefined();
    expect(o.has(b(3))).toBe(true);
  });

  it('replayed records agree with a MemoryStore fed the same batches (seeded)', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const model = new MemoryStore();
    const records: Uint8Array[] = [];
    for (let r = 0; r < 50; r++) {
      const ops: BatchOp[] = [];
      for (let i = 0; i < 20; i++) {
        const key = b(Math.floor(rand() * 40));
        ops.push(rand() < 0.3 ? { type: 'del', key } : { type: 'put', key, value: b(r, i) });
      }
      model.writeSync(ops);
      records.push(encodeLogRecord(ops));
    }
    const o = new Overlay();
    records.forEach((rec, i) => o.apply(decodeLogRecord(rec), i));
    const live = o.sorted().filter((e) => e.value).map((e) => [[...e.key], [...e.value!]]);
    expect(live).toEqual([...model.iterateSync({})].map(([k, v]) => [[...k], [...v]]));
  });

  it('overlayBound finds the first key at or after (strictly after) a key', () => {
    const o = new Overlay();
    o.apply([1, 3, 5].map((x) => ({ type: 'put' as const, key: b(x), value: b() })), 1);
    const s = o.sorted();
    expect([overlayBound(s, b(3), false), overlayBound(s, b(3), true), overlayBound(s, b(4), false), overlayBound(s, b(9), false)]).toEqual([1, 2, 2, 3]);
  });
});

describe('LogRecords', () => {
  const rec = (ops: BatchOp[]) => encodeLogRecord(ops);
  const r1 = rec([{ type: 'put', key: b(1), value: b(10) }]);
  const r2 = rec([{ type: 'put', key: b(2), value: b(20) }, { type: 'del', key: b(1) }]);
  const r3 = rec([{ type: 'put', key: b(3), value: b(30) }]);

  it('replays records into the overlay and counts their bytes', () => {
    const log = new LogRecords(5);
    log.replay([5, 6, 7], [r1, r2, r3]);
    expect([log.base, log.count, log.bytes]).toEqual([5, 3, r1.length + r2.length + r3.length]);
    expect(log.overlay.get(b(1))).toMatchObject({ value: undefined, rec: 6 });
    expect(log.overlay.get(b(3))?.value).toEqual(b(30));
  });

  it('forgets the records below a new base, and the entries they wrote', () => {
    const log = new LogRecords(5);
    log.replay([5, 6, 7], [r1, r2, r3]);
    log.forgetBelow(7);
    expect([log.base, log.count, log.bytes]).toEqual([7, 1, r3.length]);
    expect(log.overlay.has(b(1))).toBe(false);
    expect(log.overlay.has(b(2))).toBe(false);
    expect(log.overlay.get(b(3))?.rec).toBe(7);
    // an older base changes nothing
    log.forgetBelow(3);
    expect([log.base, log.count]).toEqual([7, 1]);
  });

  it('rejects a corrupt record with StorageCorrupted', () => {
    const log = new LogRecords(0);
    expect(() => log.replay([1], [b(9, 0, 0, 0, 1)])).toThrow(StorageCorrupted);
  });
});
