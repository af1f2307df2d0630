/**
 * The Yamux guard on a real Yamux muxer pair over an in-memory connection: honest traffic
 * passes (windows grow, multi-megabyte streams), a data frame longer than its receive window
 * ends the connection at its header, before any of its body is buffered.
 */
import { yamux } from '@chainsafe/libp2p-yamux';
import type { MultiaddrConnection, Stream, StreamMuxer } from '@libp2p/interface';
import { multiaddrConnectionPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { guardedYamux, INITIAL_STREAM_WINDOW, type MuxerLimits } from './yamux-guard.ts';

/** A Yamux frame header (spec: version, type, flags, stream id, length; big-endian). */
function yamuxHeader(type: number, flags: number, streamId: number, length: number): Uint8Array {
  const h = new Uint8Array(12);
  const v = new DataView(h.buffer);
  v.setUint8(0, 0);
  v.setUint8(1, type);
  v.setUint16(2, flags);
  v.setUint32(4, streamId);
  v.setUint32(8, length);
  return h;
}
const DATA = 0;
const SYN = 1;

function pair(limits: MuxerLimits = {}, guarded = true) {
  const refused: string[] = [];
  const make = guarded ? guardedYamux({ ...limits, onRefused: (r) => refused.push(r) }, { enableKeepAlive: false }) : yamux({ enableKeepAlive: false });
  const [clientConn, serverConn] = multiaddrConnectionPair();
  const client = make().createStreamMuxer(clientConn);
  const server = make().createStreamMuxer(serverConn);
  const inbound: Stream[] = [];
  server.addEventListener('stream', (evt: CustomEvent<Stream>) => inbound.push(evt.detail));
  return { client, server, clientConn, serverConn, refused, inbound };
}

/** Resolves when `conn` closes or aborts; listen before the attack (the close may come at once). */
const closed = (conn: MultiaddrConnection): Promise<void> =>
  conn.status !== 'open' ? Promise.resolve() : new Promise((resolve) => conn.addEventListener('close', () => resolve(), { once: true }));

/** Reads everything a stream receives until the remote closes its end. */
function drain(stream: Stream): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    stream.addEventListener('message', (evt) => (n += evt.data.byteLength));
    stream.addEventListener('remoteCloseWrite', () => resolve(n));
    stream.addEventListener('close', (evt) => (evt.error ? reject(evt.error) : resolve(n)));
  });
}

async function firstInbound(p: { inbound: Stream[]; server: StreamMuxer }): Promise<Stream> {
  if (p.inbound.length) return p.inbound[0];
  return new Promise((resolve) => p.server.addEventListener('stream', (evt) => resolve(evt.detail), { once: true }));
}

describe('guardedYamux', () => {
  it('passes an honest 8 MiB stream (frames up to the grown window) and keeps the connection', async () => {
    const p = pair();
    const out = await p.client.createStream();
    const total = 8 * 1024 * 1024;
    const sending = (async () => {
      for (let sent = 0; sent < total; sent += 1 << 20) if (!out.send(new Uint8Array(1 << 20))) await out.onDrain();
      await out.close();
    })();
    expect(await drain(await firstInbound(p))).toBe(total);
    await sending;
    expect(p.refused).toEqual([]);
    expect(p.serverConn.status).toBe('open');
  });

  const attacks: [string, (p: ReturnType<typeof pair>) => Promise<void>][] = [
    ['a new stream whose first frame declares 500 MiB', async (p) => void p.clientConn.send(yamuxHeader(DATA, SYN, 1, 500 * 1024 * 1024))],
    ['a new stream whose first frame declares 4 GiB - 1', async (p) => void p.clientConn.send(yamuxHeader(DATA, SYN, 1, 2 ** 32 - 1))],
    ['a new stream one byte over the initial window', async (p) => void p.clientConn.send(yamuxHeader(DATA, SYN, 1, INITIAL_STREAM_WINDOW + 1))],
    [
      'an open stream, then a frame longer than its window',
      async (p) => {
        const out = await p.client.createStream();
        out.send(Uint8Array.of(1));
        await firstInbound(p);
        p.clientConn.send(yamuxHeader(DATA, 0, 1, 300 * 1024));
      },
    ],
    ['a frame for an unknown stream over the largest window', async (p) => void p.clientConn.send(yamuxHeader(DATA, 0, 7, 64 * 1024 * 1024))],
  ];
  for (const [label, attack] of attacks) {
    it(`closes the connection at the header: ${label}`, async () => {
      const p = pair();
      const done = closed(p.serverConn);
      await attack(p);
      // a little of the body: the guard must not wait for the rest
      p.clientConn.send(new Uint8Array(1024));
      await done;
      expect(p.refused).toEqual(['frame_too_large']);
      expect(p.server.status).toBe('closed');
      expect((p.server as unknown as { decoder: { buffer: { byteLength: number } } }).decoder.buffer.byteLength).toBeLessThan(2048);
    }, 10_000);
  }

  it('unguarded Yamux 8.0.1 waits for the whole 500 MiB frame (the fault the guard exists for)', async () => {
    const p = pair({}, false);
    p.clientConn.send(yamuxHeader(DATA, SYN, 1, 500 * 1024 * 1024));
    p.clientConn.send(new Uint8Array(64 * 1024));
    await new Promise((resolve) => setImmediate(resolve));
    expect(p.serverConn.status).toBe('open');
    expect((p.server as unknown as { decoder: { buffer: { byteLength: number } } }).decoder.buffer.byteLength).toBe(12 + 64 * 1024);
  });

  it('counts inbound streams Yamux resets past maxInboundStreams', async () => {
    const p = pair({ maxInboundStreams: 2 });
    for (let i = 0; i < 4; i++) (await p.client.createStream()).send(Uint8Array.of(i));
    await new Promise<void>((resolve) => {
      const check = (): void => (p.refused.length >= 2 ? resolve() : void setImmediate(check));
      check();
    });
    expect(p.refused).toEqual(['too_many_streams', 'too_many_streams']);
    expect(p.inbound).toHaveLength(2);
  });

  it('refuses a window below the spec initial window', () => {
    expect(() => guardedYamux({ maxStreamWindowSize: 1024 })).toThrow(RangeError);
  });
});
