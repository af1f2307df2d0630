import type { Connection, Stream, StreamHandler } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { streamPair } from '@libp2p/utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PeerLimits } from './peer-limits.ts';
import { encodeVarint, handle, raceAbort, readFrame, RequestTimeout, StreamReset, writeFrame, type Registrar } from './stream.ts';

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

describe('raceAbort and handle never leave a peer-caused rejection unhandled', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => void process.off('unhandledRejection', onUnhandled));
  /** Node reports unhandled rejections after the microtask queue drains: let two macrotasks pass. */
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

  it('a promise rejecting after the signal was already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new StreamReset('the peer reset the stream'));
    let fail!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (fail = reject));
    await expect(raceAbort(late, controller.signal)).rejects.toMatchObject({ name: 'StreamReset' });
    fail(new Error('handler failed after the reset'));
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a promise rejecting after the signal aborted mid-race', async () => {
    const controller = new AbortController();
    let fail!: (err: Error) => void;
    const late = new Promise<never>((_, reject) => (fail = reject));
    const raced = raceAbort(late, controller.signal);
    controller.abort(new StreamReset('reset'));
    await expect(raced).rejects.toMatchObject({ name: 'StreamReset' });
    fail(new Error('late'));
    await settle();
    expect(unhandled).toEqual([]);
  });

  /** `handle` on a registrar double that hands streams straight to the handler. */
  async function served(handler: Parameters<typeof handle>[2]): Promise<(stream: Stream) => void> {
    let registered: StreamHandler | undefined;
    const registrar: Registrar = {
      handle: async (_protocol: string, h: StreamHandler) => void (registered = h),
      unhandle: async () => {},
    } as unknown as Registrar;
    await handle(registrar, '/test/1/x', handler, { maxRequestBytes: 64, timeoutMs: 5_000, encodeError: (n) => new TextEncoder().encode(n) });
    const connection = { remotePeer: peerIdFromString('12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo') } as Connection;
    return (stream) => void registered!(stream, connection);
  }

  const cases: [string, (client: Stream, server: Stream) => Promise<void>][] = [
    [
      'the peer resets while the handler works, then the handler rejects',
      async (client) => {
        await writeFrame(client, Uint8Array.of(1));
        client.abort(new Error('reset by the peer'));
      },
    ],
    [
      'the request frame and a reset arrive together',
      async (client) => {
        client.send(new Uint8Array([...encodeVarint(1), 1]));
        client.abort(new Error('reset by the peer'));
      },
    ],
    [
      'the peer overflows the read buffer (libp2p aborts the stream)',
      async (client) => {
        // one chunk: the frame resolves the read, the surplus overflows the buffer in the same tick
        client.send(new Uint8Array([...encodeVarint(1), 1, ...new Uint8Array(4096)]));
      },
    ],
  ];
  for (const [label, attack] of cases) {
    it(label, async () => {
      let rejectLate!: (err: Error) => void;
      let onStarted!: () => void;
      const started = new Promise<void>((resolve) => (onStarted = resolve));
      const open = await served(() => {
        onStarted();
        return new Promise<Uint8Array>((_, reject) => (rejectLate = reject));
      });
      const [client, server] = await streamPair();
      open(server);
      await attack(client, server);
      await Promise.race([started, new Promise<void>((resolve) => server.addEventListener('close', () => resolve(), { once: true }))]);
      rejectLate?.(new Error('handler failed after the peer left'));
      await settle();
      expect(unhandled).toEqual([]);
    });
  }
});

describe('handle: stopping answers the requests in flight', () => {
  it('a request whose handler still works gets a ServerStopping frame, not a stream closed without one', async () => {
    let registered: StreamHandler | undefined;
    const registrar = {
      handle: async (_protocol: string, h: StreamHandler) => void (registered = h),
      unhandle: async () => {},
    } as unknown as Registrar;
    let onStarted!: () => void;
    const started = new Promise<void>((resolve) => (onStarted = resolve));
    // a handler held up (a proof waiting for the lock a stopping node holds)
    const stop = await handle(
      registrar,
      '/test/1/x',
      () => {
        onStarted();
        return new Promise<Uint8Array>(() => {});
      },
      { maxRequestBytes: 64, timeoutMs: 5_000, encodeError: (n) => new TextEncoder().encode(n) },
    );
    const [client, server] = await streamPair();
    registered!(server, { remotePeer: peerIdFromString('12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo') } as Connection);
    const answer = readFrame(client, { maxBytes: 64 });
    await writeFrame(client, Uint8Array.of(1));
    await started;
    await stop();
    // then the node closes its connections, and with them the stream
    await server.close();
    expect(new TextDecoder().decode(await answer)).toBe('ServerStopping');
  });
});
