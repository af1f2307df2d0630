/**
 * The live follower's apply loop: ready deltas are applied to ONE trie view, in causal order,
 * up to `maxBatch` per group; each delta whose parents are exactly the applied heads must
 * reproduce its `stateRoot` on that view (a single writer's chain: every delta). The view is
 * written only when every delta in it matched, together with the live position and the progress
 * records moved to the new root (position.ts), in one atomic store batch: nothing unverified is
 * ever written. On a mismatch the verified prefix is kept, the offender and its held
 * descendants are discarded, and the follower is told (it catches up).
 *
 * Group commit: with nothing queued behind a group, it is written in ONE store transaction
 * (the store appends it to its write log: packed-store.ts), and its `update` events are emitted
 * once that transaction completed. The next group is computed while that write runs.
 *
 * The journal (journal.ts): with more deltas queued behind a group, the group goes into a
 * long-lived view instead and the next group builds on it. Its deltas are already in the
 * pending store (they were held); once that store's buffered writes have completed, their
 * `update` events are emitted. The trie's records, the position and the progress reach the
 * store at a checkpoint: when nothing is ready, every `checkpointEvery` deltas, and before the
 * loop ends (a sync, a catch-up, close); the checkpoint then removes its deltas from the
 * pending store. A reload before it finds the state at the last checkpoint and the journal's
 * deltas in the pending store, and applies them again. Either way a reload or a killed tab
 * finds every delta a subscriber heard of (both stores commit with relaxed durability: an OS
 * crash just after may lose the newest whole commits).
 *
 * While nothing is ready and the journal is written, the loop warms the node cache (warm-up.ts).
 *
 * A partial sync applies only the actions inside its ranges and cannot recompute the writer's
 * root; it relies on the writer's signature over the actions (and `stateRoot` names the root
 * its ranges now stand at).
 */
import { equalBytes, toHex } from '../../core/bytes.ts';
import type { DeltaDag } from '../../core/dag.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import type { KVStore } from '../../core/store.ts';
import { MerkleTrie, type TrieView } from '../../core/trie.ts';
import type { KeyChange } from '../../core/types.ts';
import { loadProgress, type StoredProgress } from '../../sync/state/stored-progress.ts';
import type { InclusiveRange } from '../../sync/state/ranges.ts';
import { actionsInScope, headsAfter, heldDescendants, inRanges, isCausalPast } from './causal.ts';
import { Journal } from './journal.ts';
import { nextTurn } from './next-turn.ts';
import type { PendingWriteBuffer } from './pending-store.ts';
import { advanceProgress, positionOps, type LivePosition } from './position.ts';
import type { ApplyTimings, DeltaUpdate, LiveTuning } from './types.ts';
import { CacheWarmUp } from './warm-up.ts';

/** What the apply loop needs of the follower that runs it. */
export interface ApplyContext {
  /** The current DAG, store and pending-store buffer (a reset replaces them). */
  dag(): DeltaDag;
  store(): KVStore;
  buffer(): PendingWriteBuffer;
  tuning: Required<LiveTuning>;
  /** Partial sync: inclusive ranges; undefined: everything. */
  ranges: readonly InclusiveRange[] | undefined;
  seqOf(root: Uint8Array): number | undefined;
  now(): number;
  /** Whether to go on applying (live, not closed). */
  live(): boolean;
  update(u: DeltaUpdate): void;
  /** The position, counters or warm-up changed: a `live` event. */
  changed(): void;
  /** The store holds the state at `root` (see `FollowerDeps.stored`). */
  stored(root: Uint8Array): void;
  /** The DAG's held or applied deltas changed: a `pending` event. */
  pendingChanged(): void;
  /** Held deltas discarded after a mismatch (the offender and its descendants). */
  discard(ids: Uint8Array[]): void;
  /** A delta did not reproduce its `stateRoot`: the verified prefix is durable, catch up. */
  rootMismatch(): void;
}

export class ApplyLoop {
  readonly #c: ApplyContext;
  #trie: MerkleTrie | undefined;
  #position: LivePosition | undefined;
  /** The position the store holds (the journal's deltas are beyond it). */
  #storedPosition: LivePosition | undefined;
  #progress: StoredProgress | undefined;
  readonly #journal = new Journal();
  readonly #warmUp = new CacheWarmUp();
  /**
   * The commit in flight (`#applyBatch` stages one and computes the next group meanwhile):
   * resolves once it is durable and its updates were emitted; rejects if the write failed.
   */
  #inflight: Promise<void> | undefined;
  #lastCheckpoint: Promise<void> = Promise.resolve();
  /** See `LiveStateEvent.unstored`. */
  #unstored = 0;
  #applied = 0;
  readonly #timings: ApplyTimings = { commits: 0, deltas: 0, readMs: 0, computeMs: 0, commitMs: 0, checkpoints: 0, checkpointMs: 0, checkpointsStored: 0 };

  constructor(context: ApplyContext) {
    this.#c = context;
  }

  /** Where the applied state stands, once known. */
  get position(): LivePosition | undefined {
    return this.#position;
  }

  /** The local trie's root (a partial sync's own root), once opened. */
  get localRoot(): Uint8Array | undefined {
    return this.#journal.root ?? this.#trie?.root;
  }

  get applied(): number {
    return this.#applied;
  }

  get unstored(): number {
    return this.#unstored;
  }

  get warm(): boolean {
    return this.#warmUp.done;
  }

  get timings(): ApplyTimings {
    return { ...this.#timings };
  }

  /** A journal is open: the store lacks some applied deltas' trie state. */
  get journaling(): boolean {
    return this.#journal.view !== undefined;
  }

  /** Resolves once the last checkpoint's write ended. */
  get checkpointWritten(): Promise<void> {
    return this.#lastCheckpoint;
  }

  /** The announcement of the state it stands at was heard: its `seq`. */
  setSeq(seq: number): void {
    if (this.#position) this.#position.seq = seq;
  }

  /**
   * The state stands at `position`: opens the trie over the store (keeping the warm one for the
   * same root), loads the progress and stores the position. Returns whether it moved.
   */
  async open(position: LivePosition): Promise<boolean> {
    const trie = await MerkleTrie.open(this.#c.store(), { cacheBytes: this.#c.tuning.nodeCacheBytes });
    // the same root is the same trie: keep the old one and its warm node cache (pause, resume)
    if (!this.#trie || !equalBytes(this.#trie.root, trie.root)) {
      this.#trie = trie;
      this.#warmUp.restart();
    }
    this.#progress = await loadProgress(this.#c.store());
    const old = this.#position;
    const changed = !old || !equalBytes(old.root, position.root) || old.logSize !== position.logSize;
    if (changed || old?.seq !== position.seq) await this.#c.store().write(positionOps(position));
    this.#position = { ...position, heads: position.heads.map((h) => h.slice()) };
    this.#storedPosition = this.#position;
    return changed;
  }

  /** Forgets the state (the host cleared the store). */
  reset(): void {
    this.#position = undefined;
    this.#storedPosition = undefined;
    this.#unstored = 0;
    this.#progress = undefined;
    this.#journal.clear();
    this.#trie = undefined;
    this.#warmUp.restart();
  }

  /**
   * A key's value in the applied state (the journal's verified groups included), or null when
   * no trie is open. Not from the journal view itself: between two turns of a group it holds
   * changes not yet checked against their `stateRoot`.
   */
  async read(key: Uint8Array): Promise<Uint8Array | undefined | null> {
    if (!this.#trie) return null;
    const v = this.#journal.read(key);
    if (v !== undefined) return v ?? undefined;
    // the stored state, with the checkpoint being written (staged) if one is
    return this.#trie.view().get(key);
  }

  /** Applies ready deltas while live; checkpoints the journal before it returns. */
  async run(): Promise<void> {
    const dag = this.#c.dag;
    try {
      while (this.#c.live()) {
        const ready = dag().ready();
        if (ready.length === 0) {
          await this.#settle();
          if (dag().ready().length) continue;
          if (this.journaling) {
            await this.#checkpoint();
            continue;
          }
          if (this.#warmUp.done) return;
          if (await this.#warmUp.step(this.#trie!)) this.#c.changed();
          continue;
        }
        const batch = ready.slice(0, this.#c.tuning.maxBatch);
        const ok = await this.#applyBatch(batch, ready);
        if (!ok) return;
        if (this.#journal.size >= this.#c.tuning.checkpointEvery) await this.#checkpoint();
      }
    } finally {
      // leaving (a sync, a catch-up, close): the store gets the journal's state first
      await this.#checkpoint();
      await this.#settle();
    }
  }

  async #settle(): Promise<void> {
    const p = this.#inflight;
    if (!p) return;
    try {
      await p;
    } finally {
      if (this.#inflight === p) this.#inflight = undefined;
    }
  }

  /**
   * Applies `batch` (causally ordered, ready); false after a root mismatch. With more ready
   * deltas behind it (or a journal open), it goes into the journal view; else, with no journal
   * open, it is committed to the store at once.
   */
  async #applyBatch(batch: VerifiedDelta[], ready: VerifiedDelta[]): Promise<boolean> {
    const c = this.#c;
    const trie = this.#trie!;
    const full = c.ranges === undefined;
    const heads = new Set(c.dag().heads().map(toHex));
    const journal = c.tuning.checkpointEvery > 0 && (this.journaling || ready.length > batch.length);
    const t0 = performance.now();
    let view = this.#journal.view ?? trie.view();
    // one parallel read of every path the batch touches, not one wave per delta (IndexedDB reads
    // are asynchronous: on a large state most nodes are not cached)
    const scoped = batch.map((d) => actionsInScope(d.actions, c.ranges));
    await view.prefetchChanges(scoped.flat());
    const t1 = performance.now();
    let bad: { index: number; delta: VerifiedDelta } | undefined;
    for (let i = 0; i < batch.length; i++) {
      const d = batch[i];
      const check = isCausalPast(d.parents, heads);
      // a turn of the event loop now and then: the previous group's IndexedDB transaction only
      // advances when this thread handles its events (a request's result, then the commit;
      // measured: without turns it waited for this whole group, ~30 ms idle per group of 256),
      // and the page's calls are answered meanwhile
      if ((i & 15) === 15) await nextTurn();
      await view.apply(scoped[i], { prefetched: true });
      if (check && full && !equalBytes(view.root, d.stateRoot)) {
        bad = { index: i, delta: d };
        break;
      }
      for (const p of d.parents) heads.delete(toHex(p));
      heads.add(toHex(d.id));
    }
    let good = batch;
    if (bad) {
      good = batch.slice(0, bad.index);
      // the view holds the offender's changes: rebuild the verified state (the journal's
      // deltas, then this batch's verified prefix) on the stored one
      view = trie.view();
      for (const changes of this.#journal.changes) await view.apply(changes);
      for (let i = 0; i < good.length; i++) await view.apply(scoped[i]);
      this.#journal.replaceView(view);
    }
    if (good.length > 0) await this.#commit(view, good, scoped.slice(0, good.length), journal, t0, t1);
    if (bad) {
      await this.#settle();
      c.discard(heldDescendants(ready, bad.delta.id));
      // the verified state is made durable before the catch-up starts from it
      await this.#checkpoint();
      await this.#settle();
      c.rootMismatch();
      return false;
    }
    c.pendingChanged();
    return true;
  }

  /** Stages the verified group `good` (into the journal, or a store commit) and emits its updates once durable. */
  async #commit(view: TrieView, good: VerifiedDelta[], scoped: KeyChange[][], journal: boolean, t0: number, t1: number): Promise<void> {
    const c = this.#c;
    const trie = this.#trie!;
    const last = good[good.length - 1];
    const root = c.ranges === undefined ? view.root : last.stateRoot;
    let logSize = this.#position!.logSize;
    const indexes = new Set(good.map((d) => d.logIndex));
    while (indexes.delete(logSize)) logSize++;
    const position: LivePosition = { root, heads: headsAfter(c.dag().heads(), good), logSize, seq: c.seqOf(root) };
    const t2 = performance.now();
    // the previous group's write ran while this group was computed: it must be durable (and
    // announced) before this one is staged on top of it
    await this.#settle();
    const before = { position: this.#position, progress: this.#progress };
    let durable: Promise<void>;
    if (journal) {
      // the journal: the trie's records wait for a checkpoint; these deltas are durable once
      // the pending store holds them (a reload applies them again on the stored state)
      this.#journal.add(view, good, scoped);
      this.#unstored += good.length;
      durable = c.buffer().written();
    } else {
      const progress = advanceProgress(this.#progress!, root);
      durable = trie.stageView(view, [...progress.ops, ...positionOps(position)]).durable;
      this.#progress = progress.next;
    }
    const t3 = performance.now();
    this.#timings.commits++;
    this.#timings.deltas += good.length;
    this.#timings.readMs += t1 - t0;
    this.#timings.computeMs += t2 - t1;
    this.#timings.commitMs += t3 - t2;
    this.#position = position;
    // applied for the DAG at once: the next group builds on this one while it is written
    for (const d of good) c.dag().markApplied(d.id);
    this.#inflight = durable.then(
      () => {
        const appliedAtMs = c.now();
        for (const d of good) {
          // a journaled delta stays in the pending store until a checkpoint covers it
          if (!journal) c.buffer().delete(d.id);
          this.#applied++;
          c.update({
            deltaId: d.id,
            root: d === last ? root : d.stateRoot,
            seq: c.seqOf(d.stateRoot),
            logIndex: d.logIndex,
            keys: d.actions.filter((a) => inRanges(a.key, c.ranges)).map((a) => a.key),
            hlcWallMs: d.hlc.wallMs,
            appliedAtMs,
          });
        }
        c.changed();
        if (!journal) c.stored(root);
      },
      (err: unknown) => {
        // the trie went back to its state before the batch (`stageView`), or the pending
        // store lost deltas of the journal: back to the stored position
        if (journal) this.#journal.clear();
        else this.#storedPosition = before.position;
        this.#unstored = 0;
        this.#position = this.#storedPosition;
        this.#progress = before.progress;
        throw err;
      },
    );
    // observed by `#settle`; until then a failed write is not an unhandled rejection
    this.#inflight.catch(() => undefined);
    if (!journal) this.#storedPosition = position;
  }

  /**
   * Writes the journal view to the store (trie records, position and progress in one batch)
   * and then removes its deltas from the pending store. Runs when the loop has nothing ready,
   * when the journal holds `checkpointEvery` deltas, and before the loop ends.
   */
  async #checkpoint(): Promise<void> {
    const open = this.#journal.view;
    if (!open) return;
    // the journal's own callbacks first (its pending-store write)
    await this.#settle();
    if (this.#journal.view !== open) return;
    const { view, deltas: covered } = this.#journal.take()!;
    const c = this.#c;
    const position = this.#position!;
    const progress = advanceProgress(this.#progress!, position.root);
    const before = { position: this.#storedPosition, progress: this.#progress };
    const t0 = performance.now();
    const { durable } = this.#trie!.stageView(view, [...progress.ops, ...positionOps(position)]);
    this.#lastCheckpoint = durable.catch(() => undefined);
    this.#timings.checkpoints++;
    this.#timings.checkpointMs += performance.now() - t0;
    this.#progress = progress.next;
    this.#storedPosition = position;
    this.#inflight = durable.then(
      () => {
        for (const d of covered) c.buffer().delete(d.id);
        this.#timings.checkpointsStored++;
        this.#unstored -= covered.length;
        c.stored(position.root);
        c.changed();
      },
      (err: unknown) => {
        this.#unstored = 0;
        this.#position = before.position;
        this.#storedPosition = before.position;
        this.#progress = before.progress;
        throw err;
      },
    );
    this.#inflight.catch(() => undefined);
  }
}
