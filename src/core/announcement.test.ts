import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { concatBytes, fromHex, toHex } from './bytes.ts';
import { DecodeError } from './errors.ts';
import {
  announcementDigest,
  decodeAnnouncement,
  encodeAnnouncement,
  encodeAnnouncementBody,
  signAnnouncement,
  supersedes,
  verifyAnnouncement,
  verifyAnnouncementAsync,
  type Announcement,
  type SignedAnnouncement,
} from './announcement.ts';
import { DELTA_SIGNING_CONTEXT, signDelta, verifySignature } from './delta.ts';
import { EMPTY_ROOT } from './types.ts';

const sk = sha256(new TextEncoder().encode('proofsync test writer'));
const pk = ed25519.getPublicKey(sk);
const otherSk = sha256(new TextEncoder().encode('someone else'));
const fill = (n: number, len = 32) => new Uint8Array(len).fill(n);
const db = new TextEncoder().encode('notes');

const base: Announcement = {
  db,
  seq: 2,
  stateRoot: fill(0x11),
  logRoot: fill(0x22),
  logSize: 5,
  heads: [fill(3), fill(4)],
  hlc: { wallMs: 1000, counter: 1 },
};

describe('canonical encoding', () => {
  it('lays out every field exactly as documented', () => {
    const expected = concatBytes(
      Uint8Array.of(0x02, 5), db,
      fromHex('0000000000000002'), fill(0x11), fill(0x22), fromHex('0000000000000005'),
      Uint8Array.of(2), fill(3), fill(4),
      fromHex('00000000000003e8'), fromHex('00000001'), Uint8Array.of(0),
    );
    expect(toHex(encodeAnnouncementBody(base))).toBe(toHex(expected));
    expect(toHex(announcementDigest(base))).toBe(toHex(sha256(expected)));
  });

  const bad: [string, Partial<Announcement>, string][] = [
    ['empty db id', { db: new Uint8Array(0) }, 'expected a 1..64-byte db id, got 0'],
    ['65-byte db id', { db: new Uint8Array(65) }, 'expected a 1..64-byte db id, got 65'],
    ['unsorted heads', { heads: [fill(4), fill(3)] }, 'expected heads strictly increasing, item 1 is not'],
    ['short logRoot', { logRoot: new Uint8Array(31) }, 'expected 32-byte logRoot, got 31'],
    ['fractional seq', { seq: 1.5 }, 'expected seq to be a safe non-negative integer, got 1.5'],
  ];
  it.each(bad)('refuses to encode an announcement with %s', (_n, patch, message) => {
    expect(() => encodeAnnouncementBody({ ...base, ...patch })).toThrow(message);
  });
});

describe('sign, verify, decode', () => {
  it('round-trips and verifies; signAnnouncement sorts heads', () => {
    const a = signAnnouncement({ ...base, heads: [fill(4), fill(3)] }, sk);
    expect(a.heads.map(toHex)).toEqual([toHex(fill(3)), toHex(fill(4))]);
    const back = decodeAnnouncement(encodeAnnouncement(a));
    verifyAnnouncement(back, pk);
    expect(toHex(encodeAnnouncement(back))).toBe(toHex(encodeAnnouncement(a)));
    expect(back.seq).toBe(2);
    expect(back.logSize).toBe(5);
  });

  it('round-trips any announcement (property)', () => {
    const id32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.maxSafeNat(),
        fc.maxSafeNat(),
        fc.uniqueArray(id32, { maxLength: 5, selector: toHex }),
        fc.option(id32, { nil: undefined }),
        (dbId, seq, logSize, heads, writer) => {
          const a = signAnnouncement(
            { db: dbId, seq, stateRoot: fill(1), logRoot: fill(2), logSize, heads, hlc: { wallMs: seq, counter: 0, ...(writer ? { writer } : {}) } },
            sk,
          );
          const wire = encodeAnnouncement(a);
          const back = verifyAnnouncement(decodeAnnouncement(wire), pk);
          expect(toHex(encodeAnnouncement(back))).toBe(toHex(wire));
        },
      ),
      { seed: 11, numRuns: 100 },
    );
  });

  const tamper: [string, (a: SignedAnnouncement) => SignedAnnouncement, Uint8Array][] = [
    ['a higher seq', (a) => ({ ...a, seq: a.seq + 1 }), pk],
    ['a different stateRoot', (a) => ({ ...a, stateRoot: fill(0x12) }), pk],
    ['a head removed', (a) => ({ ...a, heads: a.heads.slice(1) }), pk],
    ['another database', (a) => ({ ...a, db: new TextEncoder().encode('notez') }), pk],
    ['another signer', () => signAnnouncement(base, otherSk), pk],
    ['a wrong-length signature', (a) => ({ ...a, signature: a.signature.subarray(1) }), pk],
  ];
  it.each(tamper)('rejects %s with InvalidSignature', (_n, f, key) => {
    const a = f(signAnnouncement(base, sk));
    expect(() => verifyAnnouncement(a, key)).toThrow(expect.objectContaining({ name: 'InvalidSignature' }));
  });

  // the same verdicts from WebCrypto's Ed25519 (Node has it) and from noble without WebCrypto
  describe.each([
    ['WebCrypto', false],
    ['noble, no WebCrypto', true],
  ])('verifyAnnouncementAsync through %s', (_n, withoutWebCrypto) => {
    afterEach(() => void vi.unstubAllGlobals());
    const setup = () => {
      // a runtime with random numbers but no SubtleCrypto
      if (withoutWebCrypto) vi.stubGlobal('crypto', { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) });
      else expect(globalThis.crypto?.subtle).toBeDefined();
    };
    it('accepts what the writer signed', async () => {
      setup();
      const verify = withoutWebCrypto ? undefined : vi.spyOn(globalThis.crypto.subtle, 'verify');
      const a = decodeAnnouncement(encodeAnnouncement(signAnnouncement(base, sk)));
      expect((await verifyAnnouncementAsync(a, pk)).seq).toBe(2);
      if (verify) expect(verify).toHaveBeenCalledTimes(1);
      verify?.mockRestore();
    });
    it.each(tamper)('rejects %s with InvalidSignature', async (_n2, f, key) => {
      setup();
      await expect(verifyAnnouncementAsync(f(signAnnouncement(base, sk)), key)).rejects.toMatchObject({ name: 'InvalidSignature' });
    });
    it('rejects a public key that is not a curve point', async () => {
      setup();
      // y = 2 encodes no point of edwards25519 (noble refuses it; Node's WebCrypto imports it)
      const notAPoint = fill(0).map((_, i) => (i === 0 ? 2 : 0));
      await expect(verifyAnnouncementAsync(signAnnouncement(base, sk), notAPoint)).rejects.toMatchObject({ name: 'InvalidSignature' });
    });
  });

  it('a delta signature never verifies as an announcement signature (domain separation)', () => {
    const d = signDelta({ parents: [EMPTY_ROOT], actions: [], hlc: { wallMs: 0, counter: 0 }, stateRoot: fill(1), logIndex: 0 }, sk);
    expect(verifySignature(DELTA_SIGNING_CONTEXT, d.id, d.signature, pk)).toBe(true);
    const digest = announcementDigest(base);
    // The writer signing `delta-context || X` does not authorise an announcement with digest X.
    const asDelta = ed25519.sign(concatBytes(DELTA_SIGNING_CONTEXT, digest), sk);
    expect(() => verifyAnnouncement({ ...base, signature: asDelta }, pk)).toThrow(
      expect.objectContaining({ name: 'InvalidSignature' }),
    );
  });

  const good = encodeAnnouncement(signAnnouncement(base, sk));
  const hostile: [string, Uint8Array, string, { maxBytes?: number; maxHeads?: number }?][] = [
    ['empty', new Uint8Array(0), 'TruncatedInput'],
    ['delta tag', concatBytes(Uint8Array.of(1), good.subarray(1)), 'NonCanonicalEncoding'],
    ['db length 0', concatBytes(Uint8Array.of(2, 0), good.subarray(7)), 'NonCanonicalEncoding'],
    ['db length 65', concatBytes(Uint8Array.of(2, 65), new Uint8Array(200)), 'FieldTooLarge'],
    ['heads over the limit', good, 'TooManyItems', { maxHeads: 1 }],
    ['heads unsorted', concatBytes(good.subarray(0, 88), fill(4), fill(3), good.subarray(152)), 'NonCanonicalEncoding'],
    ['seq above 2^53 - 1', concatBytes(good.subarray(0, 7), fromHex('ffffffffffffffff'), good.subarray(15)), 'IntegerOutOfRange'],
    ['truncated signature', good.subarray(0, good.length - 1), 'TruncatedInput'],
    ['trailing byte', concatBytes(good, Uint8Array.of(0)), 'TrailingBytes'],
    ['over maxBytes', good, 'MessageTooLarge', { maxBytes: 64 }],
  ];
  it.each(hostile)('hostile: %s → %s', (_n, bytes, name, limits) => {
    let caught: unknown;
    try {
      decodeAnnouncement(bytes, limits);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DecodeError);
    expect((caught as Error).name).toBe(name);
  });

  it('every prefix is TruncatedInput; garbage is only ever a DecodeError', () => {
    for (let n = 0; n < good.length; n++) {
      expect(() => decodeAnnouncement(good.subarray(0, n))).toThrow(DecodeError);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeAnnouncement(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { seed: 13, numRuns: 1000 },
    );
  });
});

describe('version 2: the checkpoint', () => {
  const withCheckpoint: Announcement = { ...base, seq: 9, checkpoint: { seq: 4, root: fill(0x44) } };

  it('appends seq and root after the v1 fields under tag 0x03; without a checkpoint the body is v1', () => {
    const v1 = encodeAnnouncementBody({ ...withCheckpoint, checkpoint: undefined });
    const v2 = encodeAnnouncementBody(withCheckpoint);
    expect(v1[0]).toBe(0x02);
    expect(toHex(v2)).toBe(toHex(concatBytes(Uint8Array.of(0x03), v1.subarray(1), fromHex('0000000000000004'), fill(0x44))));
    const { checkpoint: _, ...plain } = withCheckpoint;
    expect(toHex(encodeAnnouncementBody(plain))).toBe(toHex(v1));
  });

  it('round-trips v1 and v2 and verifies both; a v1 decode has no checkpoint key', () => {
    for (const a of [base, withCheckpoint, { ...base, checkpoint: { seq: base.seq, root: base.stateRoot } }]) {
      const signed = signAnnouncement(a, sk);
      const decoded = decodeAnnouncement(encodeAnnouncement(signed));
      expect(decoded).toEqual(signed);
      expect('checkpoint' in decoded).toBe(a.checkpoint !== undefined);
      expect(() => verifyAnnouncement(decoded, pk)).not.toThrow();
    }
  });

  it('the signature covers the checkpoint: another checkpoint under the same signature fails', () => {
    const signed = signAnnouncement(withCheckpoint, sk);
    expect(() => verifyAnnouncement({ ...signed, checkpoint: { seq: 4, root: fill(0x45) } }, pk)).toThrow('does not verify');
    expect(() => verifyAnnouncement({ ...signed, checkpoint: undefined }, pk)).toThrow('does not verify');
  });

  it.each([
    ['a checkpoint after the announcement', { seq: 10, root: fill(0x44) }, 'checkpoint.seq 10 is after'],
    ['a checkpoint at its own seq with another root', { seq: 9, root: fill(0x44) }, 'must have its stateRoot'],
    ['a short root', { seq: 4, root: new Uint8Array(31) }, 'expected 32-byte checkpoint.root'],
    ['a negative seq', { seq: -1, root: fill(0x44) }, 'safe non-negative integer'],
  ])('refuses to encode %s', (_n, checkpoint, message) => {
    expect(() => encodeAnnouncementBody({ ...withCheckpoint, checkpoint })).toThrow(message);
  });

  /** A v2 wire message with `checkpoint` written raw (bypassing the encoder's checks). */
  const hostile = (cseq: bigint, root: Uint8Array, tag = 0x03): Uint8Array => {
    const v1 = encodeAnnouncementBody({ ...withCheckpoint, checkpoint: undefined });
    const seq = new Uint8Array(8);
    new DataView(seq.buffer).setBigUint64(0, cseq);
    return concatBytes(Uint8Array.of(tag), v1.subarray(1), seq, root, fill(0, 64));
  };

  it.each([
    ['checkpoint.seq > seq', hostile(10n, fill(0x44)), 'NonCanonicalEncoding'],
    ['checkpoint at seq with a root other than stateRoot', hostile(9n, fill(0x44)), 'NonCanonicalEncoding'],
    ['checkpoint.seq above 2^53 - 1', hostile(1n << 60n, fill(0x44)), 'IntegerOutOfRange'],
    ['a checkpoint under the v1 tag (trailing bytes)', hostile(4n, fill(0x44), 0x02), 'TrailingBytes'],
    ['an unknown tag', hostile(4n, fill(0x44), 0x04), 'NonCanonicalEncoding'],
  ])('decoding refuses %s', (_n, bytes, name) => {
    let caught: unknown;
    try {
      decodeAnnouncement(bytes);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DecodeError);
    expect((caught as Error).name).toBe(name);
  });

  it('a v2 message cut anywhere is a DecodeError, v1 tag or not', () => {
    const good = encodeAnnouncement(signAnnouncement(withCheckpoint, sk));
    expect(decodeAnnouncement(good).checkpoint?.seq).toBe(4);
    for (let n = 0; n < good.length; n++) expect(() => decodeAnnouncement(good.subarray(0, n))).toThrow(DecodeError);
    // a v2 body relabelled v1 has 40 bytes too many
    const relabelled = good.slice();
    relabelled[0] = 0x02;
    expect(() => decodeAnnouncement(relabelled)).toThrow(DecodeError);
  });
});

describe('supersedes', () => {
  const cases: [string, Announcement, Announcement | undefined, boolean][] = [
    ['nothing yet', base, undefined, true],
    ['higher seq', { ...base, seq: 3 }, base, true],
    ['same seq', base, base, false],
    ['lower seq', { ...base, seq: 1 }, base, false],
    ['another database', { ...base, seq: 9, db: fill(1, 4) }, base, false],
  ];
  it.each(cases)('%s → %s', (_n, next, current, expected) => {
    expect(supersedes(next, current)).toBe(expected);
  });
});
