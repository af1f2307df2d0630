/**
 * Core figures: root of 1,000,000 random keys from scratch against SHA-256 alone over
 * the same bytes; range proofs of 2,048 key-values over that trie; a change proof of 1% keys.
 */
import { sha256 } from '../src/core/sha256.ts';
import { buildRoot, itemsFromKeyValues } from '../src/core/builder.ts';
import { hashedLength, nodePreimage } from '../src/core/hash.ts';
import { compareBytes } from '../src/core/bytes.ts';
import { MerkleDatabase } from '../src/core/database.ts';
import { MemoryStore } from '../src/core/store.ts';
import { rangeProof, verifyChangeProof, verifyRangeProof } from '../src/core/proof.ts';
import type { ChangeProof, KeyValue } from '../src/core/types.ts';
import { type Figure, now, seededBytes, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const rnd = seededBytes(1);
const kvs: KeyValue[] = [];
for (let i = 0; i < N; i++) kvs.push({ key: rnd(32), value: rnd(64) });
const figures: Figure[] = [];

// 1. Root from scratch (sort + hash), and SHA-256 alone over exactly the messages it hashed.
let t = now();
const items = itemsFromKeyValues(kvs);
const root = buildRoot(items);
const buildMs = now() - t;
// The baseline hashes exactly the build's messages: each value of 32 bytes or more (the value
// arrays themselves) and each node's pre-image (rebuilt untimed, one array per node).
const messages: Uint8Array[] = [];
buildRoot(items, (n) => {
  if (n.value && n.value.length >= 32) messages.push(n.value);
  const ids = n.children.map((c) => c?.id);
  const pre = nodePreimage(n.path, n.digest, ids);
  let c = 0;
  for (const x of n.children) if (x) c++;
  if (pre.length !== hashedLength(n.path.length, n.digest?.length, c)) throw new Error('pre-image length mismatch');
  messages.push(pre);
});
t = now();
for (const m of messages) sha256(m);
const shaMs = now() - t;
figures.push({ name: `root of ${N} keys from scratch`, value: buildMs / 1000, unit: 's', goal: null });
figures.push({ name: 'SHA-256 alone over the same messages', value: shaMs / 1000, unit: 's', goal: null });
figures.push({ name: 'root build / SHA-256 alone', value: buildMs / shaMs, unit: 'ratio', goal: '<= 2.0' });

// 2. Range proofs of 2,048 key-values.
const sorted = items.map((it) => ({ key: it.key, value: it.value! }));
const db = await MerkleDatabase.open(new MemoryStore());
await db.bulkLoad(sorted);
if (compareBytes(db.root, root) !== 0) throw new Error('bulk-loaded root differs from the built root');
const view = db.trie.view();
const PROOFS = 40;
const starts = Array.from({ length: PROOFS }, () => rnd(32));
await rangeProof(view, starts[0], undefined, 2048); // warm up
t = now();
const proofs = [];
for (const s of starts) proofs.push(await rangeProof(view, s, undefined, 2048));
const genMs = now() - t;
let kvCount = 0;
for (const p of proofs) kvCount += p.keyValues.length;
verifyRangeProof(proofs[0], { root, start: starts[0], keyLimit: 2048 });
t = now();
for (let i = 0; i < PROOFS; i++) verifyRangeProof(proofs[i], { root, start: starts[i], keyLimit: 2048 });
const verMs = now() - t;
figures.push({ name: 'range proof (2,048 kvs) generation', value: PROOFS / (genMs / 1000), unit: 'proofs/s', goal: null });
figures.push({ name: 'range proof generation', value: kvCount / (genMs / 1000), unit: 'key-values/s', goal: null });
figures.push({ name: 'range proof (2,048 kvs) verification', value: PROOFS / (verMs / 1000), unit: 'proofs/s', goal: null });
figures.push({ name: 'range proof verification', value: kvCount / (verMs / 1000), unit: 'key-values/s', goal: '>= 200000' });

// 3. A change proof covering 1% changed keys.
const r1 = db.root;
const changed = Math.floor(N / 100);
const changes = [];
for (let i = 0; i < changed; i++) changes.push({ key: sorted[Math.floor((i * N) / changed)].key, value: rnd(64) });
await db.commit(changes);
t = now();
const res = await db.changeProof(r1, db.root, { keyLimit: changed });
const cgenMs = now() - t;
if (res.type !== 'change') throw new Error('expected a change proof');
// The client's local trie is at r1: the same store with the later changes reverted.
const localTrie = await db.viewAt(r1);
await localTrie.getNode(new Uint8Array(0));
t = now();
await verifyChangeProof(res.proof as ChangeProof, { root: db.root, keyLimit: changed, localTrie });
const cverMs = now() - t;
figures.push({ name: `change proof of ${changed} changed keys: generation`, value: cgenMs / 1000, unit: 's', goal: null });
figures.push({ name: `change proof of ${changed} changed keys: verification`, value: cverMs / 1000, unit: 's', goal: null });

writeResults('core', figures);
