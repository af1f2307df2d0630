/**
 * The light client's live updates (docs/design.md sync flow steps 3–4): verified gossip deltas go
 * into a `DeltaDag` mirrored in the pending store; once the state stands at a signed root they
 * are applied in causal order, each checked against its `stateRoot` (apply-loop.ts, with the
 * journal of journal.ts and the cache warm-up of warm-up.ts); gaps are filled over `/delta`
 * from the peer that sent the delta (gap-filler.ts); what cannot be filled, what waits too long
 * and a root that does not match end in a catch-up by change proof, run by the host.
 *
 * This class is the driver of the follow policy (src/sync/follow/policy.ts), which decides
 * when to apply, to fill a gap and to catch up: it takes gossip and announcements in, feeds the
 * policy events, and carries out its actions with the apply loop, the gap filler, timers and
 * the host's callbacks.
 *
 * Modes: `syncing` (a state sync runs: deltas are held, never applied, no gap filling), `live`
 * (applying), `catching-up` (the host runs a change-proof sync to the newest announcement).
 * The host moves it: `goLive(position)` when the state stands at a root (after a sync, or at
 * once after a reload whose stored position holds), `leave()` before it starts a sync.
 *
 * One file: this is the driver of the follow policy, and every handler feeds the same policy
 * and carries out its actions with the same timers and parts; those parts have files of their
 * own (apply-loop.ts, journal.ts, warm-up.ts, gap-filler.ts, held-deltas.ts).
 */
import type { DeltaDag } from '../../core/dag.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import type { KVStore } from '../../core/store.ts';
import { classifyAnnouncement, FollowPolicy, type AnnouncementFacts, type FollowAction, type FollowEvent } from '../../sync/follow/policy.ts';
import type { DeltaSource } from '../../sync/gap-fill.ts';
import type { InclusiveRange } from '../../sync/state/ranges.ts';
import { ApplyLoop } from './apply-loop.ts';
import { GapFiller } from './gap-filler.ts';
import { HeldDeltas } from './held-deltas.ts';
import type { PendingDeltaStore } from './pending-store.ts';
import type { LivePosition } from './position.ts';
import { liveTuning, type CatchUpReason, type LiveEvent, type LiveMode, type LiveStateEvent, type LiveTuning } from './types.ts';
import type { DeltaVerifier } from './verify.ts';

export interface FollowerDeps {
  store: KVStore;
  pending: PendingDeltaStore;
  verifier: DeltaVerifier;
  writerPublicKey: Uint8Array;
  /** Partial sync: inclusive ranges; undefined: everything. */
  ranges: readonly InclusiveRange[] | undefined;
  tuning?: LiveTuning;
  /** Peers to fill gaps from, `hint` (the peer that sent the delta) first. */
  sources(hint: string | undefined): { id: string; source: DeltaSource }[];
  /** Asks the host to catch up by change proof to the newest announcement (it calls `leave` first). */
  catchUp(reason: CatchUpReason): void;
  /** A peer answered a gap fill with forged or unrequested deltas. */
  penalise?(peer: string, offences: number): void;
  /**
   * A peer relayed a delta on a chain given up on (`reason` says why). It may be honest (a relay
   * of a writer-signed delta of an orphaned branch): the host reports it, rate-limited.
   */
  blame?(peer: string, reason: string): void;
  /** The announcement `seq` of a root, when known. */
  seqOf(root: Uint8Array): number | undefined;
  emit(event: LiveEvent): void;
  /**
   * The store holds the state at `root` (a commit or a checkpoint of the journal is durable):
   * what readers of the store itself (other tabs) may be told of.
   */
  stored?(root: Uint8Array): void;
  /** A store write failed (e.g. quota): the follower stops applying. */
  fail(error: unknown): void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => () => void;
}

/** The wait after a failed gap fill before the next; it doubles per failure up to `GAP_RETRY_MAX_MS`. */
const GAP_RETRY_MS = 1000;
const GAP_RETRY_MAX_MS = 10_000;

export class LiveFollower {
  readonly #deps: FollowerDeps;
  readonly #tuning: Required<LiveTuning>;
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => () => void;
  readonly #policy: FollowPolicy;
  readonly #apply: ApplyLoop;
  readonly #gaps: GapFiller;
  readonly #held: HeldDeltas;
  #store: KVStore;
  #pending: PendingDeltaStore;
  /** The apply loop, while it runs. */
  #applying: Promise<void> | undefined;
  /** Gap fills, while one runs. */
  #filling: Promise<void> | undefined;
  #graceTimer: (() => void) | undefined;

  constructor(deps: FollowerDeps) {
    this.#deps = deps;
    this.#tuning = liveTuning(deps.tuning);
    this.#now = deps.now ?? Date.now;
    this.#setTimer =
      deps.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      });
    this.#store = deps.store;
    this.#pending = deps.pending;
    this.#held = new HeldDeltas({
      tuning: this.#tuning,
      pending: deps.pending,
      fail: (err) => deps.fail(err),
      emit: (detail) => deps.emit({ type: 'pending', detail }),
      now: () => this.#now(),
      setTimer: (fn, ms) => this.#setTimer(fn, ms),
      check: () => void this.checkExpired(),
    });
    this.#policy = new FollowPolicy({ graceMs: this.#tuning.gossipGraceMs, retryMs: GAP_RETRY_MS, maxRetryMs: GAP_RETRY_MAX_MS });
    const live = (): boolean => this.#policy.mode === 'live' && !this.#policy.closed;
    this.#apply = new ApplyLoop({
      dag: () => this.#held.dag,
      store: () => this.#store,
      buffer: () => this.#held.buffer,
      tuning: this.#tuning,
      ranges: deps.ranges,
      seqOf: (root) => deps.seqOf(root),
      now: () => this.#now(),
      live,
      update: (detail) => deps.emit({ type: 'update', detail }),
      changed: () => this.#emitLive(undefined),
      stored: (root) => deps.stored?.(root),
      pendingChanged: () => this.#held.changed(),
      discard: (ids) => {
        this.#held.drop(ids, 'discarded');
        this.#held.changed();
      },
      rootMismatch: () => this.#step({ type: 'root-mismatch' }),
    });
    this.#gaps = new GapFiller({
      dag: () => this.#held.dag,
      tuning: this.#tuning,
      writerPublicKey: deps.writerPublicKey,
      sources: (hint) => deps.sources(hint),
      now: () => this.#now(),
      live,
      hold: (d, from) => this.#hold(d, from),
      dropAbandoned: (ids) => void this.#held.drop(ids, 'abandoned'),
      pendingChanged: () => this.#held.changed(),
      emit: (detail) => deps.emit({ type: 'gapFill', detail }),
      penalise: deps.penalise && ((peer, offences) => deps.penalise!(peer, offences)),
      blame: deps.blame && ((peer, reason) => deps.blame!(peer, reason)),
    });
  }

  get mode(): LiveMode {
    return this.#policy.mode;
  }

  /** Where the local state stands, once known. */
  get position(): LivePosition | undefined {
    return this.#apply.position;
  }

  /** The local trie's root (a partial sync's own root), once live. */
  get localRoot(): Uint8Array | undefined {
    return this.#apply.localRoot;
  }

  /**
   * A key's value in the applied state (the journal's verified groups included), or null when
   * the follower holds no state (not live: read the store).
   */
  async read(key: Uint8Array): Promise<Uint8Array | undefined | null> {
    if (this.#policy.mode !== 'live') return null;
    return this.#apply.read(key);
  }

  /** Resolves once the store itself holds every applied delta (a checkpoint of the journal is durable). */
  async stored(): Promise<void> {
    // a journal exists only while the apply loop runs (the loop checkpoints it before it ends)
    while (this.#apply.journaling && this.#applying) await this.#applying;
    await this.#apply.checkpointWritten;
  }

  get pendingCount(): number {
    return this.#held.dag.pendingCount;
  }

  get dag(): DeltaDag {
    return this.#held.dag;
  }

  /**
   * Loads the held deltas the pending store kept (a reload), verifying each again. They are
   * applied once the state stands at a root (`goLive`).
   */
  restore(): Promise<number> {
    return this.#held.restore(this.#pending, this.#deps.verifier);
  }

  /** A gossip delta (its wire bytes after the type byte); decoded and verified here. */
  async offerDelta(bytes: Uint8Array, from?: string): Promise<void> {
    if (this.#policy.closed) return;
    this.#held.count('received');
    let d: VerifiedDelta;
    try {
      d = await this.#deps.verifier.verifyBytes(bytes);
    } catch {
      this.#held.count('rejected');
      this.#held.changed();
      return;
    }
    if (this.abandoned(d)) return;
    this.#hold(d, from, bytes);
  }

  /** A gossip delta the gossip validator already decoded and verified (`bytes`: its wire bytes). */
  offerVerified(d: VerifiedDelta, bytes: Uint8Array, from?: string): void {
    if (this.#policy.closed) return;
    this.#held.count('received');
    if (this.abandoned(d)) return;
    this.#hold(d, from, bytes);
  }

  /** Whether the delta is already held or applied (gossip validation: a duplicate). */
  knows(id: Uint8Array): boolean {
    return this.#held.dag.knows(id);
  }

  /**
   * Whether a verified delta hangs on a chain given up on (missing-chains.ts): then it is
   * remembered with the chain, counted, and must be dropped (gossip validation: ignored).
   */
  abandoned(d: VerifiedDelta): boolean {
    if (!this.#gaps.chains.hangs(d)) return false;
    this.#held.count('abandoned');
    this.#held.changed();
    return true;
  }

  #hold(d: VerifiedDelta, from: string | undefined, bytes?: Uint8Array): void {
    const res = this.#held.add(d, this.#now(), bytes);
    if (res.status === 'ready' || res.status === 'pending') this.#gaps.arrived(d.id);
    if (res.status === 'ready') this.#step({ type: 'ready' });
    else if (res.status === 'pending' && res.missing.length > 0) this.#step({ type: 'missing', from, now: this.#now() });
    this.#held.changed();
  }

  /**
   * A newer signed announcement. Its heads should arrive by gossip; those still unknown after
   * the grace period are fetched like missing parents. An announcement whose heads are applied
   * but whose root is not ours says the state changed outside the DAG (a bulk load): catch up.
   */
  offerAnnouncement(ann: AnnouncementFacts): void {
    const pos = this.#apply.position;
    if (this.#policy.closed || this.#policy.mode !== 'live' || !pos) return;
    const dag = this.#held.dag;
    const found = classifyAnnouncement(ann, pos, dag);
    if (found === 'stale') return;
    if (found === 'ours') {
      // the announcement of the state we stand at (deltas usually arrive before theirs): its seq
      this.#apply.setSeq(ann.seq);
      this.#emitLive(undefined);
      return;
    }
    // the writer signed these heads for this database: a chain remembered as given up on that
    // holds one was this database's own history after all
    if (ann.heads.some((h) => this.#gaps.chains.has(h))) this.#gaps.chains.clear();
    if (found === 'state-changed') this.#step({ type: 'state-changed' });
    else if (found === 'heads-unknown') {
      this.#gaps.want(ann.heads.filter((h) => !dag.knows(h)));
      this.#step({ type: 'missing', from: undefined, now: this.#now() });
    }
  }

  /**
   * The state stands at `position` (a sync reached its target, or a reload found its stored
   * position valid): held deltas it covers are dropped, so are those held too long (they never
   * wait forever), and the rest are applied as they become ready.
   */
  async goLive(position: LivePosition, reason: 'synced' | 'restored'): Promise<void> {
    if (this.#policy.closed) return;
    await this.#applying;
    const moved = await this.#apply.open(position);
    if (moved || this.#policy.mode !== 'live') this.#held.resetApplied({ heads: position.heads, logSize: position.logSize });
    this.#gaps.atPosition(moved, position.logSize);
    this.#held.drop(this.#held.waitedTooLong().map((d) => d.id), 'expired');
    this.#held.changed();
    this.#held.armExpiry();
    this.#step({ type: 'at-root', reason, now: this.#now() });
  }

  /** Stops applying before the host runs a sync; resolves once no commit is in flight. */
  async leave(mode: 'syncing' | 'catching-up', reason?: CatchUpReason): Promise<void> {
    this.#step({ type: 'leave', mode, reason });
    await this.#applying;
  }

  /** The host forgot the local state (`clear()`): everything held goes too. */
  async reset(store: KVStore, pending: PendingDeltaStore): Promise<void> {
    await this.#applying;
    await this.#filling;
    await this.#held.reset(pending);
    this.#store = store;
    this.#pending = pending;
    this.#gaps.reset();
    this.#apply.reset();
    this.#step({ type: 'reset' });
    this.#held.changed();
  }

  async close(): Promise<void> {
    this.#step({ type: 'close' });
    this.#held.close();
    this.#graceTimer?.();
    await this.#applying;
    await this.#held.flush();
  }

  /** Writes buffered pending-store changes now (tests; before a planned reload). */
  flush(): Promise<void> {
    return this.#held.flush();
  }

  /** Resolves once the apply loop and gap fill in flight (if any) are done. */
  async idle(): Promise<void> {
    while (this.#applying || this.#filling) {
      await this.#applying;
      await this.#filling;
    }
  }

  // ---- the policy's actions ---------------------------------------------------------------

  #step(event: FollowEvent): void {
    for (const a of this.#policy.step(event)) this.#act(a);
  }

  #act(a: FollowAction): void {
    switch (a.type) {
      case 'mode':
        this.#emitLive(a.reason);
        return;
      case 'apply':
        this.#startApply();
        return;
      case 'fill':
        this.#startFill(a.hint);
        return;
      case 'timer':
        if (a.timer === 'grace') {
          this.#graceTimer = this.#setTimer(() => {
            this.#graceTimer = undefined;
            this.#step({ type: 'timer', timer: 'grace', hint: undefined, now: this.#now() });
          }, a.ms);
        } else {
          this.#setTimer(() => this.#step({ type: 'timer', timer: 'retry', hint: a.hint, now: this.#now() }), a.ms);
        }
        return;
      case 'catch-up':
        this.#deps.catchUp(a.reason);
        return;
    }
  }

  #startApply(): void {
    const run: Promise<void> = this.#apply
      .run()
      .then(
        () => this.#step({ type: 'apply-ended' }),
        (err: unknown) => {
          this.#step({ type: 'apply-ended', failed: true });
          this.#deps.fail(err);
        },
      )
      .finally(() => {
        if (this.#applying === run) this.#applying = undefined;
      });
    this.#applying = run;
  }

  /** Runs gap fills for as long as the policy asks for another. */
  #startFill(hint: string | undefined): void {
    const run: Promise<void> = (async () => {
      let next: { hint: string | undefined } | undefined = { hint };
      while (next) {
        const outcome = await this.#gaps.fill(next.hint);
        next = undefined;
        for (const a of this.#policy.step({ type: 'fill-ended', ...outcome })) {
          if (a.type === 'fill') next = { hint: a.hint };
          else this.#act(a);
        }
      }
    })().finally(() => {
      if (this.#filling === run) this.#filling = undefined;
    });
    this.#filling = run;
  }

  // ---- expiry -------------------------------------------------------------------------------

  /** Held deltas older than `pendingTimeoutMs` make the follower catch up (then they are dropped). */
  checkExpired(): boolean {
    if (this.#policy.mode !== 'live' || this.#policy.closed) return false;
    if (this.#held.waitedTooLong().length === 0) return false;
    this.#step({ type: 'expired' });
    return true;
  }

  // ---- events -------------------------------------------------------------------------------

  #emitLive(reason: LiveStateEvent['reason']): void {
    const p = this.#apply.position;
    const a = this.#apply;
    this.#deps.emit({
      type: 'live',
      detail: { mode: this.#policy.mode, reason, root: p?.root, seq: p?.seq, logSize: p?.logSize ?? 0, applied: a.applied, catchUps: this.#policy.state.catchUps, timings: a.timings, warm: a.warm, unstored: a.unstored },
    });
  }
}
