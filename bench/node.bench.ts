/**
 * Full-node figures: with 1,000,000 generated keys, range proofs of 2,048 key-values
 * served per second to 1, 4 and 16 concurrent clients over WebSockets on loopback (the node is
 * a child process; the clients share this process), and MB/s; serving a proof against reading
 * the same key-values straight from LevelDB, side by side in one process (goal ≤ 3×); commit
 * throughput in batches of 1,000 puts, signing and logging included.
 *
 * The generated store is kept in the temp dir between runs (BENCH_FRESH=1 rebuilds it): a
 * bulk load of a million keys takes most of a minute. BENCH_KEYS, BENCH_SECONDS override.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRangeProofResponse, encodeRangeProofRequest, encodeRangeProofResponse } from '../src/protocol/codec.ts';
import { fetchHeads } from '../src/protocol/client.ts';
import { RANGE_PROTOCOL } from '../src/protocol/ids.ts';
import { MAX_BYTE_LIMIT, serveRangeProof } from '../src/protocol/serve.ts';
import { request } from '../src/protocol/stream.ts';
import { SeededRandom } from '../src/node/generate.ts';
import { createClientNode, type ClientNode } from '../src/node/host.ts';
import { loadOrCreateIdentity } from '../src/node/identity.ts';
import { openNodeStore } from '../src/node/node-store.ts';
import { OperationLog } from '../src/node/operation-log.ts';
import { FULL_NODE_SCRIPT, startNodeProcess } from '../src/node/testing/process.ts';
import { DatabaseWriter } from '../src/node/writer.ts';
import { type Figure, now, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const KEY_LIMIT = 2048;
const dir = join(tmpdir(), `proofsync-bench-node-${N}`);
if (process.env.BENCH_FRESH) await rm(dir, { recursive: true, force: true });
const figures: Figure[] = [];
const rnd = new SeededRandom(99);

// ---------------------------------------------------------------------------------------------
// 1. Serving over WebSockets to 1, 4 and 16 clients.

const fresh = !existsSync(join(dir, 'db'));
let t = now();
console.log(fresh ? `generating ${N} keys in ${dir} ...` : `reusing ${dir}`);
const node = await startNodeProcess({
  script: FULL_NODE_SCRIPT,
  dataDir: dir,
  args: [
    '--generate', String(N),
    '--no-http',
    '--listen', '/ip4/127.0.0.1/tcp/0/ws',
    '--peer-streams', '64',
    '--peer-rate', '1000000:1000000',
  ],
  readyTimeoutMs: 600_000,
});
if (fresh) figures.push({ name: `generate and bulk-load ${N} keys (node start)`, value: (now() - t) / 1000, unit: 's', goal: null });
const ws = multiaddr(node.file.ws!);
const clients: ClientNode[] = [];
try {
  for (let i = 0; i < 16; i++) clients.push(await createClientNode());
  const root = (await fetchHeads(clients[0], ws)).stateRoot;
  const proofOnce = async (c: ClientNode): Promise<{ bytes: number; kvs: number }> => {
    const req = encodeRangeProofRequest({ rootHash: root, startKey: rnd.bytes(32), endKey: undefined, keyLimit: KEY_LIMIT, bytesLimit: MAX_BYTE_LIMIT });
    const res = await request(c, ws, RANGE_PROTOCOL, req, { maxResponseBytes: 2 << 20, timeoutMs: 60_000 });
    const decoded = decodeRangeProofResponse(res);
    if (decoded.type !== 'rangeProof') throw new Error(`${decoded.name}: ${decoded.message}`);
    return { bytes: res.length, kvs: decoded.proof.keyValues.length };
  };
  for (const c of clients) await proofOnce(c); // connect and warm up
  let singleLatencyMs = 0;
  for (const concurrency of [1, 4, 16]) {
    let proofs = 0;
    let bytes = 0;
    let kvs = 0;
    const start = now();
    const end = start + SECONDS * 1000;
    await Promise.all(
      clients.slice(0, concurrency).map(async (c) => {
        while (now() < end) {
          const r = await proofOnce(c);
          proofs++;
          bytes += r.bytes;
          kvs += r.kvs;
        }
      }),
    );
    const s = (now() - start) / 1000;
    if (concurrency === 1) singleLatencyMs = (s * 1000) / proofs;
    figures.push({ name: `range proofs (${KEY_LIMIT} kvs) over WebSockets, ${concurrency} client(s)`, value: proofs / s, unit: 'proofs/s', goal: null });
    figures.push({ name: `range proof bytes over WebSockets, ${concurrency} client(s)`, value: bytes / s / 1e6, unit: 'MB/s', goal: null });
    if (kvs / proofs < KEY_LIMIT * 0.99) console.warn(`average ${kvs / proofs} key-values per proof`);
  }
  figures.push({ name: 'range proof round trip over WebSockets, 1 client', value: singleLatencyMs, unit: 'ms', goal: null });
} finally {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await node.stop({ keepDataDir: true });
}

// ---------------------------------------------------------------------------------------------
// 2. Serving a proof vs reading the same key-values from LevelDB, side by side.

const store = await openNodeStore(join(dir, 'db'));
try {
  const root = store.db.root;
  const ROUNDS = 60;
  let readMs = 0;
  let serveMs = 0;
  let read = 0;
  for (let i = 0; i < ROUNDS + 3; i++) {
    const startKey = rnd.bytes(32);
    // the trie's value records: 'v' ++ key (core/node-record.ts), exactly the key-values a proof carries
    const vStart = Uint8Array.of(0x76, ...startKey);
    let t0 = now();
    let n = 0;
    for await (const [, v] of store.state.iterate({ gte: vStart, lt: Uint8Array.of(0x77), limit: KEY_LIMIT })) n += v.length > 0 ? 1 : 0;
    const r = now() - t0;
    t0 = now();
    const proof = await serveRangeProof(store.db, { rootHash: root, startKey, endKey: undefined, keyLimit: KEY_LIMIT, bytesLimit: MAX_BYTE_LIMIT });
    encodeRangeProofResponse({ type: 'rangeProof', proof });
    const s = now() - t0;
    if (i < 3) continue; // warm-up
    readMs += r;
    serveMs += s;
    read += n;
  }
  figures.push({ name: `LevelDB read of ${KEY_LIMIT} key-values`, value: readMs / ROUNDS, unit: 'ms', goal: null });
  figures.push({ name: `serve a range proof of ${KEY_LIMIT} key-values (build + encode)`, value: serveMs / ROUNDS, unit: 'ms', goal: null });
  figures.push({ name: 'serving a proof / reading the same key-values', value: serveMs / readMs, unit: 'ratio', goal: '<= 3' });
  if (read / ROUNDS < KEY_LIMIT * 0.99) console.warn(`read ${read / ROUNDS} key-values per round`);

  // -------------------------------------------------------------------------------------------
  // 3. Commit throughput: batches of 1,000 puts, signed, logged and announced.
  const key = await loadOrCreateIdentity(dir);
  const log = await OperationLog.open(store.log, store.deltas);
  const writer = await DatabaseWriter.open({ store, log, secretKey: key.raw.subarray(0, 32), publicKey: key.publicKey.raw, db: await dbName() });
  const BATCHES = 20;
  const batches = Array.from({ length: BATCHES + 2 }, () => Array.from({ length: 1000 }, () => ({ key: rnd.bytes(32), value: rnd.bytes(64) })));
  await writer.commit(batches[0]);
  await writer.commit(batches[1]);
  t = now();
  for (let i = 2; i < batches.length; i++) await writer.commit(batches[i]);
  const commitS = (now() - t) / 1000;
  figures.push({ name: 'commits of 1,000 puts (sign + log + announce)', value: BATCHES / commitS, unit: 'batches/s', goal: null });
  figures.push({ name: 'committed puts', value: (BATCHES * 1000) / commitS, unit: 'puts/s', goal: null });
} finally {
  await store.close();
}

async function dbName(): Promise<string> {
  const stored = await store.writer.get(new TextEncoder().encode('db'));
  if (!stored) throw new Error('the bench store has no database name');
  return new TextDecoder().decode(stored);
}

writeResults('node', figures);
