/**
 * Live updates inside the engine host (docs/design.md "The sync flow", steps 2–4): when the state
 * sync or the live follower owns the store, and how one hands over to the other.
 *
 * - A state sync runs while there is no valid position (first sync, an interrupted one) or for a
 *   catch-up. When it stands at its target, the sync is stopped and the follower goes live at
 *   that announcement's heads and log size: from then on deltas move the state, not change
 *   proofs, and newer announcements only tell the follower which heads to expect.
 * - Start and resume: a stored position that the stored progress confirms (a reload) goes live
 *   at once, with the pending deltas restored, unless the newest announcement is further ahead
 *   than a gap fill may reach: then a change-proof sync runs first.
 * - Catch-up (asked by the follower: root mismatch, a gap too large, peers lacking deltas,
 *   pending deltas too old, a state change outside the DAG): fresh heads are asked for, then a
 *   change-proof sync to the newest announcement; if none is ahead of the position, the follower
 *   goes live again where it is (dropping what waited too long).
 *
 * Only the syncing tab applies deltas: the store has one writer at a time (the sync lock).
 */
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { equalBytes } from '../../core/bytes.ts';
import type { KVStore } from '../../core/store.ts';
import type { SyncedEvent, WireEvent } from '../events.ts';
import { loadProgress } from '../../sync/state/stored-progress.ts';
import type { RemotePeer } from '../worker/peer-calls.ts';
import type { WorkerConfig } from '../worker/worker-messages.ts';
import { peerDeltaSource } from './delta-source.ts';
import { LiveFollower } from './follower.ts';
import { MemoryPendingDeltas, type PendingDeltaStore } from './pending-store.ts';
import { loadPosition, positionHolds, type LivePosition } from './position.ts';
import { LIVE_DEFAULTS, type CatchUpReason, type LiveMode } from './types.ts';
import { deltaVerifier, type DeltaVerifier } from './verify.ts';
import type { VerifiedDelta } from '../../core/delta.ts';

export interface LiveHostDeps {
  config: WorkerConfig;
  writerPublicKey: Uint8Array;
  openPending?: (name: string) => Promise<PendingDeltaStore>;
  peers(): RemotePeer[];
  /** This tab holds the sync lock, is not paused and not stopped by a fatal error. */
  isSyncer(): boolean;
  /** This tab holds the sync lock (paused or not): only it keeps deltas. */
  holdsLock(): boolean;
  announcement(): VerifiedAnnouncement | undefined;
  announcementOf(root: Uint8Array): VerifiedAnnouncement | undefined;
  seqOf(root: Uint8Array): number | undefined;
  askHeads(): Promise<void>;
  stopSync(): Promise<void>;
  startSync(): void;
  emit(event: WireEvent): void;
  /** The store itself holds the state of every update emitted so far (see `FollowerDeps.stored`). */
  stored?(): void;
  emitError(error: Error, fatal: boolean): void;
  /** A peer relayed something wrong (a delta on a chain given up on): a rate-limited `peer` event. */
  offence?(peer: string, reason: string): void;
  /** A peer answered with forged or unrequested deltas: a `penalised` event (the host builds it). */
  penalised(peer: string, reason: string): void;
  /** The state stands at a signed root: set the latch; `announce`: also emit `synced`. */
  synced(s: SyncedEvent, announce: boolean): void;
}

export interface LiveStatus {
  mode: LiveMode;
  pending: number;
  root: Uint8Array | undefined;
  logSize: number;
}

const DEFAULT_MAX_GAP_FILL = 1000;

/** Whether `ann` describes a state newer than `pos` (or one changed outside the DAG). */
export function announcementAhead(ann: Pick<VerifiedAnnouncement, 'logSize' | 'stateRoot' | 'seq'>, pos: LivePosition): boolean {
  if (ann.logSize !== pos.logSize) return ann.logSize > pos.logSize;
  return !equalBytes(ann.stateRoot, pos.root) && ann.seq > (pos.seq ?? -1);
}

export class LiveHost {
  readonly #deps: LiveHostDeps;
  #store: KVStore;
  #pending: PendingDeltaStore;
  readonly #follower: LiveFollower;
  readonly #verifier: DeltaVerifier;
  #entering = false;
  /** Gossip deltas still to ignore, and announcements meanwhile (`dropGossip`). */
  #dropGossip = 0;
  /** The announcement the running sync is headed for. */
  #syncTarget: VerifiedAnnouncement | undefined;

  private constructor(deps: LiveHostDeps, store: KVStore, pending: PendingDeltaStore) {
    this.#deps = deps;
    this.#store = store;
    this.#pending = pending;
    const timeout = deps.config.live?.requestTimeoutMs ?? 10_000;
    this.#verifier = deltaVerifier(deps.writerPublicKey);
    this.#follower = new LiveFollower({
      store,
      pending,
      verifier: this.#verifier,
      writerPublicKey: deps.writerPublicKey,
      ranges: deps.config.ranges,
      tuning: deps.config.live,
      sources: (hint) => {
        const peers = deps.peers();
        const first = peers.filter((p) => p.id === hint);
        return [...first, ...peers.filter((p) => p.id !== hint)].map((p) => ({ id: p.id, source: peerDeltaSource(p, timeout) }));
      },
      catchUp: (reason) => void this.#catchUp(reason),
      penalise: (peer, offences) => deps.penalised(peer, `delta: ${offences} forged, unrequested or badly signed`),
      blame: (peer, reason) => deps.offence?.(peer, `gossip: ${reason}`),
      seqOf: (root) => deps.seqOf(root),
      emit: (e) => {
        // the latch follows the live state; `seq` is -1 until the root's announcement is heard.
        // Set before the event goes out: a listener that reads `status()` at the event sees it
        if (e.type === 'update') {
          deps.synced({ root: e.detail.root, seq: e.detail.seq ?? deps.seqOf(e.detail.root) ?? -1, localRoot: this.#follower.localRoot ?? e.detail.root }, false);
        } else if (e.type === 'live' && e.detail.mode === 'live' && e.detail.root && e.detail.seq !== undefined) {
          deps.synced({ root: e.detail.root, seq: e.detail.seq, localRoot: this.#follower.localRoot ?? e.detail.root }, false);
        }
        deps.emit(e);
      },
      stored: () => deps.stored?.(),
      fail: (err) => {
        const fatal = (err as Error)?.name === 'StorageQuotaExceeded';
        deps.emitError(err as Error, fatal);
        // the failed batch left the store at its last position: resume from there
        if (!fatal && deps.isSyncer()) deps.startSync();
      },
    });
  }

  /** Opens the pending store beside `store` and restores what it held (a reload). */
  static async open(deps: LiveHostDeps, store: KVStore): Promise<LiveHost> {
    const pending = deps.openPending ? await deps.openPending(deps.config.storageName) : new MemoryPendingDeltas();
    const host = new LiveHost(deps, store, pending);
    await host.#follower.restore();
    return host;
  }

  get mode(): LiveMode {
    return this.#follower.mode;
  }

  /** Whether gossip is being dropped (`dropGossip`). */
  get droppingGossip(): boolean {
    return this.#dropGossip > 0;
  }

  /**
   * Ignores the next `count` gossip deltas, and announcements meanwhile, as a filtering relay
   * would (the end-to-end tests' `dropGossipForTesting`). The follower never sees them.
   */
  dropGossip(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`expected a non-negative count, got ${count}`);
    this.#dropGossip = count;
  }

  /** True when a gossip delta is to be ignored (`dropGossip`): it counts one. */
  #dropped(): boolean {
    if (this.#dropGossip === 0) return false;
    this.#dropGossip--;
    return true;
  }

  /** Decodes and verifies a gossip delta (WebCrypto where the runtime has Ed25519); throws a typed error. */
  verifyDelta(bytes: Uint8Array): Promise<VerifiedDelta> {
    return this.#verifier.verifyBytes(bytes);
  }

  /** Gossip validation: the delta is already held or applied here. */
  knowsDelta(id: Uint8Array): boolean {
    return this.#deps.holdsLock() && this.#follower.knows(id);
  }

  /** Gossip validation: the delta hangs on a chain given up on (it is counted and remembered). */
  abandoned(d: VerifiedDelta): boolean {
    return this.#deps.holdsLock() && this.#follower.abandoned(d);
  }

  /** A gossip delta the gossip validator verified. */
  offerVerified(d: VerifiedDelta, bytes: Uint8Array, from: string | undefined): void {
    if (!this.#deps.holdsLock() || this.#dropped()) return; // a reading tab: the syncing one applies
    this.#follower.offerVerified(d, bytes, from);
  }

  offerDelta(bytes: Uint8Array, from: string | undefined): Promise<void> {
    if (!this.#deps.holdsLock() || this.#dropped()) return Promise.resolve(); // a reading tab: the syncing one applies
    return this.#follower.offerDelta(bytes, from);
  }

  /**
   * True when the follower takes the announcement, so the sync must not follow it: when live,
   * and while a sync runs if the deltas held meanwhile can bridge it (at most half the pending
   * bound past the sync's target). Moving the target at every commit would make a sync against
   * a busy writer chase it (each move cancels requests for roots no longer retained); held
   * deltas close that distance once the target is reached (docs/design.md sync flow step 3).
   */
  offerAnnouncement(ann: VerifiedAnnouncement): boolean {
    if (this.#entering) return true; // going live: the newest is offered once live
    if (this.#follower.mode === 'live') {
      if (this.#dropGossip === 0) this.#follower.offerAnnouncement(ann);
      return true;
    }
    const from = this.#syncTarget;
    const bridge = Math.floor(Math.min(this.#deps.config.live?.maxPending ?? 1024, this.#deps.config.live?.maxGapFill ?? DEFAULT_MAX_GAP_FILL) / 2);
    if (from && ann.logSize > from.logSize && ann.logSize - from.logSize <= bridge) return true;
    this.#syncTarget = ann;
    return false;
  }

  /**
   * Called by the sync loop before each sync attempt: true when no sync is needed because the
   * stored position holds (and the follower went live there).
   */
  async beforeSync(ann: VerifiedAnnouncement): Promise<boolean> {
    this.#syncTarget = ann;
    const mode = this.#follower.mode;
    if (mode === 'live') return true;
    const pos = await loadPosition(this.#store);
    if (!positionHolds(pos, await loadProgress(this.#store))) return false;
    if (mode === 'syncing') {
      // start or resume: deltas can bridge a small gap (one round trip per delta of a chain);
      // a larger one is a change proof away (one round trip)
      const live = this.#deps.config.live;
      const limit = Math.min(live?.maxGapFill ?? DEFAULT_MAX_GAP_FILL, live?.restoreGapFill ?? LIVE_DEFAULTS.restoreGapFill);
      if (ann.logSize - pos.logSize > limit) return false;
      await this.#goLive(pos, 'restored');
      return true;
    }
    if (announcementAhead(ann, pos)) return false;
    await this.#goLive(pos, 'synced');
    return true;
  }

  /** The state sync stands at `target`: stop it and go live at that announcement. */
  atTarget(target: Uint8Array): void {
    if (this.#entering || !this.#deps.isSyncer()) return;
    this.#entering = true;
    void this.#enterLive(target)
      .catch((err: unknown) => this.#deps.emitError(err as Error, false))
      .finally(() => {
        this.#entering = false;
      });
  }

  async #enterLive(target: Uint8Array): Promise<void> {
    await this.#deps.stopSync();
    // the sync may have moved on before it stopped: believe the store, not the event
    const progress = await loadProgress(this.#store);
    const at = progress.target ?? target;
    const ann = this.#deps.announcementOf(at);
    const holds = progress.segments.length > 0 && progress.segments.every((s) => s.root !== undefined && equalBytes(s.root, at));
    if (!ann || !holds) {
      this.#deps.startSync();
      return;
    }
    await this.#goLive({ root: ann.stateRoot, heads: ann.heads, logSize: ann.logSize, seq: ann.seq }, 'synced');
  }

  async #goLive(pos: LivePosition, reason: 'synced' | 'restored'): Promise<void> {
    await this.#follower.goLive(pos, reason);
    const seq = pos.seq ?? this.#deps.seqOf(pos.root) ?? -1;
    this.#deps.synced({ root: pos.root, seq, localRoot: this.#follower.localRoot ?? pos.root }, reason === 'restored');
    const newest = this.#deps.announcement();
    if (newest) this.#follower.offerAnnouncement(newest);
  }

  async #catchUp(reason: CatchUpReason): Promise<void> {
    await this.#follower.leave('catching-up', reason);
    if (!this.#deps.isSyncer()) return;
    await this.#deps.askHeads();
    this.#deps.startSync();
  }

  /** Pausing: hold deltas, apply none, until the next sync or `beforeSync`. */
  async pause(): Promise<void> {
    await this.#follower.leave('syncing');
  }

  /** A key's value in the applied state, or null when not live (read the store). */
  read(key: Uint8Array): Promise<Uint8Array | undefined | null> {
    return this.#follower.read(key);
  }

  /** Resolves once the store holds every applied update (reads of the store see them). */
  stored(): Promise<void> {
    return this.#follower.stored();
  }

  status(): LiveStatus {
    const p = this.#follower.position;
    return { mode: this.#follower.mode, pending: this.#follower.pendingCount, root: p?.root, logSize: p?.logSize ?? 0 };
  }

  /** Before the database is deleted (`clear()`). */
  async closeStores(): Promise<void> {
    await this.#follower.leave('syncing');
    await this.#follower.flush();
    await this.#pending.close();
  }

  /** After `clear()` recreated the database. */
  async reopen(store: KVStore): Promise<void> {
    this.#store = store;
    this.#pending = this.#deps.openPending ? await this.#deps.openPending(this.#deps.config.storageName) : new MemoryPendingDeltas();
    await this.#follower.reset(store, this.#pending);
  }

  async close(): Promise<void> {
    await this.#follower.close();
    await this.#pending.close();
  }
}
