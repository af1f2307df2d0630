import { describe, expect, it } from 'vitest';
import { backoffDelay, PeerBook } from './peers.ts';

describe('PeerBook', () => {
  it('tries every peer, then prefers the faster one, spreading by load', () => {
    const book = new PeerBook(['slow', 'fast']);
    expect(book.choose(0)).toBe('slow'); // no samples: first untried
    book.started('slow');
    expect(book.choose(0)).toBe('fast');
    book.started('fast');
    book.succeeded('slow', 100, 1000);
    book.succeeded('fast', 10, 1000);
    expect(book.choose(0)).toBe('fast');
    book.started('fast');
    book.started('fast');
    // fast: 10 ms × 3 in flight = 30 < slow 100 ms
    expect(book.choose(0)).toBe('fast');
    for (let i = 0; i < 8; i++) book.started('fast');
    expect(book.choose(0)).toBe('slow');
    expect(book.get('fast')!.bytesPerMs).toBe(100);
  });

  it('backs a failing peer off with 10 ms·1.5^n capped at 1 s, and a success clears it', () => {
    expect([0, 1, 2, 3, 20].map(backoffDelay)).toEqual([0, 10, 15, 22.5, 1000]);
    const book = new PeerBook(['a']);
    book.started('a');
    book.failed('a', 1000);
    expect(book.choose(1005)).toBeUndefined();
    expect(book.nextAvailable(1005)).toBe(1010);
    expect(book.choose(1010)).toBe('a');
    book.started('a');
    book.failed('a', 1010);
    expect(book.nextAvailable(1010)).toBe(1025);
    book.started('a');
    book.succeeded('a', 5, 10);
    expect(book.choose(1011)).toBe('a');
  });

  it('bans a peer at the configured number of invalid proofs', () => {
    const book = new PeerBook(['liar', 'honest'], { banAfter: 2 });
    book.started('liar');
    expect(book.penalise('liar', 0)).toBe(false);
    book.started('liar');
    expect(book.penalise('liar', 100)).toBe(true);
    expect(book.active).toBe(1);
    expect(book.choose(1e9)).toBe('honest');
    expect(book.get('liar')).toMatchObject({ banned: true, invalid: 2 });
  });

  it('respects a per-peer limit', () => {
    const book = new PeerBook(['a'], { maxInFlightPerPeer: 1 });
    book.started('a');
    expect(book.choose(0)).toBeUndefined();
    expect(() => book.started('nobody')).toThrow(RangeError);
  });
});
