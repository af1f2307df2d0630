/**
 * The bytes of the light client's session key (identity.ts), made by WebCrypto: no libp2p code,
 * so the worker starts generating it the moment it starts (the key pair is made off this
 * thread) while its libp2p chunk, which turns the bytes into a libp2p key, is still loading.
 */

function fromBase64Url(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A fresh Ed25519 key as libp2p's raw private key (the 32-byte seed, then the public key), or
 * undefined where WebCrypto has no Ed25519.
 *
 * @example
 * const raw = await sessionKeyBytes(); // 64 bytes, or undefined
 */
export async function sessionKeyBytes(): Promise<Uint8Array | undefined> {
  try {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
    const d = fromBase64Url(jwk.d ?? '');
    const x = fromBase64Url(jwk.x ?? '');
    if (d.length !== 32 || x.length !== 32) return undefined;
    const raw = new Uint8Array(64);
    raw.set(d);
    raw.set(x, 32);
    return raw;
  } catch {
    return undefined;
  }
}
