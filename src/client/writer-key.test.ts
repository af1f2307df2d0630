import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writerPublicKey } from './writer-key.ts';

describe('writerPublicKey', () => {
  it("gives the key @libp2p/peer-id decodes, for generated Ed25519 ids", async () => {
    for (let i = 0; i < 20; i++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
      expect(writerPublicKey(id)).toEqual(peerIdFromString(id).publicKey!.raw);
    }
  });

  it('reads the README example writer', () => {
    const id = '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSU';
    expect(writerPublicKey(id)).toEqual(peerIdFromString(id).publicKey!.raw);
  });

  it.each([
    ['a secp256k1 id', '16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY'],
    ['a hashed (RSA) id', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'],
    ['not base58 (0, O, I, l)', '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdS0'],
    ['one character short', '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdS'],
    ['one character long', '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSUU'],
    ['empty', ''],
    ['leading zero bytes', '1112D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSU'],
    ['very long', '1'.repeat(10_000)],
  ])('rejects %s with TypeError', (_name, id) => {
    expect(() => writerPublicKey(id)).toThrow(TypeError);
  });

  it('never accepts what @libp2p/peer-id does not read as an Ed25519 id (any base58 text)', () => {
    const base58 = fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{0,60}$/);
    fc.assert(
      fc.property(base58, (id) => {
        let expected: Uint8Array | undefined;
        try {
          const p = peerIdFromString(id);
          expected = p.type === 'Ed25519' ? p.publicKey.raw : undefined;
        } catch {
          expected = undefined;
        }
        let got: Uint8Array | undefined;
        try {
          got = writerPublicKey(id);
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
        }
        expect(got).toEqual(expected);
      }),
    );
  });
});
