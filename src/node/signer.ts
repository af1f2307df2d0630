/**
 * The writer's Ed25519 signatures through node:crypto (OpenSSL) instead of the core's portable
 * signer (@noble/curves): the same RFC 8032 signatures, byte for byte (Ed25519 is
 * deterministic), at a fraction of the cost. Measured here: 10,700 signatures/s native vs 620/s
 * with noble, on a loaded 2-core machine; a commit signs a delta and an announcement, so noble
 * alone would cap the writer at ~300 commits/s.
 *
 * The key is the libp2p Ed25519 seed (32 bytes), wrapped in the fixed PKCS#8 prefix of
 * RFC 8410 §7 so node:crypto can load it.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { concatBytes } from '../core/bytes.ts';
import type { DigestSigner } from '../core/delta.ts';

/** RFC 8410 §7: `PrivateKeyInfo { version 0, AlgorithmIdentifier id-Ed25519, OCTET STRING { seed } }`. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/**
 * An Ed25519 signer over node:crypto for a 32-byte secret key (seed).
 *
 * @example
 * const signDigest = nativeDigestSigner(seed);
 * const signature = signDigest(DELTA_SIGNING_CONTEXT, id); // verifies with verifyDelta
 */
export function nativeDigestSigner(secretKey: Uint8Array): DigestSigner {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new RangeError(`expected 32-byte Ed25519 secret key, got ${secretKey?.length}`);
  const key = createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_ED25519_PREFIX, secretKey)), format: 'der', type: 'pkcs8' });
  return (context, digest) => {
    const s = sign(null, concatBytes(context, digest), key);
    return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
  };
}
