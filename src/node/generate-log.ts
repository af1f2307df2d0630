/**
 * A writer with a long history, made fast (`proofsync node --generate-log N`): N real commits, each
 * a seeded batch from `BatchGenerator` made as the writer makes one (writer.ts): canonical
 * actions, the state root after applying them, a delta carrying it with the previous delta as
 * parent and a writer HLC, signed with the writer key and appended to the operation log and its
 * MMR with its delta index entry; exactly what N commits over the HTTP API would store (the
 * test replays every delta and checks its root and signature). What makes it fast:
 *
 * - the state lives in a plain in-memory trie (memory-trie.ts: the core trie's roots, without
 *   its store), the log and the writer records in a `MemoryStore` laid out as the node's store
 *   (node-store.ts); at the end the final state is bulk-loaded into the node's database, whose
 *   root must be the last delta's `stateRoot` (otherwise generation fails), and the records are
 *   copied into LevelDB in large batches;
 * - no announcement is signed per commit (nobody could have received them): one is signed
 *   at the end, over the final state root, log root and head;
 * - signatures come from node:crypto (signer.ts), in a worker thread (sign-worker.ts) that
 *   signs one chunk of ids while the next chunk's roots and ids are computed: an id hashes the
 *   delta's body (its parent's id included), never a signature.
 *
 * The store holds no revision history for the generated commits (as after a bulk load): the
 * node's history window starts at the generated root.
 *
 * The copy is not one atomic batch: a `generating` marker is written first and removed by the
 * last batch, and a node refuses to open a store that still holds it.
 */
import { Worker } from 'node:worker_threads';
import { concatBytes, equalBytes, toHex } from '../core/bytes.ts';
import { encodeAnnouncement, signAnnouncementWith } from '../core/announcement.ts';
import { DELTA_SIGNING_CONTEXT, encodeDeltaBody, type DigestSigner } from '../core/delta.ts';
import { errorClass, InvalidRequest } from '../core/errors.ts';
import { HybridClock, type WallClock } from '../core/hlc.ts';
import { sha256 } from '../core/sha256.ts';
import { MemoryStore, type BatchOp } from '../core/store.ts';
import { EMPTY_ROOT, type KeyValue } from '../core/types.ts';
import { BatchGenerator } from './generate.ts';
import { PrefixedStore } from './level-store.ts';
import { DELTA_PREFIX, LOG_PREFIX, underPrefix, WRITER_PREFIX, type NodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { nativeDigestSigner } from './signer.ts';
import { ANN_KEY, canonicalActions, DatabaseWriter } from './writer.ts';
import { MemoryTrie } from './memory-trie.ts';

/** Deltas signed per message to the signing thread. */
const SIGN_CHUNK = 2048;

/** The signing thread (sign-worker.ts): chunks of ids in, signatures out. */
class SignerThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (s: Uint8Array) => void; reject: (e: unknown) => void }>();
  #seq = 0;

  constructor(secretKey: Uint8Array) {
    this.#worker = new Worker(new URL('./sign-worker.ts', import.meta.url), { workerData: { secretKey } });
    this.#worker.on('message', (m: { seq: number; signatures: Uint8Array }) => {
      this.#pending.get(m.seq)?.resolve(m.signatures);
      this.#pending.delete(m.seq);
    });
    const fail = (err: unknown): void => {
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`the signing thread exited (${code})`)));
  }

  sign(ids: Uint8Array): Promise<Uint8Array> {
    const seq = this.#seq++;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#worker.postMessage({ seq, ids });
    });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

const GENERATING_KEY = new TextEncoder().encode('generating');
/** Records per LevelDB batch while copying (classic-level: 200k batched puts in 0.75 s here). */
const COPY_CHUNK = 50_000;

/** A store that an interrupted `--generate-log` left half-copied. */
export const IncompleteGeneratedStore = errorClass(InvalidRequest, 'IncompleteGeneratedStore');

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
  /** Sign on this thread with this signer (default: node:crypto in a worker thread). */
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
  const signer = o.sign ? undefined : new SignerThread(o.secretKey);
  const signDigest = o.sign ?? nativeDigestSigner(o.secretKey);
  const clock = new HybridClock(o.wallClock ?? Date.now, { writer: o.publicKey, last: writer.announcement.hlc });
  /** Appends a chunk of deltas (bodies, ids) to the log once their signatures are in. */
  const append = (bodies: Uint8Array[], ids: Uint8Array[], signatures: Uint8Array): void => {
    for (let k = 0; k < bodies.length; k++) {
      const bytes = concatBytes(bodies[k], signatures.subarray(k * 64, k * 64 + 64));
      const staged = log.stage(ids[k], bytes);
      mem.writeSync([...underPrefix(LOG_PREFIX, staged.logOps), ...underPrefix(DELTA_PREFIX, staged.deltaOps)]);
      log.applyStaged(staged);
    }
  };
  let parent = EMPTY_ROOT;
  try {
    let bodies: Uint8Array[] = [];
    let ids: Uint8Array[] = [];
    let previous: Promise<void> = Promise.resolve();
    for (let i = 0; i < o.count; i++) {
      const actions = canonicalActions(batches.next());
      const stateRoot = await state.commit(actions);
      const body = encodeDeltaBody({ parents: [parent], actions, hlc: clock.tick(), stateRoot, logIndex: i });
      parent = sha256(body);
      bodies.push(body);
      ids.push(parent);
      if (bodies.length === SIGN_CHUNK || i === o.count - 1) {
        const [b, d] = [bodies, ids];
        const signatures = signer ? signer.sign(concatBytes(...d)) : Promise.resolve(concatBytes(...d.map((id) => signDigest(DELTA_SIGNING_CONTEXT, id))));
        signatures.catch(() => {}); // awaited below, after the previous chunk
        await previous;
        previous = signatures.then((sigs) => append(b, d, sigs));
        bodies = [];
        ids = [];
      }
      if ((i + 1) % 10_000 === 0) o.onProgress?.({ phase: 'commit', done: i + 1, total: o.count });
    }
    await previous;
  } finally {
    await signer?.close();
  }
  // the announcement of the generated state, from the same clock as the deltas
  const ann = signAnnouncementWith(
    { db: writer.db, seq: writer.announcement.seq + 1, stateRoot: state.root, logRoot: log.root(), logSize: log.size, heads: o.count ? [parent] : [], hlc: clock.tick() },
    signDigest,
  );
  mem.writeSync(underPrefix(WRITER_PREFIX, [{ type: 'put', key: ANN_KEY, value: encodeAnnouncement(ann) }]));

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
