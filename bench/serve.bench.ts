/**
 * The serving path in one process, without the transport: reading 2,048 key-values from
 * LevelDB (through `iterate`, as a scan does, and through `readRange`, as a proof does),
 * building a range proof, and building + encoding it; wall time and this process's CPU time
 * (all threads: LevelDB reads run on libuv's pool) per operation. Also how many store reads
 * one proof makes.
 *
 * Uses the generated store of the node suite (tmpdir/proofsync-bench-node-N, BENCH_KEYS,
 * default 1,000,000; generated through a node process when absent). BENCH_ROUNDS overrides
 * the rounds per figure (default 100).
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRange } from '../src/core/store.ts';
import { encodeRangeProofResponse } from '../src/protocol/codec.ts';
import { MAX_BYTE_LIMIT, serveRangeProof } from '../src/protocol/serve.ts';
import { SeededRandom } from '../src/node/generate.ts';
import { openNodeStore } from '../src/node/node-store.ts';
import { FULL_NODE_SCRIPT, startNodeProcess } from '../src/node/testing/process.ts';
import { type Figure, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100);
const KEY_LIMIT = 2048;
const dir = join(tmpdir(), `proofsync-bench-node-${N}`);

if (!existsSync(join(dir, 'db'))) {
  console.log(`generating ${N} keys in ${dir} ...`);
  const node = await startNodeProcess({ script: FULL_NODE_SCRIPT, dataDir: dir, args: ['--generate', String(N), '--no-http'], readyTimeoutMs: 600_000 });
  await node.stop({ keepDataDir: true });
}

const figures: Figure[] = [];
const rnd = new SeededRandom(7);
const store = await openNodeStore(join(dir, 'db'));
try {
  const root = store.db.root;
  const VALUE = 0x76; // value records: 'v' ++ key (core/node-record.ts)
  const measure = async (name: string, op: (startKey: Uint8Array) => Promise<unknown>): Promise<void> => {
    for (let i = 0; i < 5; i++) await op(rnd.bytes(32));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < ROUNDS; i++) await op(rnd.bytes(32));
    const wall = (performance.now() - t0) / ROUNDS;
    const c = process.cpuUsage(cpu0);
    figures.push({ name: `${name}, wall`, value: wall, unit: 'ms', goal: null });
    figures.push({ name: `${name}, CPU (all threads)`, value: (c.user + c.system) / 1000 / ROUNDS, unit: 'ms', goal: null });
  };
  await measure(`LevelDB read of ${KEY_LIMIT} key-values through iterate`, async (s) => {
    let n = 0;
    for await (const _ of store.state.iterate({ gte: Uint8Array.of(VALUE, ...s), lt: Uint8Array.of(VALUE + 1), limit: KEY_LIMIT })) n++;
    return n;
  });
  await measure(`LevelDB read of ${KEY_LIMIT} key-values through readRange`, (s) =>
    readRange(store.state, { gte: Uint8Array.of(VALUE, ...s), lt: Uint8Array.of(VALUE + 1), limit: KEY_LIMIT }),
  );
  const request = (startKey: Uint8Array) => ({ rootHash: root, startKey, endKey: undefined, keyLimit: KEY_LIMIT, bytesLimit: MAX_BYTE_LIMIT });
  await measure(`build a range proof of ${KEY_LIMIT} key-values`, (s) => serveRangeProof(store.db, request(s)));
  await measure(`build + encode a range proof of ${KEY_LIMIT} key-values`, async (s) =>
    encodeRangeProofResponse({ type: 'rangeProof', proof: await serveRangeProof(store.db, request(s)) }),
  );

  // store calls per proof: point reads (trie nodes on the two proof paths) and range reads
  const level = store.level as unknown as { getMany(k: Uint8Array[]): Promise<unknown>; range(o: unknown): Promise<unknown> };
  const getMany = level.getMany.bind(level);
  const range = level.range.bind(level);
  let points = 0;
  let ranges = 0;
  level.getMany = (k) => ((points += k.length), getMany(k));
  level.range = (o) => (ranges++, range(o));
  for (let i = 0; i < ROUNDS; i++) await serveRangeProof(store.db, request(rnd.bytes(32)));
  level.getMany = getMany;
  level.range = range;
  figures.push({ name: 'store point reads per range proof', value: points / ROUNDS, unit: 'reads', goal: null });
  figures.push({ name: 'store range reads per range proof', value: ranges / ROUNDS, unit: 'reads', goal: null });
} finally {
  await store.close();
}
writeResults('serve', figures);
