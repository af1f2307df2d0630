/**
 * Hostile input for the proof codecs (docs/wire.md#decoding-rules): a
 * catalogue of named malformed messages, each with the typed error it must produce, then
 * truncation at every offset and seeded fuzzing. A decoder may only succeed or throw a
 * `DecodeError`; anything else (a RangeError, a TypeError, a hang) is a bug.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../core/bytes.ts';
import { DecodeError, ProofsyncError } from '../core/errors.ts';
import type { ChangeProof, ProofNode, RangeProof } from '../core/types.ts';
import {
  type DecodeLimits,
  decodeChangeProof,
  decodeChangeProofRequest,
  decodeChangeProofResponse,
  decodeRangeProof,
  decodeRangeProofRequest,
  decodeRangeProofResponse,
  encodeChangeProof,
  encodeChangeProofResponse,
  encodeRangeProof,
  encodeRangeProofRequest,
  encodeRangeProofResponse,
} from './codec.ts';

// ---------------------------------------------------------------------------------------------
// Building messages by hand, in hex

function varint(n: number): string {
  let s = '';
  while (n >= 0x80) {
    s += ((n % 128) | 0x80).toString(16).padStart(2, '0');
    n = Math.floor(n / 128);
  }
  return s + n.toString(16).padStart(2, '0');
}
const tag = (field: number, wire: number) => varint(field * 8 + wire);
/** A length-delimited field. */
const ld = (field: number, content: string) => tag(field, 2) + varint(content.length / 2) + content;
/** A varint field. */
const vi = (field: number, value: number) => tag(field, 0) + varint(value);
const ID = '11'.repeat(32);
const key = (bits: number, packedHex: string) => ld(1, vi(1, bits) + ld(2, packedHex));
const child = (index: number, idHex = ID) => ld(3, vi(1, index) + ld(2, idHex));
/** A RangeProof with one start-proof node of the given content. */
const inStart = (nodeContent: string) => ld(1, nodeContent);
const ROOT_NODE = key(0, '');

type Decoder = (b: Uint8Array, limits?: DecodeLimits) => unknown;

const DECODERS: Record<string, Decoder> = {
  RangeProof: decodeRangeProof,
  ChangeProof: decodeChangeProof,
  RangeProofRequest: decodeRangeProofRequest,
  ChangeProofRequest: decodeChangeProofRequest,
  RangeProofResponse: decodeRangeProofResponse,
  ChangeProofResponse: decodeChangeProofResponse,
};

/** The name of the DecodeError `f` throws, or 'ok'; fails the test on any other throwable. */
function outcome(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof DecodeError)) throw new Error(`expected a DecodeError, got ${String(e)}`, { cause: e });
    expect(e).toBeInstanceOf(ProofsyncError);
    expect(e.message.length).toBeGreaterThan(0);
    return e.name;
  }
}

interface HostileCase {
  name: string;
  hex: string;
  decoder?: keyof typeof DECODERS; // default RangeProof
  limits?: DecodeLimits;
  error: string;
}

const CATALOGUE: HostileCase[] = [
  // sizes and lengths
  { name: 'message above maxBytes', hex: '00'.repeat(65), limits: { maxBytes: 64 }, error: 'MessageTooLarge' },
  { name: 'length prefix of 2^32 - 1 with 1 byte behind it', hex: tag(1, 2) + varint(2 ** 32 - 1) + '00', error: 'TruncatedInput' },
  { name: 'length prefix of 2^53 - 1', hex: tag(3, 2) + 'ffffffffffffff0f', error: 'TruncatedInput' },
  { name: 'length prefix above 2^53', hex: tag(3, 2) + 'ffffffffffffffff7f', error: 'InvalidVarint' },
  { name: 'length prefix overflowing 64 bits', hex: tag(3, 2) + 'ffffffffffffffffff7f', error: 'InvalidVarint' },
  { name: 'length prefix of 11 bytes', hex: tag(3, 2) + '8080808080808080808000', error: 'InvalidVarint' },
  { name: 'inner length beyond its enclosing message', hex: ld(1, tag(1, 2) + '05' + '0000'), error: 'TruncatedInput' },
  { name: 'cut-off tag', hex: '80', error: 'TruncatedInput' },
  // wire types and field numbers
  { name: 'start_proof as a varint', hex: vi(1, 1), error: 'InvalidWireType' },
  { name: 'key_values as fixed32', hex: tag(3, 5) + '00000000', error: 'InvalidWireType' },
  { name: 'group start (wire type 3)', hex: tag(1, 3), error: 'InvalidWireType' },
  { name: 'group end (wire type 4)', hex: tag(1, 4), error: 'InvalidWireType' },
  { name: 'wire type 6', hex: tag(9, 6), error: 'InvalidWireType' },
  { name: 'wire type 7', hex: tag(9, 7), error: 'InvalidWireType' },
  { name: 'unknown field as a group', hex: tag(99, 3) + tag(99, 4), error: 'InvalidWireType' },
  { name: 'field number 0', hex: '00', error: 'InvalidFieldNumber' },
  { name: 'Key.length as bytes', hex: inStart(ld(1, ld(1, '04'))), error: 'InvalidWireType' },
  { name: 'key_limit as bytes', hex: ld(4, '01'), decoder: 'RangeProofRequest', error: 'InvalidWireType' },
  // keys (docs/wire.md#proof-messages: byte length must fit the bit length, padding must be zero)
  { name: 'key of 5 bits', hex: inStart(key(5, '00')), error: 'InvalidKeyLength' },
  { name: 'key of 8 bits in 2 bytes', hex: inStart(key(8, 'ab00')), error: 'InvalidKeyLength' },
  { name: 'key of 8 bits in 0 bytes', hex: inStart(key(8, '')), error: 'InvalidKeyLength' },
  { name: 'key of 4 bits with non-zero padding', hex: inStart(key(4, 'f1')), error: 'NonZeroPaddingBits' },
  { name: 'key of 12 bits with non-zero padding', hex: inStart(key(12, 'abc8')), error: 'NonZeroPaddingBits' },
  { name: 'key length of 2^52 bits', hex: inStart(key(2 ** 52, '')), error: 'InvalidKeyLength' },
  { name: 'key length above 2^53', hex: inStart(ld(1, tag(1, 0) + 'ffffffffffffffff7f')), error: 'InvalidVarint' },
  { name: 'proof node without a key', hex: inStart(child(1)), error: 'MissingField' },
  { name: 'empty proof node', hex: ld(2, ''), error: 'MissingField' },
  { name: 'key given twice', hex: inStart(ROOT_NODE + ROOT_NODE), error: 'DuplicateField' },
  { name: 'Key.length given twice', hex: inStart(ld(1, vi(1, 4) + vi(1, 4) + ld(2, '10'))), error: 'DuplicateField' },
  // children
  { name: 'child index 16', hex: inStart(ROOT_NODE + child(16)), error: 'InvalidChildIndex' },
  { name: 'child index 255', hex: inStart(ROOT_NODE + child(255)), error: 'InvalidChildIndex' },
  { name: 'child index 2^32 - 1', hex: inStart(ROOT_NODE + child(2 ** 32 - 1)), error: 'InvalidChildIndex' },
  { name: 'child index above uint32', hex: inStart(ROOT_NODE + child(2 ** 32)), error: 'InvalidVarint' },
  { name: 'child id of 31 bytes', hex: inStart(ROOT_NODE + child(1, '11'.repeat(31))), error: 'InvalidChildId' },
  { name: 'child id of 33 bytes', hex: inStart(ROOT_NODE + child(1, '11'.repeat(33))), error: 'InvalidChildId' },
  { name: 'child entry without an id', hex: inStart(ROOT_NODE + ld(3, vi(1, 2))), error: 'InvalidChildId' },
  { name: 'empty child entry (index 0, no id)', hex: inStart(ROOT_NODE + ld(3, '')), error: 'InvalidChildId' },
  { name: 'duplicate child index', hex: inStart(ROOT_NODE + child(7) + child(7)), error: 'DuplicateChildIndex' },
  { name: 'duplicate child index 0, once implicit', hex: inStart(ROOT_NODE + child(0) + ld(3, ld(2, ID))), error: 'DuplicateChildIndex' },
  { name: 'child entry with its index twice', hex: inStart(ROOT_NODE + ld(3, vi(1, 1) + vi(1, 2) + ld(2, ID))), error: 'DuplicateField' },
  // counts
  { name: 'key-values above maxKeyValues', hex: ld(3, '').repeat(3), limits: { maxKeyValues: 2 }, error: 'TooManyItems' },
  { name: 'start proof above maxProofNodes', hex: inStart(ROOT_NODE).repeat(3), limits: { maxProofNodes: 2 }, error: 'TooManyItems' },
  { name: 'end proof above maxProofNodes', hex: ld(2, ROOT_NODE).repeat(3), limits: { maxProofNodes: 2 }, error: 'TooManyItems' },
  { name: 'key changes above maxKeyValues', hex: ld(3, '').repeat(3), decoder: 'ChangeProof', limits: { maxKeyValues: 2 }, error: 'TooManyItems' },
  {
    name: 'key-values inside a response above maxKeyValues',
    hex: ld(1, ld(3, '').repeat(3)),
    decoder: 'RangeProofResponse',
    limits: { maxKeyValues: 2 },
    error: 'TooManyItems',
  },
  // duplicates of singular fields
  { name: 'MaybeBytes value twice', hex: ld(3, ld(1, '01') + ld(2, ld(1, '') + ld(1, ''))), decoder: 'ChangeProof', error: 'DuplicateField' },
  { name: 'KeyValue key twice', hex: ld(3, ld(1, '01') + ld(1, '02')), error: 'DuplicateField' },
  { name: 'request root twice', hex: ld(1, ID) + ld(1, ID), decoder: 'RangeProofRequest', error: 'DuplicateField' },
  { name: 'request key limit twice', hex: vi(5, 1) + vi(5, 1), decoder: 'ChangeProofRequest', error: 'DuplicateField' },
  { name: 'key limit above uint32', hex: vi(4, 2 ** 32), decoder: 'RangeProofRequest', error: 'InvalidVarint' },
  // response envelopes
  { name: 'empty range response', hex: '', decoder: 'RangeProofResponse', error: 'MissingField' },
  { name: 'empty change response', hex: '', decoder: 'ChangeProofResponse', error: 'MissingField' },
  { name: 'response with only unknown fields', hex: vi(9, 1), decoder: 'RangeProofResponse', error: 'MissingField' },
  { name: 'range response with proof and error', hex: ld(1, '') + ld(2, ''), decoder: 'RangeProofResponse', error: 'DuplicateField' },
  { name: 'change response with two proofs', hex: ld(1, '') + ld(2, ''), decoder: 'ChangeProofResponse', error: 'DuplicateField' },
  { name: 'change response with the same proof twice', hex: ld(1, '') + ld(1, ''), decoder: 'ChangeProofResponse', error: 'DuplicateField' },
  { name: 'error name not UTF-8', hex: ld(2, ld(1, 'ff')), decoder: 'RangeProofResponse', error: 'InvalidUtf8' },
  { name: 'error message with a lone surrogate (CESU)', hex: ld(3, ld(2, 'eda080')), decoder: 'ChangeProofResponse', error: 'InvalidUtf8' },
  { name: 'bad key deep inside a change response', hex: ld(2, inStart(key(4, '0f'))), decoder: 'ChangeProofResponse', error: 'NonZeroPaddingBits' },
];

describe('catalogue of hostile messages', () => {
  for (const c of CATALOGUE) {
    test(`${c.name} → ${c.error}`, () => {
      const decode = DECODERS[c.decoder ?? 'RangeProof'];
      expect(outcome(() => decode(fromHex(c.hex), c.limits))).toBe(c.error);
    });
  }
});

// Things a strict decoder must still accept (protobuf semantics).
describe('accepted oddities', () => {
  const ACCEPTED: Array<{ name: string; hex: string; decoder?: keyof typeof DECODERS; check?: (x: any) => void }> = [
    { name: 'empty range proof', hex: '' },
    {
      name: 'child entry with index 0 omitted (protons writes this)',
      hex: inStart(ROOT_NODE + ld(3, ld(2, ID))),
      check: (p: RangeProof) => expect(toHex(p.startProof[0].children.get(0)!)).toBe(ID),
    },
    {
      name: 'fields of a node in any order',
      hex: inStart(child(3) + ld(2, ld(1, 'aa')) + key(8, 'ab')),
      check: (p: RangeProof) => expect(toHex(p.startProof[0].key)).toBe('0a0b'),
    },
    { name: 'repeated fields interleaved', hex: ld(3, '') + inStart(ROOT_NODE) + ld(3, ''), check: (p: RangeProof) => expect(p.keyValues.length).toBe(2) },
    {
      name: 'unknown fields of every valid wire type, everywhere',
      hex: vi(20, 1) + tag(21, 1) + '00'.repeat(8) + ld(22, 'ff') + tag(23, 5) + '00'.repeat(4) + inStart(vi(9, 9) + ROOT_NODE + ld(3, vi(5, 5) + vi(1, 1) + ld(2, ID))),
      check: (p: RangeProof) => expect([...p.startProof[0].children.keys()]).toEqual([1]),
    },
    {
      name: 'unknown varint above 2^53',
      hex: tag(30, 0) + 'ffffffffffffffffff01',
    },
    {
      name: 'deep garbage inside an unknown field is never parsed',
      hex: (() => {
        let inner = 'ff';
        for (let i = 0; i < 200; i++) inner = ld(15, inner);
        return inner;
      })(),
    },
    {
      name: 'empty MaybeBytes is a present, empty value',
      hex: ld(3, ld(1, '01') + ld(2, '')),
      decoder: 'ChangeProof',
      check: (p: ChangeProof) => expect(p.keyChanges[0].value).toEqual(new Uint8Array(0)),
    },
    { name: 'error response with empty strings', hex: ld(2, ''), decoder: 'RangeProofResponse', check: (r) => expect(r).toEqual({ type: 'error', name: '', message: '' }) },
    { name: 'exactly maxBytes', hex: vi(20, 1).repeat(32), check: () => {} },
  ];
  for (const a of ACCEPTED) {
    test(a.name, () => {
      const decoded = DECODERS[a.decoder ?? 'RangeProof'](fromHex(a.hex), { maxBytes: 64 * 1024 });
      a.check?.(decoded);
    });
  }
  test('deep garbage 100,000 levels deep costs one skip', () => {
    // 100k nested single-byte-length layers would be 200 KB; a length-delimited unknown field is skipped whole.
    const depth = 100_000;
    const bytes = new Uint8Array(depth * 4 + 1);
    // Build from the inside out in one pass: each layer is tag(15,2) + 3-byte varint length.
    let size = 1;
    let pos = bytes.length - 1;
    bytes[pos] = 0xff;
    for (let i = 0; i < depth; i++) {
      pos -= 4;
      bytes[pos] = 0x7a;
      bytes[pos + 1] = (size & 0x7f) | 0x80;
      bytes[pos + 2] = ((size >> 7) & 0x7f) | 0x80;
      bytes[pos + 3] = size >> 14;
      size += 4;
    }
    expect(pos).toBe(0);
    expect(decodeRangeProof(bytes, { maxBytes: bytes.length })).toEqual({ startProof: [], endProof: [], keyValues: [] });
  });
});

// ---------------------------------------------------------------------------------------------
// Truncation and fuzzing, on real encodings

const node = (tokens: number[], value: string | undefined, kids: number[]): ProofNode => ({
  key: Uint8Array.from(tokens),
  valueOrHash: value === undefined ? undefined : fromHex(value),
  children: new Map(kids.map((i) => [i, new Uint8Array(32).fill(i + 1)])),
});
const SAMPLE_RANGE: RangeProof = {
  startProof: [node([], undefined, [0, 1, 15]), node([1], undefined, [2, 3])],
  endProof: [node([], undefined, [0, 1, 15]), node([15, 15], 'abcd', [4])],
  keyValues: [
    { key: fromHex('12'), value: fromHex('0102') },
    { key: fromHex('1234'), value: new Uint8Array(0) },
    { key: fromHex('ff'), value: new Uint8Array(200).fill(7) },
  ],
};
const SAMPLE_CHANGE: ChangeProof = {
  startProof: SAMPLE_RANGE.startProof,
  endProof: SAMPLE_RANGE.endProof,
  keyChanges: [
    { key: fromHex('12'), value: undefined },
    { key: fromHex('13'), value: new Uint8Array(0) },
    { key: fromHex('14'), value: fromHex('99') },
  ],
};

describe('truncated at every offset', () => {
  test('range proof: a prefix decodes iff it ends between top-level items, else TruncatedInput', () => {
    const bytes = encodeRangeProof(SAMPLE_RANGE);
    // Item boundaries from encoding each item alone (independent of the decoder).
    const boundaries = new Set([0]);
    let at = 0;
    const one = (p: Partial<RangeProof>) => encodeRangeProof({ startProof: [], endProof: [], keyValues: [], ...p }).length;
    for (const n of SAMPLE_RANGE.startProof) boundaries.add((at += one({ startProof: [n] })));
    for (const n of SAMPLE_RANGE.endProof) boundaries.add((at += one({ endProof: [n] })));
    for (const kv of SAMPLE_RANGE.keyValues) boundaries.add((at += one({ keyValues: [kv] })));
    expect(at).toBe(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      expect([i, outcome(() => decodeRangeProof(bytes.subarray(0, i)))]).toEqual([i, boundaries.has(i) ? 'ok' : 'TruncatedInput']);
    }
  });

  test('responses: every proper prefix is MissingField (empty) or TruncatedInput', () => {
    const cases: Array<[Uint8Array, Decoder]> = [
      [encodeRangeProofResponse({ type: 'rangeProof', proof: SAMPLE_RANGE }), decodeRangeProofResponse],
      [encodeChangeProofResponse({ type: 'changeProof', proof: SAMPLE_CHANGE }), decodeChangeProofResponse],
      [encodeChangeProofResponse({ type: 'rangeProof', proof: SAMPLE_RANGE }), decodeChangeProofResponse],
      [encodeChangeProofResponse({ type: 'error', name: 'InsufficientHistory', message: 'start root too old' }), decodeChangeProofResponse],
    ];
    for (const [bytes, decode] of cases) {
      expect(outcome(() => decode(bytes))).toBe('ok');
      for (let i = 0; i < bytes.length; i++) {
        expect([i, outcome(() => decode(bytes.subarray(0, i)))]).toEqual([i, i === 0 ? 'MissingField' : 'TruncatedInput']);
      }
    }
  });

  test('request: every prefix decodes or is TruncatedInput', () => {
    const bytes = encodeRangeProofRequest({ rootHash: new Uint8Array(32).fill(3), startKey: fromHex('00'), endKey: fromHex('ff'), keyLimit: 300, bytesLimit: 70_000 });
    for (let i = 0; i < bytes.length; i++) expect(['ok', 'TruncatedInput']).toContain(outcome(() => decodeRangeProofRequest(bytes.subarray(0, i))));
  });
});

describe('trailing garbage', () => {
  const bytes = encodeRangeProof(SAMPLE_RANGE);
  for (const [name, tail, error] of [
    ['a lone continuation byte', 'ff', 'TruncatedInput'],
    ['a known field with the wrong wire type', '0801', 'InvalidWireType'],
    ['a zero byte', '00', 'InvalidFieldNumber'],
    ['a length-delimited field running past the end', '1a05', 'TruncatedInput'],
    ['a group', '1b', 'InvalidWireType'],
  ] as const) {
    test(`${name} → ${error}`, () => {
      expect(outcome(() => decodeRangeProof(fromHex(toHex(bytes) + tail)))).toBe(error);
    });
  }
});

describe('fuzzing (seeded): only success or a DecodeError', () => {
  const samples = [
    encodeRangeProof(SAMPLE_RANGE),
    encodeChangeProof(SAMPLE_CHANGE),
    encodeRangeProofResponse({ type: 'rangeProof', proof: SAMPLE_RANGE }),
    encodeChangeProofResponse({ type: 'changeProof', proof: SAMPLE_CHANGE }),
    encodeRangeProofRequest({ rootHash: new Uint8Array(32), startKey: undefined, endKey: fromHex('aa'), keyLimit: 5, bytesLimit: 6 }),
  ];
  const decoders = Object.values(DECODERS);

  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const d of decoders) outcome(() => d(b));
      }),
      { seed: 11, numRuns: 1500 },
    );
  });

  test('mutated valid messages: byte flips, insertions, deletions', () => {
    const mutation = fc.record({
      sample: fc.integer({ min: 0, max: samples.length - 1 }),
      edits: fc.array(
        fc.record({ kind: fc.constantFrom('set', 'insert', 'delete'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
        { minLength: 1, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(mutation, ({ sample, edits }) => {
        const b = [...samples[sample]];
        for (const e of edits) {
          const at = e.at % (b.length + 1);
          if (e.kind === 'set' && at < b.length) b[at] = e.byte;
          else if (e.kind === 'insert') b.splice(at, 0, e.byte);
          else b.splice(at, 1);
        }
        const bytes = Uint8Array.from(b);
        for (const d of decoders) outcome(() => d(bytes));
      }),
      { seed: 12, numRuns: 1500 },
    );
  });
});
