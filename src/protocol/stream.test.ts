import { streamPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { PeerLimits } from './peer-limits.ts';
import { encodeVarint, readFrame, RequestTimeout, writeFrame } from './stream.ts';

const bytes = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);

describe('encodeVarint', () => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [1, [1]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
  ];
  for (const [n, enc] of cases) it(`${n}`, () => expect([...encodeVarint(n)]).toEqual(enc));
  it('rejects negatives', () => expect(() => encodeVarint(-1)).toThrow(RangeError));
});

describe('readFrame / writeFrame', () => {
  it('round-trips frames of several sizes, back to back, surplus kept for the next read', async () => {
    const [a, b] = await streamPair();
    const bodies = [bytes(0), bytes(1, 1), bytes(200, 2), bytes(70_000, 3)];
    for (const body of bodies) await writeFrame(a, body);
    for (const body of bodies) expect(await readFrame(b, { maxBytes: 100_000 })).toEqual(body);
  });

  it('reassembles a frame sent one byte at a time', async () => {
    const [a, b] = await streamPair();
    const body = bytes(300, 9);
    const wire = new Uint8Array([...encodeVarint(300), ...body]);
    const read = readFrame(b, { maxBytes: 1000 });
    for (const byte of wire) a.send(Uint8Array.of(byte));
    expect(await read).toEqual(body);
  });

  it('rejects an oversize frame from its prefix alone, before any body arrives', async () => {
    const [a, b] = await streamPair();
    const read = readFrame(b, { maxBytes: 1024 });
    a.send(encodeVarint(1025)); // no body ever follows, the stream stays open
    await expect(read).rejects.toMatchObject({ name: 'MessageTooLarge' });
  });

  it('rejects a partial prefix that already proves the frame too large', async () => {
    const [a, b] = await streamPair();
    const read = readFrame(b, { maxBytes: 100 });
    a.send(Uint8Array.of(0x80)); // continuation: at least 128
    await expect(read).rejects.toMatchObject({ name: 'MessageTooLarge' });
  });

  const hostile: [string, Uint8Array, string][] = [
    ['non-minimal prefix', Uint8Array.of(0x81, 0x00), 'InvalidVarint'],
    ['prefix then end', Uint8Array.of(5), 'TruncatedInput'],
    ['half a body then end', Uint8Array.of(4, 1, 2), 'TruncatedInput'],
    ['half a prefix then end', Uint8Array.of(0x80), 'TruncatedInput'],
    ['nothing then end', new Uint8Array(0), 'TruncatedInput'],
  ];
  for (const [label, wire, name] of hostile) {
    it(`hostile input: ${label} -> ${name}`, async () => {
      const [a, b] = await streamPair();
      const read = readFrame(b, { maxBytes: 1 << 20 });
      if (wire.length) a.send(wire);
      await a.close();
      await expect(read).rejects.toMatchObject({ name });
    });
  }

  it('reports a reset as StreamReset', async () => {
    const [a, b] = await streamPair();
    const read = readFrame(b, { maxBytes: 100 });
    a.send(Uint8Array.of(10, 1));
    a.abort(new Error('boom'));
    await expect(read).rejects.toMatchObject({ name: 'StreamReset' });
  });

  it('rejects with the signal reason when aborted', async () => {
    const [, b] = await streamPair();
    const controller = new AbortController();
    const read = readFrame(b, { maxBytes: 100, signal: controller.signal });
    controller.abort(new RequestTimeout('deadline'));
    await expect(read).rejects.toMatchObject({ name: 'RequestTimeout' });
  });
});

describe('PeerLimits', () => {
  it('caps streams in flight per peer, independently per peer', () => {
    const limits = new PeerLimits({ maxConcurrent: 2 });
    const a1 = limits.admit('a');
    const a2 = limits.admit('a');
    expect(a1.ok && a2.ok).toBe(true);
    expect(limits.admit('a')).toMatchObject({ ok: false, reason: 'TooManyStreams' });
    expect(limits.admit('b').ok).toBe(true);
    if (a1.ok) {
      a1.release();
      a1.release(); // idempotent
    }
    expect(limits.active('a')).toBe(1);
    expect(limits.admit('a').ok).toBe(true);
  });

  it('refills the token bucket with the injected clock', () => {
    let now = 0;
    const limits = new PeerLimits({ maxConcurrent: 100, rate: { burst: 2, perSecond: 1 }, now: () => now });
    const take = () => {
      const r = limits.admit('p');
      if (r.ok) r.release();
      return r;
    };
    expect(take().ok).toBe(true);
    expect(take().ok).toBe(true);
    expect(take()).toMatchObject({ ok: false, reason: 'RateLimited', retryAfterMs: 1000 });
    now = 500;
    expect(take().ok).toBe(false);
    now = 1000;
    expect(take().ok).toBe(true);
    now = 1_000_000;
    expect(take().ok).toBe(true);
    expect(take().ok).toBe(true);
    expect(take().ok).toBe(false); // capped at burst
  });

  it('prunes idle peers beyond maxTrackedPeers', () => {
    const limits = new PeerLimits({ maxConcurrent: 1, maxTrackedPeers: 2 });
    const held = limits.admit('held');
    for (const p of ['x', 'y', 'z']) {
      const r = limits.admit(p);
      if (r.ok) r.release();
    }
    expect(limits.active('held')).toBe(1);
    expect(held.ok).toBe(true);
  });
});
