/**
 * A writer with a long history, made fast (issue 6, `--generate-log N`): N real commits, each
 * a seeded batch from `BatchGenerator` committed by the writer's own code (`DatabaseWriter`:
 * the trie commit computes the real state root, the delta carrying it is signed with the
 * writer key and appended to the operation log and its MMR, parents chain to the previous
 * delta), exactly what N commits over the HTTP API would store. What makes it fast:
 *
 * - the state lives in a plain in-memory trie (memory-trie.ts: the core trie's roots, without
 *   its store), the log and the writer records in a `MemoryStore` laid out as the node's store
 *   (node-store.ts); at the end the final state is bulk-loaded into the node's database, whose
 *   root must be the last delta's `stateRoot` (otherwise generation fails), and the records are
 *   copied into LevelDB in large batches;
 * - no announcement is signed per commit (nobody could have received them): one is signed
 *   at the end, over the final state root, log root and head;
 * - signatures come from node:crypto (signer.ts).
 *
 * The store holds no revision history for the generated commits (as after a bulk load): the
 * node's history window starts at the generated root.
 *
 * The copy is not one atomic batch: a `generating` marker is written first and removed by the
 * last batch, and a node refuses to open a store that still holds it.
 */
import { equalBytes, toHex } from '../core/bytes.ts';
import { InvalidRequest } from '../core/errors.ts';
import type { WallClock } from '../core/hlc.ts';
import { MemoryStore, type BatchOp } from '../core/store.ts';
import { EMPTY_ROOT, type KeyValue } from '../core/types.ts';
import { BatchGenerator } from './generate.ts';
import { PrefixedStore } from './level-store.ts';
import { DELTA_PREFIX, LOG_PREFIX, underPrefix, WRITER_PREFIX, type NodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import type { DigestSigner } from './signer.ts';
import { MemoryTrie } from './memory-trie.ts';
import { DatabaseWriter } from './writer.ts';

const GENERATING_KEY = new TextEncoder().encode('generating');
/** Records per LevelDB batch while copying (classic-level: 200k batched puts in 0.75 s here). */
const COPY_CHUNK = 50_000;

/** A store that an interrupted `--generate-log` left half-copied. */
export class IncompleteGeneratedStore extends InvalidRequest {
  override readonly name = 'IncompleteGeneratedStore';
}
Object.defineProperty(IncompleteGeneratedStore, 'name', { value: 'IncompleteGeneratedStore' });

export interface GenerateLogOptions {
  /** The node's store: empty (no state, no log). */
  store: NodeStore;
  /** Commits to make. */
  count: number;
  /** Seed of the batches (`BatchGenerator`). */
  seed: number;
  /** Most puts per commit (default 1; a commit sometimes also deletes an earlier key). */
  maxPuts?: number;
  /** Keys are drawn from this many (default: fresh keys, the state grows with the log). */
  keySpace?: number;
  /** Key-values loaded before the first commit (sorted, unique), as `--generate` does. */
  initial?: KeyValue[];
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  db: string;
  sign?: DigestSigner;
  wallClock?: WallClock;
  /** Every 10,000 commits, then once when copying. */
  onProgress?: (p: { phase: 'commit' | 'copy'; done: number; total: number }) => void;
}

export interface GeneratedLog {
  root: Uint8Array;
  logSize: number;
  logRoot: Uint8Array;
}

/** Throws `IncompleteGeneratedStore` when an interrupted generation left `store` half-written. */
export async function assertNotHalfGenerated(store: NodeStore, where: string): Promise<void> {
  if ((await store.writer.get(GENERATING_KEY)) !== undefined) {
    throw new IncompleteGeneratedStore(`an interrupted --generate-log left ${where} incomplete: remove it and start again`, { where });
  }
}

/** Whether the store holds no state and no log operation (what generation needs). */
export async function isEmptyStore(store: NodeStore): Promise<boolean> {
  if (!equalBytes(store.db.root, EMPTY_ROOT)) return false;
  for await (const _ of store.log.iterate({ limit: 1 })) return false;
  return true;
}

/**
 * Makes `count` commits into an empty node store (module comment) and returns what the store
 * then holds. The caller reopens the store afterwards (its `MerkleDatabase` was opened empty).
 *
 * @example
 * await generateOperationLog({ store, count: 100_000, seed: 1, secretKey, publicKey, db: 'demo' });
 * await store.close();
 */
export async function generateOperationLog(o: GenerateLogOptions): Promise<GeneratedLog> {
  if (!Number.isSafeInteger(o.count) || o.count < 0) throw new RangeError(`expected a non-negative commit count, got ${o.count}`);
  if (!(await isEmptyStore(o.store))) throw new InvalidRequest('--generate-log needs an empty database');
  const mem = new MemoryStore();
  const state = new MemoryTrie((ops) => mem.writeSync(ops));
  const memStore = { db: state, writer: new PrefixedStore(mem, WRITER_PREFIX) };
  const log = await OperationLog.open(new PrefixedStore(mem, LOG_PREFIX), new PrefixedStore(mem, DELTA_PREFIX));
  const writer = await DatabaseWriter.open({ store: memStore, log, secretKey: o.secretKey, publicKey: o.publicKey, db: o.db, wallClock: o.wallClock, sign: o.sign });
  if (o.initial?.length) await writer.bulkLoad(o.initial);
  const batches = new BatchGenerator(o.seed, o.maxPuts ?? 1, o.keySpace);
  for (let i = 0; i < o.count; i++) {
    await writer.commit(batches.next(), { announce: false });
    if ((i + 1) % 10_000 === 0) o.onProgress?.({ phase: 'commit', done: i + 1, total: o.count });
  }
  const ann = await writer.reannounce();

  // the copy: marker, state, records, marker removed with the last chunk
  const generating: BatchOp = { type: 'put', key: GENERATING_KEY, value: Uint8Array.of(1) };
  await o.store.writer.write([generating]);
  const loaded = await o.store.db.bulkLoad([...state.entries()]);
  if (!equalBytes(loaded, ann.stateRoot)) throw new Error(`internal: the generated state loads to root ${toHex(loaded)}, not the signed ${toHex(ann.stateRoot)}`);
  let chunk: BatchOp[] = [];
  let copied = 0;
  for await (const [key, value] of mem.iterate({})) {
    chunk.push({ type: 'put', key, value });
    if (chunk.length === COPY_CHUNK) {
      await o.store.state.write(chunk);
      copied += chunk.length;
      o.onProgress?.({ phase: 'copy', done: copied, total: mem.size });
      chunk = [];
    }
  }
  await o.store.state.write([...chunk, ...underPrefix(WRITER_PREFIX, [{ type: 'del', key: GENERATING_KEY }])]);
  o.onProgress?.({ phase: 'copy', done: mem.size, total: mem.size });
  return { root: ann.stateRoot, logSize: ann.logSize, logRoot: ann.logRoot };
}
