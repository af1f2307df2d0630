/**
 * A replica's history from a checkpoint to the head it synced to (docs/sync.md#checkpoints).
 * A replica's first sync goes to the announced checkpoint root first, then on to the head by
 * change proofs, as a fresh light client's does. The state sync writes the trie's store
 * directly, so no revision record comes of it; to serve range proofs at the checkpoint once at
 * the head, the node needs the value changes from the checkpoint to the head, which is one
 * revision record of `MerkleDatabase` (core/database.ts: a view at an older root is the head
 * with the later changes reverted).
 *
 * `ChangeRecorder` is the sync's store: from `start` on (the sync stands at the checkpoint,
 * every write durable) it notes each value a write changes, its value at the start and its
 * newest. `checkpointHistoryOps` turns that into the history records: the checkpoint as the
 * window's base, the head as the one commit after it. The database checks them when it opens a
 * view at the checkpoint (`viewAt` rebuilds the checkpoint root or throws).
 */
import { encodeRevision, type Revision, type ValueChange } from '../core/database.ts';
import { compareBytes, equalBytes, toHex } from '../core/bytes.ts';
import { valueKey } from '../core/node-record.ts';
import { getMany, readRange, type BatchOp, type IterateOptions, type KVStore, type RangeOptions } from '../core/store.ts';
import { u64be } from './node-store.ts';

/** The first byte of a value record in the trie's store (node-record.ts: 'v' ++ key). */
const VALUE_TAG = valueKey(new Uint8Array(0))[0];
/** The first byte of a revision record in the database's store (database.ts: 'h' ++ u64be(seq)). */
const HISTORY_TAG = 0x68;

/**
 * Most keys a recording holds: past it the recording is given up (a catch-up answered by range
 * proofs at the head writes every key of its ranges), and the replica serves from the head on.
 */
export const MAX_RECORDED_KEYS = 262_144;

/** What a recording saw: the root it started at and the value changes since. */
export interface RecordedChanges {
  /** The root the store held at `start`. */
  from: Uint8Array;
  /** Keys whose value differs from the one at `from`, sorted by key. */
  changes: ValueChange[];
}

/**
 * A `KVStore` over the sync's store that records value changes once started. Writes go
 * through one at a time: a key's first write reads its value before that write lands.
 */
export class ChangeRecorder implements KVStore {
  readonly #inner: KVStore;
  readonly #maxKeys: number;
  #from: Uint8Array | undefined;
  /** By hex key: the value at `start` and the newest one (undefined: absent). */
  #seen = new Map<string, ValueChange>();
  #overflow = false;
  #writes: Promise<void> = Promise.resolve();

  /** `maxKeys`: most keys recorded before giving up (default `MAX_RECORDED_KEYS`). */
  constructor(inner: KVStore, { maxKeys = MAX_RECORDED_KEYS }: { maxKeys?: number } = {}) {
    this.#inner = inner;
    this.#maxKeys = maxKeys;
  }

  /**
   * Records from now on, against `root` (what the store holds: call only with no write in
   * flight, as at a sync's `at-target` progress). Forgets an earlier recording.
   */
  start(root: Uint8Array): void {
    this.#from = root.slice();
    this.#seen = new Map();
    this.#overflow = false;
  }

  /** Stops recording and forgets it. */
  stop(): void {
    this.#from = undefined;
    this.#seen = new Map();
    this.#overflow = false;
  }

  /** The changes since `start`, or undefined when not started or past `MAX_RECORDED_KEYS`. */
  recorded(): RecordedChanges | undefined {
    if (this.#from === undefined || this.#overflow) return undefined;
    const changes = [...this.#seen.values()].filter((c) => !sameValue(c.before, c.after)).sort((a, b) => compareBytes(a.key, b.key));
    return { from: this.#from.slice(), changes };
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#inner.get(key);
  }

  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return getMany(this.#inner, keys);
  }

  iterate(options: IterateOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.#inner.iterate(options);
  }

  range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    return readRange(this.#inner, options);
  }

  write(ops: BatchOp[]): Promise<void> {
    const done = this.#writes.then(() => this.#write(ops));
    this.#writes = done.catch(() => {});
    return done;
  }

  async #write(ops: BatchOp[]): Promise<void> {
    if (this.#from === undefined || this.#overflow) return this.#inner.write(ops);
    const seen = this.#seen;
    const fresh: ValueChange[] = [];
    for (const op of ops) {
      if (op.key.length === 0 || op.key[0] !== VALUE_TAG) continue;
      const key = op.key.subarray(1);
      const id = toHex(key);
      let c = seen.get(id);
      if (c === undefined) {
        c = { key: key.slice(), before: undefined, after: undefined };
        seen.set(id, c);
        fresh.push(c);
      }
      c.after = op.type === 'put' ? op.value.slice() : undefined;
    }
    if (seen.size > this.#maxKeys) {
      this.#overflow = true;
      this.#seen = new Map();
      return this.#inner.write(ops);
    }
    if (fresh.length > 0) {
      const before = await getMany(this.#inner, fresh.map((c) => valueKey(c.key)));
      fresh.forEach((c, i) => (c.before = before[i]));
    }
    return this.#inner.write(ops);
  }
}

function sameValue(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && equalBytes(a, b);
}

/**
 * The database's history records for a state at `head` reached from `recorded.from`: the
 * checkpoint as revision 0 (the window's base), the head as revision 1 with the changes.
 * Write them with every older revision record deleted.
 */
export function checkpointHistoryOps(head: Uint8Array, recorded: RecordedChanges): BatchOp[] {
  return [revisionOp({ seq: 0, root: recorded.from, changes: [] }), revisionOp({ seq: 1, root: head, changes: recorded.changes })];
}

/**
 * The history record of one more revision, `seq` (the database's `revision` + 1), at `head`
 * with the changes from the database's root (`recorded.from`): a catch-up then extends the
 * window instead of starting it afresh, so the checkpoints kept stay servable.
 */
export function nextRevisionOp(seq: number, head: Uint8Array, recorded: RecordedChanges): BatchOp {
  return revisionOp({ seq, root: head, changes: recorded.changes });
}

function revisionOp(r: Revision): BatchOp {
  return { type: 'put', key: Uint8Array.of(HISTORY_TAG, ...u64be(r.seq)), value: encodeRevision(r) };
}
