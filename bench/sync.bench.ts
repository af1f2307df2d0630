/**
 * State sync figures: a node with 1,000,000 generated keys (a child process) serves
 * over WebSockets on loopback; this process syncs its state into a LevelDB node store with
 * `syncState` (the replica node's engine, concurrency 8) and reports
 * - full sync time, and its ratio to a raw baseline measured in the same run: the same
 *   key-values streamed without proofs, 2,048 per answer over 8 parallel streams, from a second
 *   process over the same transport, written to the same kind of store (goal ≤ 1.5×);
 * - bytes received / raw key-value bytes (goal ≤ 1.10);
 * - after 1% of the keys change (new values, committed on the writer in batches of 1,000):
 *   catch-up bytes and time as fractions of the full sync (goals ≤ 3% and ≤ 10%).
 *
 * The writer's store is node.bench.ts's cached one (`$TMP/proofsync-bench-node-N`, built on
 * first use). BENCH_KEYS shrinks it; BENCH_WRITER_DIR uses another copy of it (benchmarks run
 * side by side must not open one store twice). Profile with `node --cpu-prof bench/sync.bench.ts`,
 * or set BENCH_PROFILE=dir for a CPU profile of this process during the catch-up alone
 * (dir/sync-catch-up.cpuprofile). BENCH_TRACE=1 prints each catch-up request's send and answer
 * times. BENCH_RAW=0 skips the raw baseline (quicker runs when only the catch-up is studied).
 */
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../src/core/bytes.ts';
import { responseSize, networkStateSource } from '../src/sync/state/network-source.ts';
import { syncState } from '../src/sync/state/driver.ts';
import type { StateSource } from '../src/sync/state/source.ts';
import { SeededRandom } from '../src/node/generate.ts';
import { createClientNode } from '../src/node/host.ts';
import { LevelStore } from '../src/node/level-store.ts';
import { openNodeStore, STATE_PREFIX } from '../src/node/node-store.ts';
import { FULL_NODE_SCRIPT, startNodeProcess } from '../src/node/testing/process.ts';
import { fetchHeads } from '../src/protocol/client.ts';
import { request } from '../src/protocol/stream.ts';
import { type Figure, now, writeResults } from './lib.ts';
import { RAW_PROTOCOL } from './sync-raw-server.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const CONCURRENCY = 8;
const writerDir = process.env.BENCH_WRITER_DIR ?? join(tmpdir(), `proofsync-bench-node-${N}`);
const profileDir = process.env.BENCH_PROFILE;
const trace = process.env.BENCH_TRACE === '1';
const work = await mkdtemp(join(tmpdir(), 'proofsync-bench-sync-'));
const figures: Figure[] = [];
let fullS = 0;
let fullBytes = 0;

let t = now();
console.log(`writer store ${writerDir} (generated on first use)`);
const writer = await startNodeProcess({
  script: FULL_NODE_SCRIPT,
  dataDir: writerDir,
  args: ['--generate', String(N), '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--peer-streams', '64', '--peer-rate', '1000000:1000000', '--history', '300'],
  readyTimeoutMs: 600_000,
});
console.log(`writer ready in ${((now() - t) / 1000).toFixed(1)} s`);
const client = await createClientNode();
const ws = multiaddr(writer.file.ws!);
const writerKey = peerIdFromString(writer.file.peerId).publicKey!.raw;
const replica = await openNodeStore(join(work, 'replica'));
const network = networkStateSource(client, writer.file.peerId, ws, { timeoutMs: 120_000 });
// With BENCH_TRACE: when each request went out and its answer came back (ms since `traceT0`).
let traceT0 = 0;
const traced: { kind: string; sent: number; answered: number; keys: number }[] = [];
const source: StateSource = !trace
  ? network
  : {
      id: network.id,
      async rangeProof(req, o) {
        const sent = now() - traceT0;
        const r = await network.rangeProof(req, o);
        traced.push({ kind: 'range', sent, answered: now() - traceT0, keys: r.type === 'range' ? r.proof.keyValues.length : r.proof.keyChanges.length });
        return r;
      },
      async changeProof(req, o) {
        const sent = now() - traceT0;
        const r = await network.changeProof(req, o);
        traced.push({ kind: r.type, sent, answered: now() - traceT0, keys: r.type === 'range' ? r.proof.keyValues.length : r.proof.keyChanges.length });
        return r;
      },
    };
/** User + system CPU seconds of a process so far (Linux /proc; clock ticks of 10 ms). */
const cpuSeconds = async (pid: number): Promise<number> => {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

try {
  // -------------------------------------------------------------------------------------------
  // 1. Full sync.
  const ann = await fetchHeads(client, ws, { writerPublicKey: writerKey });
  t = now();
  const full = await syncState({ store: replica.state, sources: [source], target: ann.stateRoot, concurrency: CONCURRENCY, sizeOf: responseSize, requestTimeoutMs: 120_000, elideLeaves: false });
  fullS = (now() - t) / 1000;
  fullBytes = full.progress.bytesReceived;
  console.log(`full sync: ${full.progress.keyValuesReceived} key-values, ${fullBytes} bytes, ${full.progress.requests} requests in ${fullS.toFixed(2)} s (root ${toHex(full.root).slice(0, 16)}…)`);
  figures.push({ name: `full sync of ${N} keys over WebSockets (LevelDB store)`, value: fullS, unit: 's', goal: null });

  // -------------------------------------------------------------------------------------------
  // 2. 1% of the keys change; catch-up by change proofs.
  const changed = Math.max(1, Math.round(N / 100));
  const keys: Uint8Array[] = [];
  for await (const kv of replica.db.trie.entries()) keys.push(kv.key);
  // Seeded by the writer's sequence number: a cached writer store must see new values on every run.
  const rnd = new SeededRandom(7 + Number(ann.seq));
  const token = (await readFile(join(writerDir, 'token'), 'utf8')).trim();
  const file = JSON.parse(await readFile(join(writerDir, 'addresses.json'), 'utf8')) as { http: string };
  const picked = new Set<number>();
  while (picked.size < changed) picked.add(rnd.below(keys.length));
  const list = [...picked];
  for (let i = 0; i < list.length; i += 1000) {
    const puts = list.slice(i, i + 1000).map((j) => ({ key: toHex(keys[j]), value: toHex(rnd.bytes(64)) }));
    const res = await fetch(`${file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts }) });
    if (!res.ok) throw new Error(`commit failed: ${res.status} ${await res.text()}`);
  }
  const ann2 = await fetchHeads(client, ws, { writerPublicKey: writerKey });
  let session: Session | undefined;
  if (profileDir) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const writerCpu0 = await cpuSeconds(writer.child.pid!);
  const cpu0 = process.cpuUsage();
  traced.length = 0;
  t = traceT0 = now();
  const catchUp = await syncState({ store: replica.state, sources: [source], target: ann2.stateRoot, concurrency: CONCURRENCY, sizeOf: responseSize, requestTimeoutMs: 120_000, elideLeaves: false });
  const catchS = (now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const writerCpu = (await cpuSeconds(writer.child.pid!)) - writerCpu0;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(profileDir!, { recursive: true });
    await writeFile(join(profileDir!, 'sync-catch-up.cpuprofile'), JSON.stringify(profile));
    session.disconnect();
    console.log(`wrote ${join(profileDir!, 'sync-catch-up.cpuprofile')}`);
  }
  console.log(`catch-up: ${catchUp.progress.keyValuesReceived} changes, ${catchUp.progress.bytesReceived} bytes, ${catchUp.progress.requests} requests in ${catchS.toFixed(2)} s`);
  console.log(`catch-up CPU: client ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, full node ${writerCpu.toFixed(2)} s`);
  if (trace) {
    for (const r of traced.sort((a, b) => a.sent - b.sent)) console.log(`  ${r.kind} ${r.keys} keys: sent ${r.sent.toFixed(0)} ms, answered ${r.answered.toFixed(0)} ms (${(r.answered - r.sent).toFixed(0)} ms)`);
  }
  figures.push({ name: `catch-up after ${changed} keys (1%) changed`, value: catchS, unit: 's', goal: null });
  figures.push({ name: 'catch-up bytes / full sync bytes', value: catchUp.progress.bytesReceived / fullBytes, unit: 'ratio', goal: '<= 0.03' });
  figures.push({ name: 'catch-up time / full sync time', value: catchS / fullS, unit: 'ratio', goal: '<= 0.1' });
} finally {
  await replica.close();
  await writer.stop({ keepDataDir: true });
}

// ---------------------------------------------------------------------------------------------
// 3. Raw baseline: the same key-values without proofs, from a second process, into LevelDB.
// BENCH_RAW=0 skips it.
const rawBaseline = async (): Promise<void> => {
  const raw = await startNodeProcess({
    script: fileURLToPath(new URL('./sync-raw-server.ts', import.meta.url)),
    dataDir: join(work, 'raw-host'),
    args: [join(writerDir, 'db')],
  });
  const rawStore = await LevelStore.open(join(work, 'raw'));
  const rawState = rawStore.prefix(STATE_PREFIX);
  let rawKvBytes = 0;
  let rawKeys = 0;
  let rawWireBytes = 0;
  try {
    const rawAddr = multiaddr(raw.file.ws!);
    const frame = (start: Uint8Array, end: Uint8Array | undefined): Uint8Array => {
      const e = end ?? new Uint8Array(0);
      const out = new Uint8Array(4 + start.length + e.length);
      const dv = new DataView(out.buffer);
      dv.setUint16(0, start.length);
      out.set(start, 2);
      dv.setUint16(2 + start.length, e.length);
      out.set(e, 4 + start.length);
      return out;
    };
    // the key space cut in CONCURRENCY slices by first byte, one stream of requests per slice
    const bounds: (Uint8Array | undefined)[] = Array.from({ length: CONCURRENCY + 1 }, (_, i) =>
      i === 0 ? new Uint8Array(0) : i === CONCURRENCY ? undefined : Uint8Array.of(Math.floor((256 * i) / CONCURRENCY)),
    );
    await request(client, rawAddr, RAW_PROTOCOL, frame(new Uint8Array(0), Uint8Array.of(0)), { maxResponseBytes: 4 << 20, timeoutMs: 60_000 }); // connect
    t = now();
    await Promise.all(
      bounds.slice(0, CONCURRENCY).map(async (lo, i) => {
        const hi = bounds[i + 1];
        // keys > start: begin just below the slice (a 32-byte key may start exactly at `lo`)
        let start = lo!.length ? Uint8Array.of(lo![0] - 1, ...new Uint8Array(33).fill(0xff)) : lo!;
        for (;;) {
          const res = await request(client, rawAddr, RAW_PROTOCOL, frame(start, hi), { maxResponseBytes: 4 << 20, timeoutMs: 60_000 });
          if (res.length === 0) break;
          rawWireBytes += res.length;
          const dv = new DataView(res.buffer, res.byteOffset, res.byteLength);
          const ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
          let o = 0;
          let last = start;
          while (o < res.length) {
            const kl = dv.getUint16(o);
            const key = res.slice(o + 2, o + 2 + kl);
            const vl = dv.getUint32(o + 2 + kl);
            const value = res.slice(o + 6 + kl, o + 6 + kl + vl);
            o += 6 + kl + vl;
            ops.push({ type: 'put', key: Uint8Array.of(0x76, ...key), value });
            rawKvBytes += key.length + value.length;
            rawKeys++;
            last = key;
          }
          await rawState.write(ops);
          start = last;
        }
      }),
    );
    const rawS = (now() - t) / 1000;
    console.log(`raw baseline: ${rawKeys} key-values, ${rawKvBytes} key-value bytes (${rawWireBytes} on the wire) in ${rawS.toFixed(2)} s`);
    figures.push({ name: `raw baseline: ${N} key-values streamed without proofs into LevelDB`, value: rawS, unit: 's', goal: null });
    figures.push({ name: 'full sync time / raw baseline', value: fullS / rawS, unit: 'ratio', goal: '<= 1.5' });
    figures.push({ name: 'full sync bytes received / raw key-value bytes', value: fullBytes / rawKvBytes, unit: 'ratio', goal: '<= 1.1' });
  } finally {
    await rawStore.close();
    await raw.stop();
  }
};
try {
  if (process.env.BENCH_RAW !== '0') await rawBaseline();
} finally {
  await client.stop();
}

await rm(work, { recursive: true, force: true });
writeResults('sync', figures);
