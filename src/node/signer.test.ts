/**
 * The writer's native Ed25519 signer (node:crypto) against RFC 8032's vectors and the SDK's
 * portable signer and verifier (@noble/curves): same signatures byte for byte, and every
 * signed delta and announcement verifies where a light client checks it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { decodeAnnouncement, encodeAnnouncement, signAnnouncement, signAnnouncementWith, verifyAnnouncement } from '../core/announcement.ts';
import { fromHex, toHex } from '../core/bytes.ts';
import { decodeDelta, DELTA_SIGNING_CONTEXT, encodeDelta, signDelta, signDeltaWith, signDigest, verifyDelta, verifySignature } from '../core/delta.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { SeededRandom } from './generate.ts';
import { nativeDigestSigner } from './signer.ts';

/** RFC 8032 §7.1, TEST 1 and TEST 2 (message = context || digest, here with an empty context). */
const RFC8032 = [
  {
    name: 'TEST 1 (empty message)',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2 (one byte)',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

describe('nativeDigestSigner', () => {
  for (const v of RFC8032) {
    it(`RFC 8032 ${v.name}`, () => {
      expect(toHex(nativeDigestSigner(fromHex(v.secret))(new Uint8Array(0), fromHex(v.message)))).toBe(v.signature);
    });
  }

  it('signs exactly as the portable signer, and the SDK verifier accepts it', () => {
    const rnd = new SeededRandom(11);
    for (let i = 0; i < 20; i++) {
      const secret = rnd.bytes(32);
      const digest = rnd.bytes(32);
      const sig = nativeDigestSigner(secret)(DELTA_SIGNING_CONTEXT, digest);
      expect(toHex(sig)).toBe(toHex(signDigest(DELTA_SIGNING_CONTEXT, digest, secret)));
      expect(verifySignature(DELTA_SIGNING_CONTEXT, digest, sig, ed25519.getPublicKey(secret))).toBe(true);
    }
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => nativeDigestSigner(new Uint8Array(31))).toThrow(RangeError);
    expect(() => nativeDigestSigner(new Uint8Array(64))).toThrow(RangeError);
  });
});

describe('signed deltas and announcements', () => {
  const secret = new SeededRandom(12).bytes(32);
  const publicKey = ed25519.getPublicKey(secret);
  const sign = nativeDigestSigner(secret);
  const hlc = { wallMs: 1_700_000_000_000, counter: 3, writer: publicKey };

  it('a delta: same encoding and id as the core signer, verified by the SDK', () => {
    const unsigned = {
      parents: [new Uint8Array(32).fill(9), new Uint8Array(32).fill(2)],
      actions: [{ key: Uint8Array.of(1), value: Uint8Array.of(2, 3) }, { key: Uint8Array.of(4), value: undefined }],
      hlc,
      stateRoot: new Uint8Array(32).fill(7),
      logIndex: 41,
    };
    const { delta, bytes } = signDeltaWith(unsigned, sign);
    expect(toHex(bytes)).toBe(toHex(encodeDelta(signDelta(unsigned, secret))));
    expect(toHex(bytes)).toBe(toHex(encodeDelta(delta)));
    const decoded = verifyDelta(decodeDelta(bytes), publicKey);
    expect(toHex(decoded.id)).toBe(toHex(delta.id));
    expect(decoded.parents.map(toHex)).toEqual([toHex(unsigned.parents[1]), toHex(unsigned.parents[0])]); // canonical order
    expect(() => verifyDelta(decodeDelta(bytes), ed25519.getPublicKey(new Uint8Array(32)))).toThrow(expect.objectContaining({ name: 'InvalidSignature' }));
  });

  it('an announcement: same bytes as the core signer, verified by the SDK', () => {
    const a = { db: new TextEncoder().encode('db'), seq: 5, stateRoot: EMPTY_ROOT, logRoot: new Uint8Array(32).fill(1), logSize: 9, heads: [new Uint8Array(32).fill(3)], hlc };
    const signed = signAnnouncementWith(a, sign);
    expect(toHex(encodeAnnouncement(signed))).toBe(toHex(encodeAnnouncement(signAnnouncement(a, secret))));
    verifyAnnouncement(decodeAnnouncement(encodeAnnouncement(signed)), publicKey);
  });
});
