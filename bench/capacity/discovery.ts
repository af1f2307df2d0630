/**
 * Capacity: how evenly peer discovery spreads a crowd over the full nodes of a database.
 *
 * A writer and three replicas (real node processes, `--generate ctx.keys` on the writer, the
 * replicas `--follow` it), and 8 light clients given the writer's address alone. Each client
 * is the light client's sync engine on Node, not a browser (8 Chromium workers would measure
 * the browsers on this 2-core machine, not the spread): a libp2p client node, the worker's
 * discovery (`PeerDiscovery`, src/client/discovery.ts: ask the writer over `/proofsync/1/peers`,
 * dial what the answer allows) and `syncState` with the writer as its first source and every
 * dialed replica joining the running sync, at the worker's default concurrency (4), each into
 * a memory store. The figure is read from the nodes' own counters
 * (`proofsync_requests_total{protocol="range",outcome="ok"}`): the share of all range-proof
 * answers that the busiest node served. 0.25 is a perfect spread over 4 nodes; 1 is the writer
 * serving everyone.
 *
 * Its own size: `BENCH_DISCOVERY_KEYS` keys (default 100,000, or the suite's `BENCH_KEYS` when
 * smaller), not the suite's 1M. The figure is a share of answers, which the state's size does
 * not change much (100k keys: 127 canonical answers per sync, 0.257), while 8 syncs of 1M keys
 * in this one Node thread starve their own dials; the size is in the figures' names and the
 * console line.
 *
 * Runs from the capacity suite as `run(ctx)`, or alone: `BENCH_DISCOVERY_KEYS=20000 npm exec --
 * node bench/capacity/discovery.ts` (default 100,000 keys; alone, `BENCH_KEYS` sets the size
 * too, as it did before `BENCH_DISCOVERY_KEYS`).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { fileURLToPath } from 'node:url';
import { equalBytes } from '../../src/core/bytes.ts';
import { MemoryStore } from '../../src/core/store.ts';
import { PeerDiscovery } from '../../src/client/discovery.ts';
import { libp2pRequester } from '../../src/client/worker/peer-calls.ts';
import { createClientNode } from '../../src/node/host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../../src/node/testing/process.ts';
import { fetchHeads } from '../../src/protocol/client.ts';
import type { Dialer } from '../../src/protocol/stream.ts';
import { transportOf } from '../../src/protocol/transports.ts';
import { PushQueue } from '../../src/sync/push-queue.ts';
import { syncState } from '../../src/sync/state/driver.ts';
import { networkStateSource, responseSize } from '../../src/sync/state/network-source.ts';
import type { StateSource } from '../../src/sync/state/source.ts';
import { type Figure, writeResults } from '../lib.ts';

/**
 * What the capacity suite hands each part. Declared here, compatible with the suite's own
 * context type (a `keys` field): this part needs nothing else.
 */
export interface DiscoveryBenchContext {
  /** Keys of the suite (BENCH_KEYS): this part's size is `discoveryKeys(keys)`. */
  keys: number;
  /** This part's size, when the caller sets it (run alone). */
  discoveryKeys?: number;
}

const CLIENTS = 8;
const REPLICAS = 3;
/** Default `BENCH_DISCOVERY_KEYS`. */
const DEFAULT_DISCOVERY_KEYS = 100_000;

/** The writer's size for this part: `BENCH_DISCOVERY_KEYS`, else at most 100,000 of the suite's keys. */
export function discoveryKeys(suiteKeys: number, env: Record<string, string | undefined> = process.env): number {
  const set = env.BENCH_DISCOVERY_KEYS;
  if (set === undefined || set === '') return Math.min(suiteKeys, DEFAULT_DISCOVERY_KEYS);
  const n = Number(set);
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`expected BENCH_DISCOVERY_KEYS to be a positive integer, got ${set}`);
  return n;
}

/** Range-proof answers `n` has served (its Prometheus counter). */
async function rangeAnswers(n: NodeProcess): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith('proofsync_requests_total{') || !line.includes('protocol="range"') || !line.includes('outcome="ok"')) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

async function status(n: NodeProcess): Promise<{ root: string }> {
  return (await fetch(`${n.file.http}/v1/status`)).json() as Promise<{ root: string }>;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The writer's signed head; a first dial that times out (8 clients at once on a loaded machine) is tried again, as the worker does. */
async function headsWithRetry(node: Dialer, addr: Multiaddr, writer: string, signal: AbortSignal): Promise<{ stateRoot: Uint8Array }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchHeads(node, addr, { writerPublicKey: peerIdFromString(writer).publicKey!.raw, timeoutMs: 30_000, signal });
    } catch (err) {
      if (attempt >= 5 || signal.aborted) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1_000 * attempt));
    }
  }
}

/** One light client from the writer's address alone: discovery, then a full sync spread over what it found. */
async function lightClient(writer: NodeProcess, signal: AbortSignal): Promise<{ replicasJoined: number }> {
  const node = await createClientNode();
  const writerAddr = multiaddr(writer.file.ws!);
  /** Every source so far (the writer, then each replica dialed), and the running attempt's queue of newcomers. */
  const known: StateSource[] = [networkStateSource(node, writer.file.peerId, writerAddr)];
  let joining = new PushQueue<StateSource>();
  try {
    const ann = await headsWithRetry(node, writerAddr, writer.file.peerId, signal);
    const discovery = new PeerDiscovery(
      {},
      {
        self: node.peerId.toString(),
        known: (id) => id === writer.file.peerId || node.getConnections(peerIdFromString(id)).length > 0,
        allowed: (ma) => transportOf(ma.toString()) === 'websockets',
        dial: async (ma, id) => {
          await node.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
          const source = networkStateSource(node, id, peerIdFromString(id));
          known.push(source);
          joining.push(source);
          return true;
        },
        onError: (peer, err) => console.error(`discovery: ${peer}: ${(err as Error)?.message ?? String(err)}`),
      },
    );
    // The worker starts its sync on the bootstrap node while discovery asks it. Here 8 clients
    // share this process's one thread, and their proof checking starved their own dials (every
    // replica dial timed out at 10 s in a 1M-key run with the machine otherwise idle), which a
    // browser, one client per machine, does not do: so each client lets its dials finish (or
    // fail, 20 s at most) before it syncs. The figure is then the spread the peer book gives.
    await discovery.ask({ id: writer.file.peerId, request: libp2pRequester(node, writerAddr) }, { signal });
    await until('discovery dials', async () => known.length > REPLICAS, 20_000).catch(() => {});
    const store = new MemoryStore();
    // as the worker's loop does, a failed attempt (every source failing on an overloaded
    // machine) is tried again on the same store, so it resumes
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await syncState({ store, sources: [...known], sourceUpdates: joining, target: ann.stateRoot, sizeOf: responseSize, signal });
        if (!equalBytes(result.root, ann.stateRoot)) throw new Error('a light client finished at the wrong root');
        return { replicasJoined: known.length - 1 };
      } catch (err) {
        if (attempt >= 5 || signal.aborted) throw err;
        console.error(`discovery: a light client's sync failed (${(err as Error)?.name}), again from where it stopped`);
        joining.close();
        joining = new PushQueue<StateSource>();
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  } finally {
    joining.close();
    await node.stop();
  }
}

export async function run(ctx: DiscoveryBenchContext): Promise<Figure[]> {
  const nodes: NodeProcess[] = [];
  const keys = ctx.discoveryKeys ?? discoveryKeys(ctx.keys);
  const size = `${keys.toLocaleString('en')} keys`;
  try {
    const writer = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--generate', String(keys)], readyTimeoutMs: 600_000 });
    nodes.push(writer);
    for (let i = 0; i < REPLICAS; i++) {
      nodes.push(await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 120_000 }));
    }
    const { root } = await status(writer);
    await Promise.all(nodes.slice(1).map((r, i) => until(`replica ${i} at the writer's root`, async () => (await status(r)).root === root, 600_000)));
    const before = await Promise.all(nodes.map(rangeAnswers));
    const stop = AbortSignal.timeout(600_000);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => lightClient(writer, stop)));
    const after = await Promise.all(nodes.map(rangeAnswers));
    const served = after.map((a, i) => a - before[i]);
    const total = served.reduce((a, b) => a + b, 0);
    const busiest = Math.max(...served) / total;
    console.log(
      `discovery: ${keys} keys (BENCH_DISCOVERY_KEYS; the suite's BENCH_KEYS is ${ctx.keys}), ${CLIENTS} clients; range answers served: writer ${served[0]}, replicas ${served.slice(1).join(', ')}; replicas joined per client: ${clients.map((c) => c.replicasJoined).join(', ')}`,
    );
    return [
      {
        name: `share of answers served by the busiest of 4 nodes (writer + 3 replicas), ${CLIENTS} light clients bootstrapped from the writer alone, ${size}`,
        value: busiest,
        unit: 'ratio',
        goal: '<= 0.4',
      },
      { name: `share of answers served by the writer, ${CLIENTS} light clients bootstrapped from it alone, ${size}`, value: served[0] / total, unit: 'ratio', goal: null },
    ];
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // alone, BENCH_KEYS sizes it too (as before BENCH_DISCOVERY_KEYS); the latter wins
  const keys = Number(process.env.BENCH_KEYS ?? DEFAULT_DISCOVERY_KEYS);
  writeResults('capacity-discovery', await run({ keys, discoveryKeys: process.env.BENCH_DISCOVERY_KEYS ? discoveryKeys(keys) : keys }));
}
