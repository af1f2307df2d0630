/**
 * The CPU side of live updates, in Node without a browser: a `MemoryStore` trie of N
 * random keys (default 1,000,000, `BENCH_KEYS`; 32-byte keys, 64-byte values, bulk-loaded),
 * then K deltas (default 2,000, `BENCH_DELTAS`) of 10 random puts, applied as the live
 * follower does: one view per group of up to 1,024 (`BENCH_GROUP`), the root read after every delta, one
 * `commitView` per group. Reports deltas/s and the time per delta in apply+root and in commit.
 * The node cache is warmed first as the live follower's idle warm-up does (160 MiB, the
 * follower's default): the figure is the in-memory work, not reads. `node --cpu-prof bench/live-apply.bench.ts` profiles it.
 */
import { MemoryStore } from '../src/core/store.ts';
import { MerkleTrie } from '../src/core/trie.ts';
import { compareBytes } from '../src/core/bytes.ts';
import type { KeyValue } from '../src/core/types.ts';
import { type Figure, now, seededBytes, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const K = Number(process.env.BENCH_DELTAS ?? 2_000);
const GROUP = Number(process.env.BENCH_GROUP ?? 1024);
const rnd = seededBytes(7);
const kvs: KeyValue[] = [];
for (let i = 0; i < N; i++) kvs.push({ key: rnd(32), value: rnd(64) });
kvs.sort((a, b) => compareBytes(a.key, b.key));
const store = new MemoryStore();
const trie = await MerkleTrie.open(store, { cacheBytes: 160 * 1024 * 1024 });
let t = now();
await trie.bulkLoad(kvs);
console.log(`live-apply: loaded ${N} keys in ${((now() - t) / 1000).toFixed(1)} s`);
kvs.length = 0;

const deltas = Array.from({ length: K }, () => Array.from({ length: 10 }, () => ({ key: rnd(32), value: rnd(64) })));
// warm: the cache holds the node records as a live client's does once its idle warm-up is done
await trie.view().prefetch(Array.from({ length: 65536 }, (_, i) => Uint8Array.of(i >> 8, i & 255)));
let after: Uint8Array | undefined;
do after = await trie.warmNodes(after, 1024);
while (after);

const run = async (): Promise<{ apply: number; commit: number; roots: Uint8Array[] }> => {
  let apply = 0;
  let commit = 0;
  const roots: Uint8Array[] = [];
  for (let g = 0; g < K; g += GROUP) {
    const group = deltas.slice(g, g + GROUP);
    let t0 = now();
    const view = trie.view();
    await view.prefetchChanges(group.flat());
    for (const d of group) {
      await view.apply(d, { prefetched: true });
      roots.push(view.root);
    }
    let t1 = now();
    await trie.commitView(view);
    apply += t1 - t0;
    commit += now() - t1;
  }
  return { apply, commit, roots };
};
t = now();
const cpu0 = process.cpuUsage();
const r = await run();
const total = now() - t;
const cpu = process.cpuUsage(cpu0);
// CPU time is steadier than wall time on a shared machine
console.log(`live-apply: CPU time per delta ${((cpu.user + cpu.system) / 1000 / K).toFixed(3)} ms (wall ${(total / K).toFixed(3)} ms)`);
const figures: Figure[] = [
  { name: `deltas applied per second, Node, MemoryStore, ${N}-key trie, 10 puts each, root per delta, commit per ${GROUP}`, value: (K / total) * 1000, unit: 'deltas/s', goal: null },
  { name: 'apply + root per delta', value: r.apply / K, unit: 'ms', goal: null },
  { name: 'commitView per delta', value: r.commit / K, unit: 'ms', goal: null },
];
console.log(`live-apply: last root ${Buffer.from(r.roots[r.roots.length - 1]).toString('hex')}`);
writeResults('live-apply', figures);
