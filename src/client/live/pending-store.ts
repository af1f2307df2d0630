/**
 * Where pending deltas persist (docs/design.md "Trust model": deltas whose parents are missing wait in
 * a separate pending store and are never read as state; bounded, they survive a reload). The
 * browser's is the IndexedDB `pending` object store (idb/pending.ts); tests and Node use
 * `MemoryPendingDeltas`.
 *
 * The bounds are the DAG's (`DagLimits`): the follower deletes here what the DAG evicts, so the
 * store never holds more than the DAG does. Records are the delta's wire bytes exactly as
 * received; on load they are decoded and verified again like any other input.
 */
import { toHex } from '../../core/bytes.ts';

export interface StoredPendingDelta {
  id: Uint8Array;
  /** Wire bytes (delta.ts `encodeDelta`). */
  delta: Uint8Array;
  /** Milliseconds since the epoch when first received (its expiry clock survives a reload). */
  receivedAt: number;
}

export interface PendingDeltaStore {
  /** Every stored record, oldest first. */
  load(): Promise<StoredPendingDelta[]>;
  /** Puts and deletes in one atomic batch. */
  write(puts: StoredPendingDelta[], deletes: Uint8Array[]): Promise<void>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

/** An in-memory pending store (tests, Node). */
export class MemoryPendingDeltas implements PendingDeltaStore {
  readonly records = new Map<string, StoredPendingDelta>();
  writes = 0;

  async load(): Promise<StoredPendingDelta[]> {
    return [...this.records.values()].sort((a, b) => a.receivedAt - b.receivedAt);
  }

  async write(puts: StoredPendingDelta[], deletes: Uint8Array[]): Promise<void> {
    this.writes++;
    for (const p of puts) this.records.set(toHex(p.id), p);
    for (const d of deletes) this.records.delete(toHex(d));
  }

  async clear(): Promise<void> {
    this.records.clear();
  }

  async close(): Promise<void> {}
}

const FLUSH_DELAY_MS = 100;

/**
 * Coalesces writes to a `PendingDeltaStore`: a delta that arrives and is applied before the next
 * flush costs no write at all (the steady state of a live stream); the rest go out in one batch.
 */
export class PendingWriteBuffer {
  readonly #store: PendingDeltaStore;
  readonly #puts = new Map<string, StoredPendingDelta>();
  readonly #deletes = new Map<string, Uint8Array>();
  #flushing: Promise<void> = Promise.resolve();
  #scheduled = false;
  readonly #onError: (err: unknown) => void;

  constructor(store: PendingDeltaStore, onError: (err: unknown) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  put(record: StoredPendingDelta): void {
    const k = toHex(record.id);
    this.#deletes.delete(k);
    this.#puts.set(k, record);
    this.#schedule();
  }

  delete(id: Uint8Array): void {
    const k = toHex(id);
    // never written: nothing to delete
    if (this.#puts.delete(k)) return;
    this.#deletes.set(k, id);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // deltas applied within the window cancel their own puts: in a live stream (apply in a few
    // ms) the pending store is not written at all; a reload loses at most this window, which gap
    // filling or a catch-up recovers
    setTimeout(() => void this.flush(), FLUSH_DELAY_MS);
  }

  /** Writes what is buffered; resolves when everything buffered so far is stored (or failed: `onError`). */
  flush(): Promise<void> {
    return this.#write(false);
  }

  /**
   * As `flush`, but rejects unless everything buffered so far was stored (this write or an
   * earlier one failed): what the live follower's journal waits for before its callbacks.
   */
  written(): Promise<void> {
    return this.#write(true);
  }

  #write(report: boolean): Promise<void> {
    this.#scheduled = false;
    const puts = [...this.#puts.values()];
    const deletes = [...this.#deletes.values()];
    this.#puts.clear();
    this.#deletes.clear();
    const done = this.#flushing.then(async () => {
      if (puts.length > 0 || deletes.length > 0) {
        try {
          await this.#store.write(puts, deletes);
        } catch (err) {
          this.#failed ??= { err };
          this.#onError(err);
        }
      }
      // a write since the last `written()` failed: what it held is not stored
      const failed = this.#failed;
      if (!report || !failed) return;
      this.#failed = undefined;
      throw failed.err;
    });
    this.#flushing = done.catch(() => undefined);
    return done;
  }

  /** A write failed since a `written()` last reported one. */
  #failed: { err: unknown } | undefined = undefined;
}
