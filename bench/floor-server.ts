/**
 * The floors of the browser benchmark (browser.bench.ts), prepared in this process's memory
 * before anything is timed, then served over the same kind of connection the light client uses
 * (WebSockets + Noise + Yamux, the node's own host stack, src/node/host.ts):
 *
 * - `/proofsync-bench/1/answer`: the range-proof answers of a whole sync at one root, exactly as
 *   the full node encoded them on the wire (fetched from it once at start: a 64-part partition
 *   of the key space by the top 6 bits of the first key byte, 2,048 key-values and 2,093,056
 *   bytes per answer, each part resumed after its last key, the plan the client follows).
 *   Request: u32be index; answer: that answer's bytes, empty past the last.
 * - `/proofsync-bench/1/messages`: the messages a sync hashes (each value of 32 bytes or more,
 *   each trie node's pre-image; the messages of `npm run bench -- core`), rebuilt from the
 *   answers' key-values, with the rebuilt root checked against the node's. Request: u32be chunk
 *   index; answer: (u32be length, message)* of about 1 MiB, empty past the last.
 *
 * `node floor-server.ts <hostDir> <nodeWsAddr> <rootHex>`: prints "ready <peerId>" once
 * listening (the process helper's protocol, src/node/testing/process.ts) and stops when its
 * stdin closes.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { buildRoot, itemsFromKeyValues } from '../src/core/builder.ts';
import { equalBytes, fromHex, toHex } from '../src/core/bytes.ts';
import { nodePreimage } from '../src/core/hash.ts';
import type { KeyValue } from '../src/core/types.ts';
import { createHost } from '../src/node/host.ts';
import { loadOrCreateIdentity } from '../src/node/identity.ts';
import { decodeRangeProofResponse, DEFAULT_DECODE_LIMITS, encodeRangeProofRequest } from '../src/protocol/codec.ts';
import { RANGE_PROTOCOL } from '../src/protocol/ids.ts';
import { PeerLimits } from '../src/protocol/peer-limits.ts';
import { handle, request } from '../src/protocol/stream.ts';
import { runUntilStdinEnds } from './lib.ts';

export const ANSWER_PROTOCOL = '/proofsync-bench/1/answer';
export const MESSAGES_PROTOCOL = '/proofsync-bench/1/messages';
const PARTS = 64;
const KEY_LIMIT = 2048;
const BYTES_LIMIT = 2_093_056;
const CHUNK_BYTES = 1 << 20;

const u32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);

const [hostDir, nodeAddr, rootHex] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  if (!hostDir || !nodeAddr || !rootHex) {
    process.stderr.write('usage: floor-server.ts <hostDir> <nodeWsAddr> <rootHex>\n');
    process.exit(2);
  }
  const root = fromHex(rootHex);
  const host = await createHost({ dataDir: hostDir, privateKey: await loadOrCreateIdentity(hostDir), listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
  const node = multiaddr(nodeAddr);

  // 1. The answers, part by part (4 parts at a time: the client's concurrency).
  const answers: Uint8Array[][] = Array.from({ length: PARTS }, () => []);
  const kvs: KeyValue[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let part = next++; part < PARTS; part = next++) {
        let start: Uint8Array | undefined = part === 0 ? undefined : Uint8Array.of(part << 2);
        const end = part === PARTS - 1 ? undefined : Uint8Array.of(((part + 1) << 2) - 1, ...new Uint8Array(32).fill(0xff));
        for (;;) {
          const bytes = await request(host.libp2p, node, RANGE_PROTOCOL, encodeRangeProofRequest({ rootHash: root, startKey: start, endKey: end, keyLimit: KEY_LIMIT, bytesLimit: BYTES_LIMIT }), {
            maxResponseBytes: DEFAULT_DECODE_LIMITS.maxBytes,
            timeoutMs: 120_000,
          });
          const res = decodeRangeProofResponse(bytes);
          if (res.type === 'error') throw new Error(`the node answered ${res.name}: ${res.message}`);
          answers[part].push(bytes);
          const got = res.proof.keyValues;
          for (const kv of got) kvs.push(kv);
          // a full answer may be truncated: the part goes on after its last key
          if (got.length < KEY_LIMIT && bytes.length < BYTES_LIMIT / 2) break;
          if (got.length === 0) break;
          const last = got[got.length - 1].key;
          start = Uint8Array.of(...last, 0);
        }
      }
    }),
  );
  const flat = answers.flat();
  const answerBytes = flat.reduce((s, a) => s + a.length, 0);

  // 2. The messages the sync hashes, from the same key-values; the root proves they are all.
  const chunks: Uint8Array[] = [];
  let chunk = new Uint8Array(CHUNK_BYTES + 4096);
  let at = 0;
  let messages = 0;
  let messageBytes = 0;
  const push = (m: Uint8Array): void => {
    if (at + 4 + m.length > CHUNK_BYTES && at > 0) {
      chunks.push(chunk.subarray(0, at));
      chunk = new Uint8Array(Math.max(CHUNK_BYTES, m.length) + 4096);
      at = 0;
    }
    new DataView(chunk.buffer).setUint32(at, m.length);
    chunk.set(m, at + 4);
    at += 4 + m.length;
    messages++;
    messageBytes += m.length;
  };
  const built = buildRoot(itemsFromKeyValues(kvs), (n) => {
    if (n.value && n.value.length >= 32) push(n.value);
    push(nodePreimage(n.path, n.digest, n.children.map((c) => c?.id)));
  });
  if (at > 0) chunks.push(chunk.subarray(0, at));
  if (!equalBytes(built, root)) throw new Error(`rebuilt root ${toHex(built)} differs from ${rootHex} (${kvs.length} key-values)`);

  const serve = (list: Uint8Array[]) => async (req: Uint8Array) => (req.length === 4 ? (list[u32(req)] ?? new Uint8Array(0)) : new Uint8Array(0));
  const options = { limits: new PeerLimits({ maxConcurrent: 64 }), maxRequestBytes: 64, timeoutMs: 120_000, maxInboundStreams: 64, encodeError: () => new Uint8Array(0) };
  await handle(host.libp2p, ANSWER_PROTOCOL, serve(flat), options);
  await handle(host.libp2p, MESSAGES_PROTOCOL, serve(chunks), options);

  runUntilStdinEnds(() => host.stop());
  process.stdout.write(`floor: ${flat.length} answers, ${answerBytes} bytes, ${kvs.length} key-values; ${messages} messages, ${messageBytes} bytes, ${chunks.length} chunks\n`);
  process.stdout.write(`ready ${host.peerId.toString()}\n`);
}
