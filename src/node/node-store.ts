/**
 * The full node's on-disk layout: one LevelDB, one keyspace per structure, so that a commit
 * (trie + history + delta + log entry + writer state) is one LevelDB batch and lands whole or
 * not at all.
 *
 * | prefix | inside        | what                                                   |
 * |--------|---------------|--------------------------------------------------------|
 * | `s`    |               | the MerkleDatabase's store (database.ts)               |
 * |        | `m` `n` `v`   | trie meta, nodes, values (core/node-record.ts)         |
 * |        | `h`           | revision history window (database.ts)                  |
 * |        | `k`           | retained checkpoint roots (database.ts)                |
 * |        | `L` u64be(i)  | log operation i: the wire-encoded delta (docs/mmr.md)  |
 * |        | `D` id        | delta id → u64be(log index)                            |
 * |        | `W` name      | writer state: `ann` (last signed announcement), `db`   |
 *
 * The node's own records live inside the database's keyspace, under upper-case bytes the trie
 * and history never use, because `MerkleDatabase.commit(changes, extra)` writes `extra` through
 * the database's store: that is what makes the whole commit one batch.
 */
import { MerkleDatabase, type DatabaseOptions } from '../core/database.ts';
import { getMany, readRange, type BatchOp, type IterateOptions, type KVStore, type RangeOptions } from '../core/store.ts';
import { LevelStore } from './level-store.ts';

export const STATE_PREFIX = Uint8Array.of(0x73); // 's'
export const LOG_PREFIX = Uint8Array.of(0x4c); // 'L'
export const DELTA_PREFIX = Uint8Array.of(0x44); // 'D'
export const WRITER_PREFIX = Uint8Array.of(0x57); // 'W'

/** Ops for a sub-keyspace, rewritten to the keyspace that contains it. */
export function underPrefix(prefix: Uint8Array, ops: BatchOp[]): BatchOp[] {
  return ops.map((op) => {
    const key = new Uint8Array(prefix.length + op.key.length);
    key.set(prefix);
    key.set(op.key, prefix.length);
    return op.type === 'put' ? { type: 'put', key, value: op.value } : { type: 'del', key };
  });
}

export function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Math.floor(n / 2 ** 32));
  dv.setUint32(4, n >>> 0);
  return b;
}

export function readU64be(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(0) * 2 ** 32 + dv.getUint32(4);
}

/**
 * A store that reports each completed batch (its op count) to `observer`, when one is set:
 * how the node shows progress through a bulk load, which writes in chunks.
 */
export class ObservedStore implements KVStore {
  private readonly inner: KVStore;
  observer: ((ops: number) => void) | undefined;

  constructor(inner: KVStore) {
    this.inner = inner;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.inner.get(key);
  }

  /** LevelDB's batched read (a trie's prefetch waves and a commit's reads go through here). */
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return getMany(this.inner, keys);
  }

  iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.inner.iterate(options);
  }

  range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    return readRange(this.inner, options);
  }

  async write(ops: BatchOp[]): Promise<void> {
    await this.inner.write(ops);
    this.observer?.(ops.length);
  }
}

export interface NodeStore {
  level: LevelStore;
  /** The database's store: what `MerkleDatabase` reads and commits through. */
  state: ObservedStore;
  db: MerkleDatabase;
  log: KVStore;
  deltas: KVStore;
  writer: KVStore;
  close(): Promise<void>;
}

/**
 * Opens (creating) the node's LevelDB at `path`.
 *
 * @example
 * const store = await openNodeStore(join(dir, 'db'), { historySize: 300 });
 * store.db.root;
 */
export async function openNodeStore(path: string, options: DatabaseOptions = {}): Promise<NodeStore> {
  const level = await LevelStore.open(path);
  try {
    const state = new ObservedStore(level.prefix(STATE_PREFIX));
    // leaves in full: the node serves proofs, and elided leaves would cost a value scan per node
    // read (TrieOptions.elideLeaves)
    const db = await MerkleDatabase.open(state, { elideLeaves: false, ...options, historySize: options.historySize ?? 300 });
    return {
      level,
      state,
      db,
      log: level.prefix(new Uint8Array([...STATE_PREFIX, ...LOG_PREFIX])),
      deltas: level.prefix(new Uint8Array([...STATE_PREFIX, ...DELTA_PREFIX])),
      writer: level.prefix(new Uint8Array([...STATE_PREFIX, ...WRITER_PREFIX])),
      close: () => level.close(),
    };
  } catch (err) {
    await level.close();
    throw err;
  }
}
