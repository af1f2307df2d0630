/**
 * The floors of the browser benchmark, in a dedicated worker like the light client's
 * (bench/floor-server.ts prepares and serves the bytes):
 *
 * - `transport`: every answer of a whole sync, prepared in the server's memory, requested
 *   `concurrency` at a time over one libp2p connection (WebSockets + Noise + Yamux, the client's
 *   own stack, src/client/transport.ts) and discarded: what moving the sync's bytes into this
 *   worker costs, with nothing built on the server and nothing done here.
 * - `hashing`: SHA-256 (the client's implementation, src/core/sha256.ts) over every message a
 *   sync hashes, fetched in chunks; only the hashing is timed (the next chunk downloads meanwhile).
 */
/// <reference lib="webworker" />
import { multiaddr } from '@multiformats/multiaddr';
import { sha256 } from '../../src/core/sha256.ts';
import { createBrowserNode } from '../../src/client/transport.ts';
import { request } from '../../src/protocol/stream.ts';

export interface FloorRequest {
  kind: 'transport' | 'hashing';
  addr: string;
  concurrency: number;
}

export interface FloorResult {
  ms: number;
  bytes: number;
  items: number;
}

declare const self: DedicatedWorkerGlobalScope;

const ANSWER_PROTOCOL = '/proofsync-bench/1/answer';
const MESSAGES_PROTOCOL = '/proofsync-bench/1/messages';

const index = (i: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, i);
  return b;
};

self.onmessage = async (m: MessageEvent<FloorRequest>) => {
  const { kind, addr, concurrency } = m.data;
  try {
    const node = await createBrowserNode({ allowInsecureLoopback: true, transports: ['websockets'] });
    const ma = multiaddr(addr);
    await node.dial(ma);
    const ask = (protocol: string, i: number) => request(node, ma, protocol, index(i), { maxResponseBytes: 4 << 20, timeoutMs: 120_000 });
    let result: FloorResult;
    if (kind === 'transport') {
      await ask(ANSWER_PROTOCOL, 0xffffffff); // the connection and protocol warmed up, as the client's first heads call does
      let next = 0;
      let bytes = 0;
      let items = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (;;) {
            const answer = await ask(ANSWER_PROTOCOL, next++);
            if (answer.length === 0) return;
            bytes += answer.length;
            items++;
          }
        }),
      );
      result = { ms: performance.now() - started, bytes, items };
    } else {
      let ms = 0;
      let bytes = 0;
      let items = 0;
      let fetching = ask(MESSAGES_PROTOCOL, 0);
      for (let c = 1; ; c++) {
        const chunk = await fetching;
        if (chunk.length === 0) break;
        fetching = ask(MESSAGES_PROTOCOL, c);
        const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const t = performance.now();
        for (let o = 0; o < chunk.length; ) {
          const len = dv.getUint32(o);
          sha256(chunk.subarray(o + 4, o + 4 + len));
          o += 4 + len;
          bytes += len;
          items++;
        }
        ms += performance.now() - t;
      }
      result = { ms, bytes, items };
    }
    await node.stop();
    self.postMessage(result);
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
};
