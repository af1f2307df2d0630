import { streamPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
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
