import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 as noble } from '@noble/hashes/sha2.js';
import { sha256, sha256Again, sha256Js, sha256Resume, Sha256Midstates } from './sha256.ts';
import { sha256Wasm } from './sha256-wasm.ts';
import { toHex } from './bytes.ts';

describe('sha256', () => {
  // FIPS 180-4 examples
  it('"abc"', () => {
    expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('empty', () => {
    expect(toHex(sha256(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
  it('two-block message', () => {
    const m = new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
    expect(toHex(sha256(m))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });
  it('equals @noble/hashes on every length up to 300 and random inputs', () => {
    for (let n = 0; n <= 300; n++) {
      const m = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255);
      expect(toHex(sha256(m))).toBe(toHex(noble(m)));
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (m) => toHex(sha256(m)) === toHex(noble(m))),
      { numRuns: 200, seed: 9 },
    );
  });
  it('runs its block function in WebAssembly here, and the JavaScript one gives the same digests', () => {
    expect(sha256Wasm()).toBeDefined();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (m) => toHex(sha256Js(m)) === toHex(noble(m))),
      { numRuns: 200, seed: 11 },
    );
  });
  it('messages longer than the module\'s memory fall back to JavaScript', () => {
    const m = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 13 + 7) & 255);
    expect(toHex(sha256(m))).toBe(toHex(noble(m)));
    expect(toHex(sha256(m, 65_000))).toBe(toHex(noble(m.subarray(0, 65_000))));
  });
  it('hashes only the first `length` bytes when given', () => {
    const buf = Uint8Array.from({ length: 200 }, (_, i) => (i * 7) & 255);
    for (const n of [0, 1, 55, 56, 64, 69, 128, 199]) expect(toHex(sha256(buf, n))).toBe(toHex(noble(buf.subarray(0, n))));
  });
});

describe('sha256Again', () => {
  it('equals sha256 over a run of edited messages of changing lengths', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 700 }),
        fc.array(fc.record({ at: fc.nat(800), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }), length: fc.option(fc.nat(800), { nil: undefined }) }), { maxLength: 12 }),
        (first, edits) => {
          const m = new Sha256Midstates();
          let msg = first.slice();
          expect(toHex(sha256Again(msg, msg.length, m))).toBe(toHex(noble(msg)));
          for (const e of edits) {
            const length = e.length ?? msg.length;
            const next = new Uint8Array(Math.max(length, 1));
            next.set(msg.subarray(0, Math.min(msg.length, next.length)));
            next.set(e.bytes.subarray(0, Math.max(0, next.length - Math.min(e.at, next.length))), Math.min(e.at, next.length));
            msg = next.subarray(0, length);
            // the buffer is longer than the message: only `length` bytes count
            const buf = new Uint8Array(length + 16);
            buf.set(msg);
            buf.fill(0xee, length);
            expect(toHex(sha256Again(buf, length, m))).toBe(toHex(noble(msg)));
          }
        },
      ),
      { numRuns: 300, seed: 4 },
    );
  });
});

describe('sha256Resume', () => {
  it('equals sha256 after edits in place, in the module and (past its memory) in JavaScript', () => {
    for (const n of [70, 700, 70_000]) {
      const msg = Uint8Array.from({ length: n }, (_, i) => (i * 29 + n) & 255);
      const m = new Sha256Midstates();
      expect(toHex(sha256Again(msg, n, m))).toBe(toHex(noble(msg)));
      for (const at of [n - 1, Math.floor(n / 2), 3]) {
        m.bytes[at] ^= 0x5a;
        const edited = m.bytes.slice(0, n);
        expect(toHex(sha256Resume(m, at))).toBe(toHex(noble(edited)));
      }
    }
  });
});
