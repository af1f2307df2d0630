/**
 * The raw baseline of the browser benchmark (bench/browser.bench.ts): the same key-values fetched
 * from the same node over the same transport, with the same concurrency, but nothing verified:
 * each key-value is hashed once (SHA-256) and written packed to IndexedDB (PackedIdbStore, the
 * client's own store) in the answer's batch. Proof bytes still cross the wire (the node serves
 * only proofs); the difference to the light client is verification, the trie and its nodes.
 */
/// <reference lib="webworker" />
import { multiaddr } from '@multiformats/multiaddr';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex } from '../../src/core/bytes.ts';
import { PackedIdbStore } from '../../src/client/idb/index.ts';
import { createBrowserNode } from '../../src/client/transport.ts';
import { fetchRangeProof } from '../../src/protocol/client.ts';

export interface BaselineRequest {
  addr: string;
  root: string;
  storageName: string;
  concurrency: number;
}

export interface BaselineResult {
  ms: number;
  keyValues: number;
}

declare const self: DedicatedWorkerGlobalScope;

self.onmessage = async (m: MessageEvent<BaselineRequest>) => {
  const { addr, root, storageName, concurrency } = m.data;
  const node = await createBrowserNode({ allowInsecureLoopback: true, transports: ['websockets'] });
  const store = await PackedIdbStore.open(storageName);
  const ma = multiaddr(addr);
  await node.dial(ma);
  const rootHash = fromHex(root);
  const started = performance.now();
  let keyValues = 0;
  // `concurrency` slices of the key space by first byte, each fetched in order
  const slices = Array.from({ length: concurrency }, (_, i) => ({
    start: i === 0 ? undefined : Uint8Array.of(Math.floor((256 * i) / concurrency)),
    // inclusive: the last first byte followed by more 0xff than any key has
    end: i === concurrency - 1 ? undefined : Uint8Array.of(Math.floor((256 * (i + 1)) / concurrency) - 1, ...new Array(32).fill(0xff)),
  }));
  await Promise.all(
    slices.map(async ({ start, end }) => {
      let from = start;
      let writing: Promise<void> = Promise.resolve();
      for (;;) {
        const proof = await fetchRangeProof(node, ma, { rootHash, startKey: from, endKey: end, keyLimit: 2048, bytesLimit: 2 * 1024 * 1024 - 4096 }, { timeoutMs: 60_000 });
        const kvs = proof.keyValues;
        if (kvs.length === 0) break;
        for (const kv of kvs) {
          const msg = new Uint8Array(kv.key.length + kv.value.length);
          msg.set(kv.key);
          msg.set(kv.value, kv.key.length);
          sha256(msg);
        }
        keyValues += kvs.length;
        await writing; // one write in flight per slice while the next answer downloads
        writing = store.write(kvs.map((kv) => ({ type: 'put' as const, key: kv.key, value: kv.value })));
        const last = kvs[kvs.length - 1].key;
        from = new Uint8Array(last.length + 1);
        from.set(last);
      }
      await writing;
    }),
  );
  const ms = performance.now() - started;
  await store.close();
  await node.stop();
  self.postMessage({ ms, keyValues } satisfies BaselineResult);
};
