import { ed25519 } from '@noble/curves/ed25519.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sessionIdentity } from './identity.ts';

describe('sessionIdentity', () => {
  afterEach(() => void vi.unstubAllGlobals());
  const msg = new TextEncoder().encode('noise handshake payload');

  it.each([
    ['WebCrypto', false],
    ['noble, without SubtleCrypto', true],
  ])('through %s: an Ed25519 key whose public half matches its seed and whose signatures verify', async (_n, withoutSubtle) => {
    const generate = withoutSubtle ? undefined : vi.spyOn(globalThis.crypto.subtle, 'generateKey');
    if (withoutSubtle) vi.stubGlobal('crypto', { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) });
    const key = await sessionIdentity();
    expect(key.type).toBe('Ed25519');
    expect(key.raw.length).toBe(64);
    expect(key.publicKey.raw).toEqual(ed25519.getPublicKey(key.raw.subarray(0, 32)));
    expect(await key.publicKey.verify(msg, await key.sign(msg))).toBe(true);
    if (generate) expect(generate).toHaveBeenCalledTimes(1);
    generate?.mockRestore();
  });

  it('gives a different key each time', async () => {
    const [a, b] = await Promise.all([sessionIdentity(), sessionIdentity()]);
    expect(a.publicKey.raw).not.toEqual(b.publicKey.raw);
  });
});
