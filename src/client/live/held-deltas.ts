/**
 * The live follower's intake: verified deltas held in a `DeltaDag` (bounded by `maxPending`
 * and `maxPendingBytes`, the newest evicted first) and mirrored in the pending store, so that a
 * reload finds them (pending-store.ts); with the counts of what happened to gossip deltas,
 * reported as coalesced `pending` events. Held deltas never wait forever: while any are held,
 * a check every quarter of `pendingTimeoutMs` looks for those that waited longer.
 */
import { toHex } from '../../core/bytes.ts';
import { DeltaDag, type AddResult, type AppliedCover } from '../../core/dag.ts';
import { encodeDelta, type VerifiedDelta } from '../../core/delta.ts';
import { PendingWriteBuffer, type PendingDeltaStore } from './pending-store.ts';
import type { LiveTuning, PendingStateEvent } from './types.ts';
import type { DeltaVerifier } from './verify.ts';

/** The counters of `PendingStateEvent`. */
export type IntakeCounter = keyof Omit<PendingStateEvent, 'count' | 'bytes'>;

export interface HeldDeltasOptions {
  tuning: Required<LiveTuning>;
  pending: PendingDeltaStore;
  /** A pending-store write failed. */
  fail(error: unknown): void;
  emit(e: PendingStateEvent): void;
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
  /** The expiry check: some held deltas may have waited too long (`waitedTooLong`). */
  check(): void;
}

export class HeldDeltas {
  readonly #o: HeldDeltasOptions;
  #dag: DeltaDag;
  #buffer: PendingWriteBuffer;
  readonly #counts: Record<IntakeCounter, number> = { received: 0, duplicates: 0, rejected: 0, evicted: 0, expired: 0, discarded: 0, restored: 0, abandoned: 0 };
  #eventScheduled = false;
  #expiryTimer: (() => void) | undefined;
  #closed = false;

  constructor(o: HeldDeltasOptions) {
    this.#o = o;
    this.#dag = this.#newDag();
    this.#buffer = new PendingWriteBuffer(o.pending, (err) => o.fail(err));
  }

  #newDag(): DeltaDag {
    return new DeltaDag({ maxPending: this.#o.tuning.maxPending, maxPendingBytes: this.#o.tuning.maxPendingBytes });
  }

  get dag(): DeltaDag {
    return this.#dag;
  }

  /** The pending store's write buffer (the apply loop deletes applied deltas through it). */
  get buffer(): PendingWriteBuffer {
    return this.#buffer;
  }

  /** Counts `n` deltas under `counter` (the event follows with the next `changed`). */
  count(counter: IntakeCounter, n = 1): void {
    this.#counts[counter] += n;
  }

  /** Adds a verified delta (`bytes`: its wire bytes, when known) and keeps it in the pending store if held. */
  add(d: VerifiedDelta, now: number, bytes?: Uint8Array): AddResult {
    const res = this.#dag.add(d, now);
    if (res.status === 'duplicate' || res.status === 'applied') this.#counts.duplicates++;
    if (res.status === 'ready' || res.status === 'pending') this.#buffer.put({ id: d.id, delta: bytes ?? encodeDelta(d), receivedAt: now });
    this.#afterAdd(res);
    return res;
  }

  #afterAdd(res: AddResult): void {
    for (const id of res.evicted) this.#buffer.delete(id);
    this.#counts.evicted += res.evicted.length;
    this.armExpiry();
  }

  /**
   * Held deltas older than `pendingTimeoutMs` that still wait for a parent. Ready ones are only
   * queued behind the apply loop (a burst after a pause or a sync): they are not stuck.
   */
  waitedTooLong(): VerifiedDelta[] {
    const old = this.#dag.expired(this.#o.now(), this.#o.tuning.pendingTimeoutMs);
    if (old.length === 0) return old;
    const ready = new Set(this.#dag.ready().map((d) => toHex(d.id)));
    return old.filter((d) => !ready.has(toHex(d.id)));
  }

  /** Sets the expiry check's timer while deltas are held (one at a time). */
  armExpiry(): void {
    if (this.#expiryTimer || this.#dag.pendingCount === 0 || this.#closed) return;
    this.#expiryTimer = this.#o.setTimer(() => {
      this.#expiryTimer = undefined;
      this.#o.check();
      this.armExpiry();
    }, Math.max(250, this.#o.tuning.pendingTimeoutMs / 4));
  }

  /**
   * Loads the held deltas the pending store kept (a reload), verifying each again; those that
   * fail are deleted from it. Returns how many are held.
   */
  async restore(pending: PendingDeltaStore, verifier: DeltaVerifier): Promise<number> {
    const records = await pending.load();
    let restored = 0;
    const bad: Uint8Array[] = [];
    for (const r of records) {
      try {
        const d = await verifier.verifyBytes(r.delta);
        const res = this.#dag.add(d, r.receivedAt);
        this.#afterAdd(res);
        if (res.status === 'ready' || res.status === 'pending') restored++;
      } catch {
        bad.push(r.id);
      }
    }
    for (const id of bad) this.#buffer.delete(id);
    this.#counts.restored += restored;
    this.changed();
    return restored;
  }

  /** Drops held deltas from the DAG and the pending store, counted as `counter`; how many went. */
  drop(ids: Uint8Array[], counter: IntakeCounter): number {
    const dropped = this.#dag.drop(ids);
    for (const id of dropped) this.#buffer.delete(id);
    this.#counts[counter] += dropped.length;
    return dropped.length;
  }

  /** The state stands at `cover`: held deltas it covers are dropped. */
  resetApplied(cover: AppliedCover): void {
    for (const id of this.#dag.resetApplied(cover)) this.#buffer.delete(id);
  }

  /** Forgets everything held, and goes on with another pending store (the host cleared the state). */
  async reset(pending: PendingDeltaStore): Promise<void> {
    await this.#buffer.flush();
    this.#buffer = new PendingWriteBuffer(pending, (err) => this.#o.fail(err));
    this.#dag = this.#newDag();
  }

  /** Stops the expiry check. */
  close(): void {
    this.#closed = true;
    this.#expiryTimer?.();
  }

  /** Writes buffered pending-store changes now. */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  /** A `pending` event at the end of this turn (one per turn, however many changes). */
  changed(): void {
    if (this.#eventScheduled) return;
    this.#eventScheduled = true;
    queueMicrotask(() => {
      this.#eventScheduled = false;
      this.#o.emit({ count: this.#dag.pendingCount, bytes: this.#dag.pendingBytes, ...this.#counts });
    });
  }
}
