import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../core/bytes.ts';
import type { ChangeProof, ChangeProofRequest, KeyChange, KeyValue, ProofNode, RangeProof, RangeProofRequest } from '../core/types.ts';
import {
  changeProofSize,
  decodeChangeProof,
  decodeChangeProofRequest,
  decodeChangeProofResponse,
  decodeRangeProof,
  decodeRangeProofRequest,
  decodeRangeProofResponse,
  encodeChangeProof,
  encodeChangeProofRequest,
  encodeChangeProofResponse,
  encodeRangeProof,
  encodeRangeProofRequest,
  encodeRangeProofResponse,
  rangeProofResponseSize,
  rangeProofSize,
  type ChangeProofResponse,
  type RangeProofResponse,
} from './codec.ts';
// protons output of proofsync.proto: a second, independent codec, used only here.
import { proofsync as pb } from './generated/proofsync.ts';

// ---------------------------------------------------------------------------------------------
// Arbitraries

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
const id = fc.uint8Array({ minLength: 32, maxLength: 32 });
const path = fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 24 }).map((a) => Uint8Array.from(a));
const maybe = fc.option(bytes(40), { nil: undefined });
const children = fc
  .uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 16 })
  .chain((indices) => fc.tuple(...indices.map(() => id)).map((ids) => new Map(indices.map((i, k) => [i, ids[k]]))));
const proofNode: fc.Arbitrary<ProofNode> = fc.record({ key: path, valueOrHash: maybe, children });
const proof = fc.array(proofNode, { maxLength: 5 });
const keyValue: fc.Arbitrary<KeyValue> = fc.record({ key: bytes(20), value: bytes(60) });
const keyChange: fc.Arbitrary<KeyChange> = fc.record({ key: bytes(20), value: maybe });
const rangeProof: fc.Arbitrary<RangeProof> = fc.record({ startProof: proof, endProof: proof, keyValues: fc.array(keyValue, { maxLength: 8 }) });
const changeProof: fc.Arbitrary<ChangeProof> = fc.record({ startProof: proof, endProof: proof, keyChanges: fc.array(keyChange, { maxLength: 8 }) });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const rangeProofRequest: fc.Arbitrary<RangeProofRequest> = fc.record({ rootHash: bytes(33), startKey: maybe, endKey: maybe, keyLimit: u32, bytesLimit: u32 });
const changeProofRequest: fc.Arbitrary<ChangeProofRequest> = fc.record({
  startRootHash: bytes(33),
  endRootHash: bytes(33),
  startKey: maybe,
  endKey: maybe,
  keyLimit: u32,
  bytesLimit: u32,
});
const wireError = fc.record({ type: fc.constant('error' as const), name: fc.string({ maxLength: 20 }), message: fc.string({ unit: 'grapheme', maxLength: 40 }) });
const rangeProofResponse: fc.Arbitrary<RangeProofResponse> = fc.oneof(
  rangeProof.map((proof) => ({ type: 'rangeProof' as const, proof })),
  wireError,
);
const changeProofResponse: fc.Arbitrary<ChangeProofResponse> = fc.oneof(
  changeProof.map((proof) => ({ type: 'changeProof' as const, proof })),
  rangeProof.map((proof) => ({ type: 'rangeProof' as const, proof })),
  wireError,
);

const RUNS = { seed: 0xc0dec, numRuns: 300 };

// ---------------------------------------------------------------------------------------------
// Our types → protons' shapes, written independently of codec.ts (packs paths by hand).
// (Untyped: protons' generated types want Uint8Array<ArrayBuffer>.)

function packNibbles(p: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(p.length / 2));
  p.forEach((t, i) => (out[i >> 1] |= i % 2 === 0 ? t << 4 : t));
  return out;
}
const pbMaybe = (v: Uint8Array | undefined) => (v === undefined ? undefined : { value: v });
const pbNode = (n: ProofNode) => ({
  key: { length: BigInt(n.key.length * 4), value: packNibbles(n.key) },
  valueOrHash: pbMaybe(n.valueOrHash),
  children: new Map(n.children),
});
const pbRange = (p: RangeProof) => ({
  startProof: p.startProof.map(pbNode),
  endProof: p.endProof.map(pbNode),
  keyValues: p.keyValues.map((kv) => ({ key: kv.key, value: kv.value })),
});
const pbChange = (p: ChangeProof) => ({
  startProof: p.startProof.map(pbNode),
  endProof: p.endProof.map(pbNode),
  keyChanges: p.keyChanges.map((kc) => ({ key: kc.key, value: pbMaybe(kc.value) })),
});
const pbRangeRequest = (q: RangeProofRequest) => ({
  rootHash: q.rootHash,
  startKey: pbMaybe(q.startKey),
  endKey: pbMaybe(q.endKey),
  keyLimit: q.keyLimit,
  bytesLimit: q.bytesLimit,
});
const pbChangeRequest = (q: ChangeProofRequest) => ({
  startRootHash: q.startRootHash,
  endRootHash: q.endRootHash,
  startKey: pbMaybe(q.startKey),
  endKey: pbMaybe(q.endKey),
  keyLimit: q.keyLimit,
  bytesLimit: q.bytesLimit,
});
const pbError = (r: { name: string; message: string }) => ({ name: r.name, message: r.message });
const pbRangeResponse = (r: RangeProofResponse) =>
  r.type === 'rangeProof' ? { rangeProof: pbRange(r.proof) } : { error: pbError(r) };
const pbChangeResponse = (r: ChangeProofResponse) =>
  r.type === 'changeProof'
    ? { changeProof: pbChange(r.proof) }
    : r.type === 'rangeProof'
      ? { rangeProof: pbRange(r.proof) }
      : { error: pbError(r) };

/** Copies every Uint8Array (protons returns subarrays of a Buffer-like pool) so toEqual compares content. */
function plain<T>(x: T): T {
  if (x instanceof Uint8Array) return Uint8Array.from(x) as T;
  if (x instanceof Map) return new Map([...x].map(([k, v]) => [k, plain(v)])) as T;
  if (Array.isArray(x)) return x.map(plain) as T;
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = plain(v);
    return out as T;
  }
  return x;
}

interface Case<T, P> {
  name: string;
  arb: fc.Arbitrary<T>;
  encode: (x: T) => Uint8Array;
  decode: (b: Uint8Array) => T;
  toPb: (x: T) => P;
  pbEncode: (x: P) => Uint8Array;
  pbDecode: (b: Uint8Array) => P;
  size?: (x: T) => number;
}

const CASES: Array<Case<any, any>> = [
  { name: 'RangeProof', arb: rangeProof, encode: encodeRangeProof, decode: (b) => decodeRangeProof(b), toPb: pbRange, pbEncode: pb.RangeProof.encode as (x: unknown) => Uint8Array, pbDecode: pb.RangeProof.decode, size: rangeProofSize },
  { name: 'ChangeProof', arb: changeProof, encode: encodeChangeProof, decode: (b) => decodeChangeProof(b), toPb: pbChange, pbEncode: pb.ChangeProof.encode as (x: unknown) => Uint8Array, pbDecode: pb.ChangeProof.decode, size: changeProofSize },
  { name: 'RangeProofRequest', arb: rangeProofRequest, encode: encodeRangeProofRequest, decode: (b) => decodeRangeProofRequest(b), toPb: pbRangeRequest, pbEncode: pb.RangeProofRequest.encode as (x: unknown) => Uint8Array, pbDecode: pb.RangeProofRequest.decode },
  { name: 'ChangeProofRequest', arb: changeProofRequest, encode: encodeChangeProofRequest, decode: (b) => decodeChangeProofRequest(b), toPb: pbChangeRequest, pbEncode: pb.ChangeProofRequest.encode as (x: unknown) => Uint8Array, pbDecode: pb.ChangeProofRequest.decode },
  { name: 'RangeProofResponse', arb: rangeProofResponse, encode: encodeRangeProofResponse, decode: (b) => decodeRangeProofResponse(b), toPb: pbRangeResponse, pbEncode: pb.RangeProofResponse.encode as (x: unknown) => Uint8Array, pbDecode: pb.RangeProofResponse.decode },
  { name: 'ChangeProofResponse', arb: changeProofResponse, encode: encodeChangeProofResponse, decode: (b) => decodeChangeProofResponse(b), toPb: pbChangeResponse, pbEncode: pb.ChangeProofResponse.encode as (x: unknown) => Uint8Array, pbDecode: pb.ChangeProofResponse.decode },
];

for (const c of CASES) {
  describe(c.name, () => {
    test('round trip: decode(encode(x)) equals x (seeded)', () => {
      fc.assert(fc.property(c.arb, (x) => {
        expect(plain(c.decode(c.encode(x)))).toEqual(plain(x));
      }), RUNS);
    });
    test('protons decodes our encoding to the same content (seeded)', () => {
      fc.assert(fc.property(c.arb, (x) => {
        expect(plain(c.pbDecode(c.encode(x)))).toEqual(plain(c.toPb(x)));
      }), RUNS);
    });
    test('we decode protons encoding to the same content (seeded)', () => {
      fc.assert(fc.property(c.arb, (x) => {
        expect(plain(c.decode(c.pbEncode(c.toPb(x))))).toEqual(plain(x));
      }), RUNS);
    });
    if (c.size) {
      const size = c.size;
      test('size function equals the encoded length (seeded)', () => {
        fc.assert(fc.property(c.arb, (x) => {
          expect(size(x)).toBe(c.encode(x).length);
        }), RUNS);
      });
    }
  });
}

describe('decoding range proof answers as views', () => {
  test('gives the same content as copies, with key-values aliasing the input (seeded)', () => {
    fc.assert(
      fc.property(rangeProofResponse, (x) => {
        const bytes = encodeRangeProofResponse(x);
        const viewed = decodeRangeProofResponse(bytes, undefined, { views: true });
        expect(plain(viewed)).toEqual(plain(decodeRangeProofResponse(bytes)));
        if (viewed.type === 'rangeProof') {
          for (const kv of viewed.proof.keyValues) {
            if (kv.key.length) expect(kv.key.buffer).toBe(bytes.buffer);
            if (kv.value.length) expect(kv.value.buffer).toBe(bytes.buffer);
          }
        }
      }),
      RUNS,
    );
  });
});

describe('deterministic encoding', () => {
  test('children are written in ascending index order whatever the map order (seeded)', () => {
    fc.assert(
      fc.property(rangeProof, fc.integer(), (p, salt) => {
        const shuffled: RangeProof = {
          ...p,
          endProof: p.endProof.map((n) => ({
            ...n,
            children: new Map([...n.children].sort((a, b) => ((a[0] * 7 + salt) % 16) - ((b[0] * 7 + salt) % 16))),
          })),
        };
        expect(toHex(encodeRangeProof(shuffled))).toBe(toHex(encodeRangeProof(p)));
      }),
      RUNS,
    );
  });

  test('protons bytes re-encode to ours exactly except for the map key 0 that protons omits (seeded)', () => {
    fc.assert(
      fc.property(rangeProof, (p) => {
        const viaProtons = decodeRangeProof((pb.RangeProof.encode as (x: unknown) => Uint8Array)(pbRange(p)));
        expect(toHex(encodeRangeProof(viaProtons))).toBe(toHex(encodeRangeProof(p)));
      }),
      RUNS,
    );
  });

  test('rangeProofResponseSize is the envelope length', () => {
    fc.assert(
      fc.property(rangeProof, (p) => {
        expect(rangeProofResponseSize(p)).toBe(encodeRangeProofResponse({ type: 'rangeProof', proof: p }).length);
      }),
      RUNS,
    );
  });
});

// Hand-assembled from proto/sync/sync.proto field numbers (docs/wire.md#proof-messages): pins the bytes.
describe('pinned encodings', () => {
  const node: ProofNode = {
    key: Uint8Array.of(0xf), // one token: 4 bits, packed f0
    valueOrHash: new TextEncoder().encode('ab'),
    children: new Map([[0, new Uint8Array(32)]]),
  };
  const NODE_HEX =
    '0a05' + '0804' + '1201f0' + // key { length: 4, value: f0 }
    '1204' + '0a026162' + // value_or_hash { value: "ab" }
    '1a24' + '0800' + '1220' + '00'.repeat(32); // children entry { key: 0, value: 32 zero bytes }

  const VECTORS: Array<{ name: string; bytes: () => Uint8Array; hex: string }> = [
    { name: 'empty range proof', bytes: () => encodeRangeProof({ startProof: [], endProof: [], keyValues: [] }), hex: '' },
    {
      name: 'range proof: one end-proof node, one key-value',
      bytes: () => encodeRangeProof({ startProof: [], endProof: [node], keyValues: [{ key: Uint8Array.of(1), value: new Uint8Array(0) }] }),
      hex: '1233' + NODE_HEX + '1a03' + '0a0101',
    },
    {
      name: 'root node: empty key is a present, empty Key message; no value',
      bytes: () => encodeRangeProof({ startProof: [{ key: new Uint8Array(0), valueOrHash: undefined, children: new Map() }], endProof: [], keyValues: [] }),
      hex: '0a02' + '0a00',
    },
    {
      name: 'change proof: delete and put of an empty value',
      bytes: () =>
        encodeChangeProof({
          startProof: [],
          endProof: [],
          keyChanges: [
            { key: Uint8Array.of(1), value: undefined },
            { key: Uint8Array.of(2), value: new Uint8Array(0) },
          ],
        }),
      hex: '1a03' + '0a0101' + '1a05' + '0a0102' + '1200',
    },
    {
      name: 'range proof request',
      bytes: () => encodeRangeProofRequest({ rootHash: new Uint8Array(32).fill(0xaa), startKey: new Uint8Array(0), endKey: undefined, keyLimit: 2048, bytesLimit: 2_093_056 }),
      hex: '0a20' + 'aa'.repeat(32) + '1200' + '208010' + '2880e07f',
    },
    {
      name: 'change proof request',
      bytes: () =>
        encodeChangeProofRequest({ startRootHash: Uint8Array.of(1), endRootHash: Uint8Array.of(2), startKey: undefined, endKey: Uint8Array.of(9), keyLimit: 1, bytesLimit: 0 }),
      hex: '0a0101' + '120102' + '22030a0109' + '2801',
    },
    {
      name: 'error response',
      bytes: () => encodeChangeProofResponse({ type: 'error', name: 'RootNotFound', message: '' }),
      hex: '1a0e' + '0a0c' + toHex(new TextEncoder().encode('RootNotFound')),
    },
    {
      name: 'range proof answering a change proof request',
      bytes: () => encodeChangeProofResponse({ type: 'rangeProof', proof: { startProof: [], endProof: [], keyValues: [] } }),
      hex: '1200',
    },
  ];
  for (const v of VECTORS) {
    test(v.name, () => {
      expect(toHex(v.bytes())).toBe(v.hex);
    });
  }

  test('the pinned node decodes back', () => {
    const p = decodeRangeProof(fromHex('1233' + NODE_HEX));
    expect(plain(p.endProof[0])).toEqual(plain(node));
  });
});

describe('encoding rejects values that cannot be on the wire', () => {
  const base = (n: Partial<ProofNode>): RangeProof => ({
    startProof: [{ key: new Uint8Array(0), valueOrHash: undefined, children: new Map(), ...n }],
    endProof: [],
    keyValues: [],
  });
  for (const [name, p] of [
    ['child index 16', base({ children: new Map([[16, new Uint8Array(32)]]) })],
    ['child index -1', base({ children: new Map([[-1, new Uint8Array(32)]]) })],
    ['31-byte child id', base({ children: new Map([[3, new Uint8Array(31)]]) })],
    ['path token 16', base({ key: Uint8Array.of(16) })],
  ] as const) {
    test(name, () => expect(() => encodeRangeProof(p)).toThrow(RangeError));
  }
  test('key limit above uint32', () => {
    expect(() =>
      encodeRangeProofRequest({ rootHash: new Uint8Array(32), startKey: undefined, endKey: undefined, keyLimit: 2 ** 32, bytesLimit: 1 }),
    ).toThrow(RangeError);
  });
});
