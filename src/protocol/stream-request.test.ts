import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { multiaddrConnectionPair, streamPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../core/errors.ts';
import { encodeVarint, readFrame, request, type Dialer } from './stream.ts';

/** A dialer whose every dial returns `client`, the other end of which a test plays the server on. */
const dialerOf = (client: unknown): Dialer => ({ dialProtocol: async () => client }) as unknown as Dialer;
const frame = (body: Uint8Array): Uint8Array => new Uint8Array([...encodeVarint(body.length), ...body]);
const settled = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('request: one frame is the whole answer', () => {
  it('an honest server (frame, then close) leaves the stream to close normally', async () => {
    const [client, server] = await streamPair();
    void (async () => {
      await readFrame(server, { maxBytes: 100 });
      server.send(frame(Uint8Array.of(1, 2, 3)));
      await server.close();
    })();
    expect(await request(dialerOf(client), [], '/p', Uint8Array.of(9), { maxResponseBytes: 100 })).toEqual(Uint8Array.of(1, 2, 3));
    await settled();
    expect(client.status).not.toBe('aborted');
    expect(server.status).not.toBe('reset');
  });

  it('a server that keeps sending after the frame is cut off at its next bytes, not read on', async () => {
    const [client, server] = await streamPair();
    let sent = 0;
    const flood = (async () => {
      await readFrame(server, { maxBytes: 100 });
      server.send(frame(Uint8Array.of(1, 2, 3)));
      // then junk, for as long as the stream lets it
      for (let i = 0; i < 1000 && server.status === 'open'; i++) {
        try {
          if (!server.send(new Uint8Array(16 << 10).fill(0xff))) await server.onDrain();
        } catch {
          break;
        }
        sent++;
        await settled();
      }
    })();
    expect(await request(dialerOf(client), [], '/p', Uint8Array.of(9), { maxResponseBytes: 100 })).toEqual(Uint8Array.of(1, 2, 3));
    await flood;
    expect(client.status).toBe('aborted');
    // the flood stopped after a chunk or two: nothing of it was buffered beyond the stream's window
    expect(sent).toBeLessThan(10);
    expect(client.readBufferLength).toBe(0);
  });
});

/**
 * A connection that ends under requests in flight: libp2p's muxer then closes every stream on it
 * without an error (`onTransportClosed`), whether the socket closed cleanly or one end aborted
 * the connection (its ping monitor does, after a ping unanswered for 5 s). Measured before the
 * distinction below: every request in flight ended at once with `TruncatedInput: stream ended
 * before a frame`, an invalid answer that counts against the server (a strike, a ban at three).
 */
describe('request: a connection that ends under it is no answer', () => {
  async function inFlight(n: number) {
    const factory = yamux({ enableKeepAlive: false })();
    const [clientConn, serverConn] = multiaddrConnectionPair();
    const client = factory.createStreamMuxer(clientConn);
    const server = factory.createStreamMuxer(serverConn);
    const received: Stream[] = [];
    const allReceived = new Promise<void>((resolve) =>
      server.addEventListener('stream', (evt: CustomEvent<Stream>) => {
        const s = evt.detail;
        void readFrame(s, { maxBytes: 100 }).then(() => {
          received.push(s);
          if (received.length === n) resolve();
        });
      }),
    );
    const dialer = { dialProtocol: () => client.createStream() } as unknown as Dialer;
    const answers = Array.from({ length: n }, () => request(dialer, [], '/p', Uint8Array.of(9), { maxResponseBytes: 100 }).catch((e: unknown) => e as Error));
    await allReceived;
    return { serverConn, received, answers: Promise.all(answers) };
  }

  const cases: [string, (c: Awaited<ReturnType<typeof inFlight>>) => Promise<void> | void][] = [
    ['the server aborts the connection (its ping monitor gave up)', (c) => c.serverConn.abort(new Error('ping timed out'))],
    ['the server closes the socket', (c) => c.serverConn.close()],
  ];
  for (const [label, end] of cases) {
    it(`${label}: StreamReset, not an invalid answer`, async () => {
      const c = await inFlight(3);
      await end(c);
      for (const err of await c.answers) {
        expect(err).toMatchObject({ name: 'StreamReset' });
        // a DecodeError (TruncatedInput) is what the sync counts as an invalid answer (sync/faults.ts)
        expect(err).not.toBeInstanceOf(DecodeError);
      }
    });
  }

  it('a server that closes its end of the stream without a frame still sent a truncated answer', async () => {
    const c = await inFlight(1);
    await c.received[0].close();
    const [err] = await c.answers;
    expect(err).toMatchObject({ name: 'TruncatedInput' });
    expect(err).toBeInstanceOf(DecodeError);
  });
});
