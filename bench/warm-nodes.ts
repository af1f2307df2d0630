/**
 * How long `MerkleTrie.warmNodes` takes to read every node record of a 200,000-key trie in a
 * MemoryStore into the node cache (what a live client's warm-up does while idle; with elided
 * leaves it also reads and hashes every leaf). `node bench/warm-nodes.ts [keys]`; three runs.
 */
import { MerkleTrie } from '../src/core/trie.ts';
import { MemoryStore } from '../src/core/store.ts';
import { SeededRandom } from '../src/node/generate.ts';

const N = Number(process.argv[2] ?? 200_000);
const rnd = new SeededRandom(5);
const kvs = Array.from({ length: N }, () => ({ key: rnd.bytes(32), value: rnd.bytes(64) }));
const store = new MemoryStore();
await (await MerkleTrie.open(store)).commit(kvs);
for (let r = 0; r < 3; r++) {
  const trie = await MerkleTrie.open(store, { cacheBytes: 512 * 1024 * 1024 });
  const t0 = performance.now();
  let after: Uint8Array | undefined;
  do after = await trie.warmNodes(after, 1024);
  while (after);
  console.log(`warmNodes, ${N} keys, MemoryStore: ${(performance.now() - t0).toFixed(0)} ms (cache whole: ${trie.cacheWhole})`);
}
