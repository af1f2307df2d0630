/**
 * Capacity of one full node: 16 load clients (Node libp2p clients in this process, WebSockets on
 * loopback, one request in flight each) ask the canonical request plan (src/sync/state/plan.ts)
 * at one root, fetch the answers and discard them (they measure the server, not themselves);
 * the node is a child process. Two phases:
 *
 * - cache cold: the node runs with `--proof-cache-bytes 0`, so every answer is built;
 * - cache warm: the node keeps answers (`--proof-cache-any-root`, a cache sized to the whole
 *   plan), one client walks the plan first, then the 16 load clients ask it again.
 *
 * The generated node writes no checkpoints, so the bench root is the node's head root and
 * `--proof-cache-any-root` lets the cache keep answers at it; with a writer that names
 * checkpoints the clients would ask at the announced checkpoint root and the flag is not needed.
 *
 * Figures: aggregate answer bytes per second; node CPU seconds (utime + stime of the node
 * process, /proc/PID/stat) per client sync of the whole plan (named for BENCH_KEYS; the goal
 * applies at 1M keys); the warm phase's hit ratio. On a 2-core machine the load clients
 * (Noise decryption of every answer) share the cores with the node, so the node's throughput is
 * under-reported: with the node on its own machine, the warm figure is bounded by its own CPU
 * per byte, which the CPU figures give.
 *
 * Then the optional modules bench/capacity/discovery.ts and bench/capacity/static.ts (contract
 * in bench/capacity/types.ts), each skipped when absent. Discovery runs at its own size,
 * BENCH_DISCOVERY_KEYS (default 100,000, at most BENCH_KEYS unless set), named in its figures.
 *
 * BENCH_KEYS (default 1,000,000; the store is shared with the node suite and kept between
 * runs), BENCH_SECONDS (default 10), BENCH_CLIENTS (default 16).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RangeProofRequest } from '../src/core/types.ts';
import { decodeRangeProofResponse, encodeRangeProofRequest } from '../src/protocol/codec.ts';
import { fetchHeads } from '../src/protocol/client.ts';
import { RANGE_PROTOCOL } from '../src/protocol/ids.ts';
import { request } from '../src/protocol/stream.ts';
import { canonicalParts, canonicalRangeRequest, canonicalResume } from '../src/sync/state/plan.ts';
import { createClientNode, type ClientNode } from '../src/node/host.ts';
import { DEFAULT_PROOF_CACHE_BYTES, ENTRY_OVERHEAD_BYTES } from '../src/node/proof-cache.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../src/node/testing/process.ts';
import type { CapacityContext, CapacityModule } from './capacity/types.ts';
import { type Figure, now, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const dir = join(tmpdir(), `proofsync-bench-node-${N}`);
const here = dirname(fileURLToPath(import.meta.url));
const figures: Figure[] = [];
// per-sync CPU is named for the size measured: a small state's answers are small, so the
// per-answer costs (a stream, its negotiation) weigh more than at 1M keys, and scaling would mislead
const syncName = N === 1_000_000 ? '1M-key' : `${N}-key`;
const syncGoal = N === 1_000_000 ? '<= 0.2' : null;
const TICKS_PER_SECOND = 100; // USER_HZ of /proc/PID/stat on Linux

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function metric(node: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.file.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function startNode(extra: string[]): Promise<{ node: NodeProcess; ws: Multiaddr }> {
  const fresh = !existsSync(join(dir, 'db'));
  if (fresh) console.log(`generating ${N} keys in ${dir} ...`);
  const t = now();
  const node = await startNodeProcess({
    script: FULL_NODE_SCRIPT,
    dataDir: dir,
    args: ['--generate', String(N), '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--peer-streams', '64', '--peer-rate', '1000000:1000000', ...extra],
    readyTimeoutMs: 600_000,
  });
  if (fresh) figures.push({ name: `generate and bulk-load ${N} keys (node start)`, value: (now() - t) / 1000, unit: 's', goal: null });
  return { node, ws: multiaddr(node.file.ws!) };
}

const ask = (c: ClientNode, ws: Multiaddr, body: Uint8Array) => request(c, ws, RANGE_PROTOCOL, body, { maxResponseBytes: 2 << 20, timeoutMs: 120_000 });

/** The whole canonical plan at `root`, every part followed to its end: the encoded requests and the plan's answer bytes. */
async function walkPlan(c: ClientNode, ws: Multiaddr, root: Uint8Array): Promise<{ requests: Uint8Array[]; bytes: number }> {
  const requests: Uint8Array[] = [];
  let bytes = 0;
  for (const part of canonicalParts()) {
    let req: RangeProofRequest | undefined = canonicalRangeRequest(root, part.start, part.end);
    while (req) {
      const body = encodeRangeProofRequest(req);
      const answer = await ask(c, ws, body);
      const res = decodeRangeProofResponse(answer);
      if (res.type !== 'rangeProof') throw new Error(`${res.name}: ${res.message}`);
      requests.push(body);
      bytes += answer.length;
      req = canonicalResume(req, res.proof);
    }
  }
  return { requests, bytes };
}

/** Load clients cycling through the plan (each from its own offset) for SECONDS: bytes and answers, node CPU seconds, wall seconds. */
async function load(clients: ClientNode[], ws: Multiaddr, pid: number, plan: Uint8Array[]): Promise<{ bytes: number; answers: number; cpu: number; wall: number }> {
  await Promise.all(clients.map((c) => ask(c, ws, plan[0]))); // connected before the clock starts
  let bytes = 0;
  let answers = 0;
  const cpu0 = cpuSeconds(pid);
  const self0 = process.cpuUsage();
  const t0 = now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = Math.floor((i * plan.length) / clients.length); now() < end; k = (k + 1) % plan.length) {
        const answer = await ask(c, ws, plan[k]);
        bytes += answer.length;
        answers++;
      }
    }),
  );
  const r = { bytes, answers, cpu: cpuSeconds(pid) - cpu0, wall: (now() - t0) / 1000 };
  const self = process.cpuUsage(self0);
  console.log(`${answers} answers, ${(bytes / 1e6).toFixed(1)} MB in ${r.wall.toFixed(1)} s, node CPU ${r.cpu.toFixed(2)} s, load clients' CPU ${((self.user + self.system) / 1e6).toFixed(2)} s`);
  return r;
}

const clients: ClientNode[] = [];
let planBytes = 0;
try {
  for (let i = 0; i < CLIENTS; i++) clients.push(await createClientNode());

  // cache cold: every answer built
  let { node, ws } = await startNode(['--proof-cache-bytes', '0']);
  let plan: Uint8Array[];
  try {
    const root = (await fetchHeads(clients[0], ws)).stateRoot;
    const walked = await walkPlan(clients[0], ws, root);
    plan = walked.requests;
    planBytes = walked.bytes;
    console.log(`plan at the head root: ${plan.length} requests, ${(planBytes / 1e6).toFixed(1)} MB of answers`);
    figures.push({ name: `range-proof answers of the canonical plan, ${N} keys`, value: plan.length, unit: 'answers', goal: null });
    figures.push({ name: `range-proof answer bytes of the canonical plan, ${N} keys`, value: planBytes / 1e6, unit: 'MB', goal: null });
    const cold = await load(clients, ws, node.child.pid!, plan);
    figures.push({ name: `aggregate range-proof bytes served per second, ${CLIENTS} load clients at one checkpoint, cache cold`, value: cold.bytes / cold.wall / 1e6, unit: 'MB/s', goal: null });
    figures.push({ name: `node CPU seconds per ${syncName} client sync, cache cold`, value: cold.cpu / (cold.bytes / planBytes), unit: 's', goal: null });
    figures.push({ name: `node CPU use, ${CLIENTS} load clients, cache cold`, value: cold.cpu / cold.wall, unit: 'cores', goal: null });
  } finally {
    await node.stop({ keepDataDir: true });
  }

  // cache warm: one walk fills the cache, then the load
  const cacheBytes = Math.max(DEFAULT_PROOF_CACHE_BYTES, Math.ceil(1.25 * (planBytes + plan.length * (ENTRY_OVERHEAD_BYTES + 200))));
  ({ node, ws } = await startNode(['--proof-cache-any-root', '--proof-cache-bytes', String(cacheBytes)]));
  try {
    const root = (await fetchHeads(clients[0], ws)).stateRoot;
    await walkPlan(clients[0], ws, root);
    const hits0 = await metric(node, 'proofsync_proof_cache_hits_total');
    const misses0 = await metric(node, 'proofsync_proof_cache_misses_total');
    const warm = await load(clients, ws, node.child.pid!, plan);
    const hits = (await metric(node, 'proofsync_proof_cache_hits_total')) - hits0;
    const misses = (await metric(node, 'proofsync_proof_cache_misses_total')) - misses0;
    figures.push({ name: `aggregate range-proof bytes served per second, ${CLIENTS} load clients at one checkpoint, cache warm`, value: warm.bytes / warm.wall / 1e6, unit: 'MB/s', goal: '>= 45' });
    figures.push({ name: `node CPU seconds per ${syncName} client sync, cache warm`, value: warm.cpu / (warm.bytes / planBytes), unit: 's', goal: syncGoal });
    figures.push({ name: `node CPU use, ${CLIENTS} load clients, cache warm`, value: warm.cpu / warm.wall, unit: 'cores', goal: null });
    figures.push({ name: 'proof cache hit ratio during the warm load', value: hits / Math.max(1, hits + misses), unit: 'ratio', goal: null });
    figures.push({ name: 'proof cache size of the warm phase (--proof-cache-bytes)', value: cacheBytes / 2 ** 20, unit: 'MiB', goal: null });
  } finally {
    await node.stop({ keepDataDir: true });
  }
} finally {
  await Promise.allSettled(clients.map((c) => c.stop()));
}

// the optional modules, each measuring on its own
const ctx: CapacityContext = { keys: N, seconds: SECONDS, dataDir: dir, log: (line) => console.log(line) };
for (const name of ['discovery', 'static']) {
  const file = join(here, 'capacity', `${name}.ts`);
  if (!existsSync(file)) {
    console.log(`capacity/${name}.ts absent: skipped`);
    continue;
  }
  try {
    const mod = (await import(pathToFileURL(file).href)) as CapacityModule;
    figures.push(...(await mod.run(ctx)));
  } catch (err) {
    console.error(`capacity/${name}.ts failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  }
}

writeResults('capacity', figures);
