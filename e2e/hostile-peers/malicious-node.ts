/**
 * A malicious full node for the hostile-peer tests and benchmark: a real js-libp2p node (the
 * project's host: WebSockets on loopback, Noise, Yamux, gossipsub) that speaks the
 * `/proofsync/1/*` protocols by forwarding every request to an honest node and relaying its
 * answer byte for byte, except for ONE behaviour on range and change proofs, chosen on the
 * command line:
 *
 * - `silent`: never answers (or, with `--delay-ms`, answers honestly after that long);
 * - `endless`: a length prefix at the client's limit, the honest answer, then 0xff bytes for as
 *   long as the client reads;
 * - `huge-prefix`: a length prefix of 2^31, then silence;
 * - `many-nodes`: a proof of 100,000 (empty) nodes, small enough to pass the frame limit;
 * - `oversized`: a 50 MiB answer (prefix, then the honest answer padded, streamed);
 * - `wrong-type`: a protobuf whose first field has the wrong wire type, alternating with one
 *   whose field number is 0.
 *
 * Heads, deltas and log batches are relayed honestly, and the node subscribes to the database's
 * gossip topic (relaying the writer's signed announcements and deltas), so a client treats it as
 * a candidate peer like any other.
 *
 * Usage: `node malicious-node.ts <dataDir> <honest ws multiaddr> <db> <behaviour> [--delay-ms N]`.
 * Prints "ready <peerId>" once serving, writes `<dataDir>/addresses.json`, prints one
 * "hostile <protocol>" line per hostile answer started, and stops when its stdin closes.
 */
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { DEFAULT_DECODE_LIMITS } from '../../src/protocol/codec.ts';
import { CHANGE_PROTOCOL, databaseTopic, PROTOCOLS, RANGE_PROTOCOL } from '../../src/protocol/ids.ts';
import { encodeVarint, readFrame, request } from '../../src/protocol/stream.ts';
import { createHost, writeAddressesFile } from '../../src/node/host.ts';
import { loadOrCreateIdentity } from '../../src/node/identity.ts';
import { BEHAVIOURS, type Behaviour } from './behaviours.ts';


const [dataDir, honestAddr, db, behaviour, ...rest] = process.argv.slice(2);
if (!dataDir || !honestAddr || !db || !(BEHAVIOURS as readonly string[]).includes(behaviour)) {
  process.stderr.write(`usage: malicious-node.ts <dataDir> <honest ws multiaddr> <db> <${BEHAVIOURS.join('|')}> [--delay-ms N]\n`);
  process.exit(2);
}
const delayArg = rest.indexOf('--delay-ms');
const delayMs = delayArg >= 0 ? Number(rest[delayArg + 1]) : undefined;

const honest = multiaddr(honestAddr);
const host = await createHost({
  dataDir,
  privateKey: await loadOrCreateIdentity(dataDir),
  listen: ['/ip4/127.0.0.1/tcp/0/ws'],
  connectionManager: { inboundConnectionThreshold: 100 },
});
const libp2p = host.libp2p;

/** The honest node's answer to `body` on `protocol`, as its frame body (an error envelope included). */
const relay = (protocol: string, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array> =>
  request(libp2p, honest, protocol, body, { maxResponseBytes: 64 << 20, timeoutMs: 60_000, signal });

/** Sends `bytes`, waiting while the transport asks to drain; false once the stream is gone. */
async function send(stream: Stream, bytes: Uint8Array): Promise<boolean> {
  if (stream.status !== 'open' || stream.writeStatus !== 'writable') return false;
  try {
    if (!stream.send(bytes)) await stream.onDrain();
    // a macrotask turn: a writer looping on microtasks alone would starve this node's I/O
    await new Promise((resolve) => setImmediate(resolve));
    return true;
  } catch {
    return false;
  }
}

/** `body` with its length prefix. */
function frame(body: Uint8Array): Uint8Array {
  const len = encodeVarint(body.length);
  const out = new Uint8Array(len.length + body.length);
  out.set(len);
  out.set(body, len.length);
  return out;
}

/** Resolves when the stream closes (the client gave up, or cancelled the request). */
const closed = (stream: Stream): Promise<void> =>
  stream.status !== 'open' ? Promise.resolve() : new Promise((resolve) => stream.addEventListener('close', () => resolve(), { once: true }));

/** Writes `total` bytes of 0xff after what was sent, in 64 KiB chunks, while the client reads. */
async function pad(stream: Stream, total: number): Promise<void> {
  const chunk = new Uint8Array(64 << 10).fill(0xff);
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!(await send(stream, chunk.subarray(0, Math.min(chunk.length, total - sent))))) return;
  }
}

/** A range or change proof answer with `n` empty proof nodes in its start proof (4 bytes each). */
function manyNodes(n: number): Uint8Array {
  const node = Uint8Array.of(0x0a, 0x02, 0x0a, 0x00); // start_proof: ProofNode { key: Key {} }
  const proof = new Uint8Array(node.length * n);
  for (let i = 0; i < n; i++) proof.set(node, i * node.length);
  const len = encodeVarint(proof.length);
  const out = new Uint8Array(1 + len.length + proof.length);
  out[0] = 0x0a; // field 1 (range_proof / change_proof), length-delimited
  out.set(len, 1);
  out.set(proof, 1 + len.length);
  return out;
}

let wrongTypeTurn = 0;
let hostile = 0;

async function misbehave(protocol: string, stream: Stream, answer: () => Promise<Uint8Array>): Promise<void> {
  process.stdout.write(`hostile ${protocol} ${++hostile}\n`);
  switch (behaviour as Behaviour) {
    case 'silent': {
      if (delayMs === undefined) return closed(stream);
      const body = await answer();
      await Promise.race([new Promise((resolve) => setTimeout(resolve, delayMs)), closed(stream)]);
      if (await send(stream, frame(body))) await stream.close().catch(() => {});
      return;
    }
    case 'endless': {
      const body = await answer();
      // a prefix the client accepts, a valid start, then bytes for as long as it reads: the
      // client's whole limit at once (as fast as the transport goes), then 64 KiB at a time
      const limit = DEFAULT_DECODE_LIMITS.maxBytes;
      const first = new Uint8Array(limit).fill(0xff);
      first.set(body.subarray(0, limit));
      if (!(await send(stream, encodeVarint(limit))) || !(await send(stream, first))) return;
      for (;;) if (!(await send(stream, new Uint8Array(64 << 10).fill(0xff)))) return;
    }
    case 'huge-prefix':
      await send(stream, encodeVarint(2 ** 31));
      return closed(stream);
    case 'many-nodes': {
      const body = manyNodes(100_000);
      if (await send(stream, frame(body))) await stream.close().catch(() => {});
      return;
    }
    case 'oversized': {
      const total = 50 << 20;
      const body = await answer();
      if (!(await send(stream, encodeVarint(total))) || !(await send(stream, body))) return;
      await pad(stream, total - body.length);
      await stream.close().catch(() => {});
      return;
    }
    case 'wrong-type': {
      // field 1 as a fixed32 (InvalidWireType), or a field number 0 (InvalidFieldNumber)
      const body = wrongTypeTurn++ % 2 === 0 ? Uint8Array.of(0x0d, 1, 2, 3, 4) : Uint8Array.of(0x00, 0x01);
      if (await send(stream, frame(body))) await stream.close().catch(() => {});
      return;
    }
  }
}

for (const protocol of PROTOCOLS) {
  await libp2p.handle(
    protocol,
    (stream) => {
      void (async () => {
        const life = new AbortController();
        stream.addEventListener('close', () => life.abort(), { once: true });
        try {
          const body = await readFrame(stream, { maxBytes: 1 << 20, signal: AbortSignal.any([life.signal, AbortSignal.timeout(60_000)]) });
          const answer = () => relay(protocol, body, life.signal);
          if (protocol === RANGE_PROTOCOL || protocol === CHANGE_PROTOCOL) {
            await misbehave(protocol, stream, answer);
          } else {
            const res = await answer();
            if (await send(stream, frame(res))) await stream.close().catch(() => {});
          }
        } catch (err) {
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        }
      })();
    },
    { maxInboundStreams: 256 },
  );
}

// gossip: the writer's announcements and deltas reach this node's subscribers through it
await libp2p.dial(honest);
libp2p.services.pubsub.subscribe(databaseTopic(db));
await writeAddressesFile(dataDir, { ...host.file, db });

const stop = async (): Promise<void> => {
  await host.stop().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.on('error', () => void stop());
process.stdin.resume();
process.stdout.write(`ready ${host.peerId.toString()}\n`);
