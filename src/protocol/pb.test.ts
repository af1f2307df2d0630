import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../core/bytes.ts';
import { DecodeError } from '../core/errors.ts';
import {
  Reader,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LEN,
  WIRE_VARINT,
  Writer,
  checkCount,
  fieldOf,
  frame,
  once,
  unframe,
  utf8Length,
  varintSize,
  wireOf,
} from './pb.ts';

function errorName(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as Error).name;
  }
  return 'no error';
}

function encodeVarint(n: number): string {
  const w = new Writer(varintSize(n));
  return toHex(w.varint(n).finish());
}

// Go's binary.AppendUvarint / protobuf varints.
const VARINTS: Array<{ name: string; value: number; hex: string }> = [
  { name: 'zero', value: 0, hex: '00' },
  { name: 'one byte max', value: 127, hex: '7f' },
  { name: 'two bytes min', value: 128, hex: '8001' },
  { name: '300 (protobuf docs)', value: 300, hex: 'ac02' },
  { name: '2^31', value: 2 ** 31, hex: '8080808008' },
  { name: '2^32 - 1', value: 2 ** 32 - 1, hex: 'ffffffff0f' },
  { name: '2^32', value: 2 ** 32, hex: '8080808010' },
  { name: 'MAX_SAFE_INTEGER', value: Number.MAX_SAFE_INTEGER, hex: 'ffffffffffffff0f' },
];

describe('varints', () => {
  for (const v of VARINTS) {
    test(`${v.name}: encodes and decodes`, () => {
      expect(encodeVarint(v.value)).toBe(v.hex);
      expect(varintSize(v.value)).toBe(v.hex.length / 2);
      const r = new Reader(fromHex(v.hex));
      expect(r.uint64()).toBe(v.value);
      expect(r.done).toBe(true);
    });
  }

  const BAD: Array<{ name: string; hex: string; read: 'uint64' | 'uint32' | 'bool'; error: string }> = [
    { name: 'empty input', hex: '', read: 'uint64', error: 'TruncatedInput' },
    { name: 'cut off after a continuation byte', hex: '80', read: 'uint64', error: 'TruncatedInput' },
    { name: 'cut off after nine continuation bytes', hex: '808080808080808080', read: 'uint64', error: 'TruncatedInput' },
    { name: '2^53 exceeds MAX_SAFE_INTEGER', hex: '80808080808080800 1'.replace(' ', ''), read: 'uint64', error: 'InvalidVarint' },
    { name: '2^64 - 1 exceeds MAX_SAFE_INTEGER', hex: 'ffffffffffffffffff01', read: 'uint64', error: 'InvalidVarint' },
    { name: 'tenth byte 02 overflows 64 bits', hex: 'ffffffffffffffffff02', read: 'uint64', error: 'InvalidVarint' },
    { name: 'eleven bytes', hex: '8080808080808080808000', read: 'uint64', error: 'InvalidVarint' },
    { name: 'uint32 of 2^32', hex: '8080808010', read: 'uint32', error: 'InvalidVarint' },
    { name: 'bool of 2', hex: '02', read: 'bool', error: 'InvalidVarint' },
  ];
  for (const b of BAD) {
    test(`rejects ${b.name}: ${b.error}`, () => {
      expect(errorName(() => new Reader(fromHex(b.hex))[b.read]())).toBe(b.error);
    });
  }

  test('non-minimal encodings are accepted (protobuf allows them)', () => {
    expect(new Reader(fromHex('8000')).uint64()).toBe(0);
    expect(new Reader(fromHex('ff8080808080808000')).uint64()).toBe(127);
  });

  test('round trip of any safe integer (seeded)', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const bytes = fromHex(encodeVarint(n));
        expect(bytes.length).toBe(varintSize(n));
        const r = new Reader(bytes);
        expect(r.uint64()).toBe(n);
        expect(r.done).toBe(true);
      }),
      { seed: 1, numRuns: 2000 },
    );
  });
});

describe('tags and wire types', () => {
  test('field and wire type of a tag', () => {
    const r = new Reader(fromHex('a206'));
    const tag = r.tag();
    expect(fieldOf(tag)).toBe(100);
    expect(wireOf(tag)).toBe(WIRE_LEN);
  });
  for (const [name, hex, error] of [
    ['wire type 3 (start group)', '0b', 'InvalidWireType'],
    ['wire type 4 (end group)', '0c', 'InvalidWireType'],
    ['wire type 6', '0e', 'InvalidWireType'],
    ['wire type 7', '0f', 'InvalidWireType'],
    ['field number 0', '02', 'InvalidFieldNumber'],
    ['tag above 2^32', '8080808010', 'InvalidVarint'],
  ] as const) {
    test(`rejects ${name}`, () => {
      expect(errorName(() => new Reader(fromHex(hex)).tag())).toBe(error);
    });
  }
  test('expect() rejects a known field with the wrong wire type', () => {
    const r = new Reader(fromHex('0800'));
    const tag = r.tag();
    expect(errorName(() => r.expect(tag, WIRE_LEN))).toBe('InvalidWireType');
  });
});

describe('skipping unknown fields', () => {
  const CASES: Array<{ name: string; hex: string; error?: string }> = [
    { name: 'varint', hex: '0801' },
    { name: 'varint above 2^53 (skipped, not converted)', hex: '08ffffffffffffffffff01' },
    { name: 'fixed64', hex: '090102030405060708' },
    { name: 'length-delimited', hex: '0a03010203' },
    { name: 'fixed32', hex: '0d01020304' },
    { name: 'truncated fixed64', hex: '0901020304', error: 'TruncatedInput' },
    { name: 'truncated fixed32', hex: '0d0102', error: 'TruncatedInput' },
    { name: 'length beyond the input', hex: '0a05010203', error: 'TruncatedInput' },
    { name: 'huge length', hex: '0affffffffffffff0f', error: 'TruncatedInput' },
    { name: 'varint overflowing 64 bits', hex: '08ffffffffffffffffff7f', error: 'InvalidVarint' },
  ];
  for (const c of CASES) {
    test(c.error ? `${c.name}: ${c.error}` : c.name, () => {
      const run = () => {
        const r = new Reader(fromHex(c.hex));
        while (!r.done) r.skip(r.tag());
      };
      if (c.error) expect(errorName(run)).toBe(c.error);
      else expect(run).not.toThrow();
    });
  }
  test('wire type constants', () => {
    expect([WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32]).toEqual([0, 1, 2, 5]);
  });
});

describe('length-delimited values', () => {
  test('bytes() copies, view() does not', () => {
    const input = fromHex('03aabbcc03aabbcc');
    const r = new Reader(input);
    const copy = r.bytes();
    const view = r.view();
    input[1] = 0;
    input[5] = 0;
    expect(toHex(copy)).toBe('aabbcc');
    expect(toHex(view)).toBe('00bbcc');
  });
  test('sub() bounds a sub-message', () => {
    const r = new Reader(fromHex('020801ff'));
    const sub = r.sub();
    expect(sub.remaining).toBe(2);
    sub.skip(sub.tag());
    expect(sub.done).toBe(true);
    expect(r.remaining).toBe(1);
  });
  test('a length is checked before allocating', () => {
    expect(errorName(() => new Reader(fromHex('ffffffff0f00')).bytes())).toBe('TruncatedInput');
  });
  test('strings must be UTF-8', () => {
    expect(new Reader(fromHex('03e282ac')).string()).toBe('€');
    expect(errorName(() => new Reader(fromHex('02c328')).string())).toBe('InvalidUtf8');
    expect(errorName(() => new Reader(fromHex('01ff')).string())).toBe('InvalidUtf8');
  });
  test('Reader.of bounds the whole message', () => {
    expect(errorName(() => Reader.of(new Uint8Array(11), 10))).toBe('MessageTooLarge');
    expect(Reader.of(new Uint8Array(10), 10).remaining).toBe(10);
  });
});

describe('helpers for codecs', () => {
  test('once() rejects a repeated singular field', () => {
    let seen = once(0, (1 << 3) | 2, 'M');
    seen = once(seen, (2 << 3) | 0, 'M');
    expect(errorName(() => once(seen, (1 << 3) | 2, 'M'))).toBe('DuplicateField');
  });
  test('checkCount() bounds repeated fields', () => {
    expect(() => checkCount(1, 2, 'x')).not.toThrow();
    expect(errorName(() => checkCount(2, 2, 'x'))).toBe('TooManyItems');
  });
  test('utf8Length matches TextEncoder (seeded)', () => {
    const enc = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }), (a, b) => {
        expect(utf8Length(a)).toBe(enc.encode(a).length);
        expect(utf8Length(b)).toBe(enc.encode(b).length);
      }),
      { seed: 3, numRuns: 500 },
    );
  });
  test('Writer: proto3 omits default scalars; finish() checks the size', () => {
    const w = new Writer(4);
    w.uintField(1, 0).bytesField(2, new Uint8Array(0), true).uintField(3, 5).stringField(4, '').bytesField(5, new Uint8Array(0));
    expect(toHex(w.finish())).toBe('18052a00');
    expect(() => new Writer(3).finish()).toThrow(/internal/);
    expect(() => new Writer(8).uintField(1, 2 ** 32, 0xffffffff)).toThrow(RangeError);
    expect(() => new Writer(8).uintField(1, -1)).toThrow(RangeError);
  });
});

describe('framing', () => {
  test('frame and unframe', () => {
    const msg = fromHex('0801');
    expect(toHex(frame(msg))).toBe('020801');
    expect(toHex(unframe(frame(msg), 10))).toBe('0801');
    expect(toHex(unframe(fromHex('00'), 0))).toBe('');
  });
  for (const [name, hex, max, error] of [
    ['trailing bytes after the frame', '02080100', 10, 'TrailingBytes'],
    ['frame shorter than its prefix', '0308 01', 10, 'TruncatedInput'],
    ['prefix above the limit', '0b', 10, 'MessageTooLarge'],
    ['cut-off prefix', '80', 10, 'TruncatedInput'],
    ['empty input', '', 10, 'TruncatedInput'],
  ] as const) {
    test(`${name}: ${error}`, () => {
      expect(errorName(() => unframe(fromHex(hex.replace(' ', '')), max))).toBe(error);
    });
  }
});
