import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, concatBytes, equalBytes, fromHex, toHex } from './bytes.ts';
import { DecodeError } from './errors.ts';
import {
  canonicalIds,
  decodeDelta,
  deltaId,
  deltaWireLength,
  encodeDelta,
  encodeDeltaBody,
  signDelta,
  verifyDelta,
  VerificationError,
  type Delta,
  type UnsignedDelta,
} from './delta.ts';
import { EMPTY_ROOT, type KeyChange } from './types.ts';

const SEED = 20240601;
const sk = sha256(new TextEncoder().encode('proofsync test writer'));
const pk = ed25519.getPublicKey(sk);
const otherSk = sha256(new TextEncoder().encode('someone else'));
const b = (s: string) => new TextEncoder().encode(s);
const fill = (n: number, len = 32) => new Uint8Array(len).fill(n);

const base: UnsignedDelta = {
  parents: [EMPTY_ROOT],
  actions: [
    { key: b('a'), value: b('xy') },
    { key: b('b'), value: undefined },
  ],
  hlc: { wallMs: 0x0102030405, counter: 7 },
  stateRoot: fill(0xaa),
  logIndex: 3,
};

describe('canonical body encoding', () => {
  it('lays out every field exactly as documented', () => {
    // Built by hand from the layout in the module comment.
    const expected = concatBytes(
      Uint8Array.of(0x01), // tag
      Uint8Array.of(1), EMPTY_ROOT, // parents
      Uint8Array.of(2), // action count
      Uint8Array.of(1, 0x61, 1, 2, 0x78, 0x79), // put "a" = "xy"
      Uint8Array.of(1, 0x62, 0), // delete "b"
      fromHex('0000000102030405'), fromHex('00000007'), Uint8Array.of(0), // hlc, no writer
      fill(0xaa), // stateRoot
      fromHex('0000000000000003'), // logIndex
    );
    expect(toHex(encodeDeltaBody(base))).toBe(toHex(expected));
    expect(toHex(deltaId(base))).toBe(toHex(sha256(expected)));
  });

  it('encodes an hlc writer as 0x01 || 32 bytes and lengths ≥ 128 as two-byte varints', () => {
    const d: UnsignedDelta = {
      ...base,
      actions: [{ key: new Uint8Array(200), value: undefined }],
      hlc: { wallMs: 1, counter: 0, writer: pk },
    };
    const body = encodeDeltaBody(d);
    // tag(1) parents(33) count(1) keylen(2: c8 01) key(200) op(1) hlc(8+4+1+32) root(32) logIndex(8)
    expect(body.length).toBe(1 + 33 + 1 + 2 + 200 + 1 + 45 + 32 + 8);
    expect(toHex(body.subarray(35, 37))).toBe('c801');
    expect(equalBytes(body.subarray(1 + 33 + 1 + 2 + 200 + 1 + 13, 1 + 33 + 1 + 2 + 200 + 1 + 45), pk)).toBe(true);
  });

  it('a different parent order is not canonical; signDelta sorts and de-duplicates parents', () => {
    const p1 = fill(1);
    const p2 = fill(2);
    expect(() => encodeDeltaBody({ ...base, parents: [p2, p1] })).toThrow(RangeError);
    const signed = signDelta({ ...base, parents: [p2, p1, p2] }, sk);
    expect(signed.parents.map(toHex)).toEqual([toHex(p1), toHex(p2)]);
    verifyDelta(signed, pk);
  });

  const bad: [string, Partial<UnsignedDelta>, string][] = [
    ['no parents', { parents: [] }, 'expected at least one parent (use [EMPTY_ROOT] for the first delta)'],
    ['31-byte parent', { parents: [new Uint8Array(31)] }, 'expected 32-byte parents[0], got 31'],
    ['genesis beside another parent', { parents: [EMPTY_ROOT, fill(1)] }, 'the genesis parent may only appear alone'],
    ['unsorted actions', { actions: [{ key: b('b'), value: undefined }, { key: b('a'), value: undefined }] }, 'expected action keys strictly increasing, actions[1] is not'],
    ['repeated key', { actions: [{ key: b('a'), value: undefined }, { key: b('a'), value: b('') }] }, 'expected action keys strictly increasing, actions[1] is not'],
    ['31-byte stateRoot', { stateRoot: new Uint8Array(31) }, 'expected 32-byte stateRoot, got 31'],
    ['negative logIndex', { logIndex: -1 }, 'expected logIndex to be a safe non-negative integer, got -1'],
    ['unsafe logIndex', { logIndex: 2 ** 53 }, 'expected logIndex to be a safe non-negative integer, got 9007199254740992'],
    ['counter over u32', { hlc: { wallMs: 0, counter: 2 ** 32 } }, 'expected hlc.counter to be a u32, got 4294967296'],
    ['short hlc writer', { hlc: { wallMs: 0, counter: 0, writer: new Uint8Array(31) } }, 'expected 32-byte hlc.writer, got 31'],
  ];
  it.each(bad)('refuses to encode a delta with %s', (_name, patch, message) => {
    expect(() => encodeDeltaBody({ ...base, ...patch })).toThrow(message);
  });
});

describe('sign and verify', () => {
  it('verifies a signed delta and returns it', () => {
    const d = signDelta(base, sk);
    expect(verifyDelta(d, pk)).toBe(d);
    expect(equalBytes(d.id, deltaId(base))).toBe(true);
    // The signature is plain Ed25519 over the context string and the id.
    expect(ed25519.verify(d.signature, concatBytes(b('proofsync/delta/1'), d.id), pk)).toBe(true);
  });

  it('re-derives the id: a claimed id that is not the content hash is DeltaIdMismatch', () => {
    const d = signDelta(base, sk);
    const forged: Delta = { ...d, actions: [{ key: b('a'), value: b('evil') }] };
    expect(() => verifyDelta(forged, pk)).toThrow(expect.objectContaining({ name: 'DeltaIdMismatch' }));
  });

  it('content changed together with its id fails the signature', () => {
    const d = signDelta(base, sk);
    const changed: UnsignedDelta = { ...d, logIndex: 4 };
    const forged: Delta = { ...changed, id: deltaId(changed), signature: d.signature };
    expect(() => verifyDelta(forged, pk)).toThrow(expect.objectContaining({ name: 'InvalidSignature' }));
  });

  const sigCases: [string, (d: Delta) => Delta, Uint8Array][] = [
    ['another key signed it', () => signDelta(base, otherSk), pk],
    ['verified under another key', (d) => d, ed25519.getPublicKey(otherSk)],
    ['signature bit flipped', (d) => ({ ...d, signature: d.signature.map((x, i) => (i === 5 ? x ^ 1 : x)) }), pk],
    ['63-byte signature', (d) => ({ ...d, signature: d.signature.subarray(0, 63) }), pk],
    ['all-zero signature', (d) => ({ ...d, signature: new Uint8Array(64) }), pk],
    ['malformed public key', (d) => d, new Uint8Array(31)],
  ];
  it.each(sigCases)('rejects when %s', (_name, tamper, key) => {
    const d = tamper(signDelta(base, sk));
    expect(() => verifyDelta(d, key)).toThrow(expect.objectContaining({ name: 'InvalidSignature' }));
  });
});

// ---------------------------------------------------------------------------------------------

const id32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const arbUnsigned: fc.Arbitrary<UnsignedDelta> = fc
  .record({
    parents: fc.array(id32, { minLength: 1, maxLength: 4 }),
    actions: fc.array(
      fc.record({
        key: fc.uint8Array({ maxLength: 40 }),
        value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
      }),
      { maxLength: 8 },
    ),
    wallMs: fc.maxSafeNat(),
    counter: fc.nat({ max: 0xffff_ffff }),
    writer: fc.option(id32, { nil: undefined }),
    stateRoot: id32,
    logIndex: fc.maxSafeNat(),
  })
  .map((r) => {
    let parents = canonicalIds(r.parents);
    if (parents.length > 1) parents = parents.filter((p) => !equalBytes(p, EMPTY_ROOT));
    const actions: KeyChange[] = [];
    for (const a of [...r.actions].sort((x, y) => compareBytes(x.key, y.key))) {
      if (actions.length === 0 || !equalBytes(actions[actions.length - 1].key, a.key)) actions.push(a);
    }
    const hlc = r.writer ? { wallMs: r.wallMs, counter: r.counter, writer: r.writer } : { wallMs: r.wallMs, counter: r.counter };
    return { parents, actions, hlc, stateRoot: r.stateRoot, logIndex: r.logIndex };
  });

describe('wire encoding', () => {
  it('round-trips any delta: decode(encode(d)) equals d, verifies, re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(arbUnsigned, (u) => {
        const d = signDelta(u, sk);
        const wire = encodeDelta(d);
        expect(wire.length).toBe(deltaWireLength(d));
        const back = decodeDelta(wire);
        expect(toHex(back.id)).toBe(toHex(d.id));
        expect(back.parents.map(toHex)).toEqual(d.parents.map(toHex));
        expect(back.actions.map((a) => [toHex(a.key), a.value && toHex(a.value)])).toEqual(
          d.actions.map((a) => [toHex(a.key), a.value && toHex(a.value)]),
        );
        expect(back.hlc.wallMs).toBe(d.hlc.wallMs);
        expect(back.hlc.counter).toBe(d.hlc.counter);
        expect(back.hlc.writer && toHex(back.hlc.writer)).toBe(d.hlc.writer && toHex(d.hlc.writer));
        expect(back.logIndex).toBe(d.logIndex);
        verifyDelta(back, pk);
        expect(toHex(encodeDelta(back))).toBe(toHex(wire));
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('any single-byte change is refused by decode or by verify, never accepted', () => {
    fc.assert(
      fc.property(arbUnsigned, fc.nat(), fc.integer({ min: 1, max: 255 }), (u, at, x) => {
        const wire = encodeDelta(signDelta(u, sk));
        const tampered = wire.slice();
        tampered[at % wire.length] ^= x;
        let decoded: Delta;
        try {
          decoded = decodeDelta(tampered);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
          return;
        }
        expect(() => verifyDelta(decoded, pk)).toThrow(VerificationError);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('garbage never throws anything but a DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          decodeDelta(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('every strict prefix of a valid message is TruncatedInput', () => {
    const wire = encodeDelta(signDelta({ ...base, hlc: { ...base.hlc, writer: pk } }, sk));
    for (let n = 0; n < wire.length; n++) {
      expect(() => decodeDelta(wire.subarray(0, n)), `prefix ${n}`).toThrow(
        expect.objectContaining({ name: 'TruncatedInput' }),
      );
    }
  });

  // Hostile inputs, each built from the documented layout.
  const sig = new Uint8Array(64);
  const tail = concatBytes(fromHex('0000000000000001'), fromHex('00000000'), Uint8Array.of(0), fill(9), fromHex('0000000000000000'), sig);
  const msg = (...parts: Uint8Array[]) => concatBytes(...parts);
  const genesisParents = msg(Uint8Array.of(1), EMPTY_ROOT);
  const noActions = Uint8Array.of(0);
  const hostile: [string, Uint8Array, string, Partial<Parameters<typeof decodeDelta>[1]>?][] = [
    ['valid baseline', msg(Uint8Array.of(1), genesisParents, noActions, tail), 'ok'],
    ['empty input', new Uint8Array(0), 'TruncatedInput'],
    ['unknown tag', msg(Uint8Array.of(2), genesisParents, noActions, tail), 'NonCanonicalEncoding'],
    ['zero parents', msg(Uint8Array.of(1, 0), noActions, tail), 'NonCanonicalEncoding'],
    ['parents unsorted', msg(Uint8Array.of(1, 2), fill(2), fill(1), noActions, tail), 'NonCanonicalEncoding'],
    ['parent repeated', msg(Uint8Array.of(1, 2), fill(2), fill(2), noActions, tail), 'NonCanonicalEncoding'],
    ['genesis beside another parent', msg(Uint8Array.of(1, 2), EMPTY_ROOT, fill(2), noActions, tail), 'NonCanonicalEncoding'],
    ['too many parents', msg(Uint8Array.of(1, 65), noActions, tail), 'TooManyItems'],
    ['parent count beyond the bytes left', msg(Uint8Array.of(1, 40), noActions, tail), 'TruncatedInput'],
    ['huge action count, tiny input', msg(Uint8Array.of(1), genesisParents, fromHex('ffffffff0f'), tail), 'TooManyItems'],
    ['action count beyond the bytes left', msg(Uint8Array.of(1), genesisParents, fromHex('e807'), Uint8Array.of(0, 0)), 'TruncatedInput', { maxActions: 2000 }],
    ['overlong varint (0x80 0x00)', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(0x80, 0x00), tail), 'InvalidVarint'],
    ['varint longer than 8 bytes', msg(Uint8Array.of(1), genesisParents, fromHex('808080808080808001'), tail), 'InvalidVarint'],
    ['actions unsorted', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(2, 1, 0x62, 0, 1, 0x61, 0), tail), 'NonCanonicalEncoding'],
    ['action key repeated', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(2, 1, 0x61, 0, 1, 0x61, 0), tail), 'NonCanonicalEncoding'],
    ['action op 2', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(1, 1, 0x61, 2), tail), 'NonCanonicalEncoding'],
    ['key over the limit', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(1, 5), b('abcde'), Uint8Array.of(0), tail), 'FieldTooLarge', { maxKeyBytes: 4 }],
    ['value over the limit', msg(Uint8Array.of(1), genesisParents, Uint8Array.of(1, 1, 0x61, 1, 5), b('abcde'), tail), 'FieldTooLarge', { maxValueBytes: 4 }],
    ['hlc writer flag 2', msg(Uint8Array.of(1), genesisParents, noActions, fromHex('0000000000000001'), fromHex('00000000'), Uint8Array.of(2), fill(9), fromHex('0000000000000000'), sig), 'NonCanonicalEncoding'],
    ['wallMs above 2^53 - 1', msg(Uint8Array.of(1), genesisParents, noActions, fromHex('0020000000000000'), tail.subarray(8)), 'IntegerOutOfRange'],
    ['logIndex above 2^53 - 1', msg(Uint8Array.of(1), genesisParents, noActions, tail.subarray(0, 45), fromHex('ffffffffffffffff'), sig), 'IntegerOutOfRange'],
    ['signature missing a byte', msg(Uint8Array.of(1), genesisParents, noActions, tail.subarray(0, tail.length - 1)), 'TruncatedInput'],
    ['a trailing byte', msg(Uint8Array.of(1), genesisParents, noActions, tail, Uint8Array.of(0)), 'TrailingBytes'],
    ['message over maxBytes', msg(Uint8Array.of(1), genesisParents, noActions, tail), 'MessageTooLarge', { maxBytes: 100 }],
  ];
  it.each(hostile)('%s → %s', (_name, bytes, expected, limits) => {
    if (expected === 'ok') {
      expect(decodeDelta(bytes, limits).logIndex).toBe(0);
      return;
    }
    let caught: unknown;
    try {
      decodeDelta(bytes, limits);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DecodeError);
    expect((caught as Error).name).toBe(expected);
  });

  it('decoded bytes never alias the input buffer', () => {
    const wire = encodeDelta(signDelta(base, sk));
    const d = decodeDelta(wire);
    wire.fill(0);
    verifyDelta(d, pk);
  });
});
