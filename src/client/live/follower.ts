/**
 * The light client's live updates (DESIGN.md sync flow steps 3–4): verified gossip
 * deltas go into a `DeltaDag` mirrored in the pending store; once the state stands at a signed
 * root they are applied in causal order, each checked against its `stateRoot`; gaps are filled
 * over `/delta` from the peer that sent the delta; what cannot be filled, what waits too long
 * and a root that does not match end in a catch-up by change proof, run by the host.
 *
 * A chain a fill gave up on (more missing ancestors than `maxGapFill`, or none to be had) is
 * remembered (missing-chains.ts): its deltas are dropped, and deltas that later hang on it are
 * dropped on arrival, so an orphaned branch or a second database signed with the same key is
 * walked once, not after every catch-up.
 *
 * Modes: `syncing` (a state sync runs: deltas are held, never applied, no gap filling), `live`
 * (applying), `catching-up` (the host runs a change-proof sync to the newest announcement).
 * The host moves it: `goLive(position)` when the state stands at a root (after a sync, or at
 * once after a reload whose stored position holds), `leave()` before it starts a sync.
 *
 * Applying: ready deltas are applied to ONE trie view, in causal order, up to `maxBatch` per
 * commit; each delta whose parents are exactly the applied heads must reproduce its `stateRoot`
 * on that view (a single writer's chain: every delta). The view is committed only when every
 * delta in it matched, together with the live position and the progress records moved to the
 * new root (position.ts), in one atomic store batch: nothing unverified is ever written. On a
 * mismatch the verified prefix is committed, the offender and its held descendants are
 * discarded, and the host is asked to catch up.
 *
 * Group commit: when deltas queue up (a burst, a pause, a gap filled), up to `maxBatch` of them
 * are verified in order on one view. With nothing queued behind a group, it is written in ONE
 * store transaction (the store appends it to its write log: packed-store.ts) and its `update`
 * events are emitted once that transaction completed.
 *
 * The journal: with more deltas queued behind a group, the group goes into a long-lived view
 * (the journal) instead, and the next group builds on it. Its deltas are already in the pending
 * store (they were held); once that store's buffered writes have completed, their `update`
 * events are emitted. The trie's records, the position and the progress reach the store at a
 * checkpoint: when nothing is ready, every `checkpointEvery` deltas, and before the follower
 * leaves (a sync, a catch-up, close); the checkpoint then removes its deltas from the pending
 * store. A reload before it finds the state at the last checkpoint and the journal's deltas in
 * the pending store, and applies them again. So either way a reload or a killed tab finds every
 * delta a subscriber heard of (both stores commit with relaxed durability: an OS crash just
 * after may lose the newest whole commits). Why: a checkpoint writes the upper trie levels, which
 * every delta changes, once for thousands of deltas instead of once per group (measured on 1M
 * keys in Chromium, see README). Meanwhile the syncing tab's reads go through the journal
 * (`read`, `stored`), and other tabs, which read the store, hear of the updates once it holds
 * them (`FollowerDeps.stored`).
 *
 * A partial sync applies only the actions inside its ranges and cannot recompute the writer's
 * root; it relies on the writer's signature over the actions (and `stateRoot` names the root
 * its ranges now stand at).
 */
import { compareBytes, equalBytes, inKeyRange, toHex } from '../../core/bytes.ts';
import { DeltaDag, type AddResult } from '../../core/dag.ts';
import { encodeDelta, type VerifiedDelta } from '../../core/delta.ts';
import type { KVStore } from '../../core/store.ts';
import { MerkleTrie, type TrieView } from '../../core/trie.ts';
import { EMPTY_ROOT, type KeyChange } from '../../core/types.ts';
import { fillGaps, type DeltaSource, type WalkedId } from '../../sync/gap-fill.ts';
import { loadProgress, type StoredProgress } from '../../sync/state/progress.ts';
import type { InclusiveRange } from '../../sync/state/ranges.ts';
import { PeerFillBudget } from './fill-budget.ts';
import { DEFAULT_MAX_MISSING_IDS, MissingChains } from './missing-chains.ts';
import { PendingWriteBuffer, type PendingDeltaStore } from './pending-store.ts';
import { advanceProgress, positionOps, type LivePosition } from './position.ts';
import type { DeltaVerifier } from './verify.ts';

/**
 * Bounds and timeouts of live updates in the browser client: how many deltas are held, how
 * large a gap is filled over `/delta` before a catch-up by change proof, how deltas are grouped
 * into store commits. Every field has a default; `LightClientOptions.live` takes it.
 *
 * @example
 * const client = createLightClient({
 *   db, writer, bootstrap,
 *   live: { maxPending: 4096, pendingTimeoutMs: 60_000, maxGapFill: 5_000 },
 * });
 */
export interface LiveTuning {
  /** Held deltas at most (default 1,024); over it the newest go first. */
  maxPending?: number;
  /** Wire bytes of held deltas at most (default 16 MiB). */
  maxPendingBytes?: number;
  /** Ids per `/delta` request when filling a gap (default 3,000, Calimero's batch). */
  maxPerRound?: number;
  /** Ids one gap fill may request in all; a larger gap is caught up by change proof (default 1,000). */
  maxGapFill?: number;
  /**
   * Ids of chains given up on that are remembered, so that deltas on them are dropped on arrival
   * instead of walked again (default 16,384, ~2.5 MB; missing-chains.ts).
   */
  maxMissingIds?: number;
  /** A delta held this long is given up on: catch up, then drop it (default 30,000 ms). */
  pendingTimeoutMs?: number;
  /** Deadline of one `/delta` request (default 10,000 ms). */
  requestTimeoutMs?: number;
  /**
   * How long missing parents, and an announcement's unknown heads, may take to arrive by gossip
   * (which may reorder) before they are fetched (default 250 ms).
   */
  gossipGraceMs?: number;
  /**
   * Deltas per store commit at most (default 1,024). Only a queue (a burst, a pause, a gap
   * filled) makes groups this large. A larger group writes fewer node records per delta (the
   * upper levels are shared): measured on 1M keys in Chromium, bursts of 2,000 deltas applied
   * at 1,397/s and 1,105/s with 1,024 against 1,248/s and 956/s with 256; the group's view holds
   * ~19k decoded nodes (~60 MB) meanwhile.
   */
  maxBatch?: number;
  /**
   * Applied deltas the journal holds at most before a checkpoint (default 4,096). When deltas
   * queue up, groups go into one long-lived trie view (the journal) whose records are written
   * to the store only at a checkpoint: when nothing is ready, at this bound, and before a sync
   * or close. Meanwhile the deltas themselves, kept in the pending store, are what makes them
   * durable (a reload applies them again). The upper trie levels are then encoded and written
   * once per checkpoint, not once per group (measured on 1M keys in Chromium: see README).
   * 0: no journal, every group is written to the store before its updates are emitted.
   */
  checkpointEvery?: number;
  /**
   * Memory for committed trie node records (default 160 MiB). A 1M-key trie has ~70k nodes in
   * its top five levels (~46 MB encoded), which every random update walks; with the core's
   * default 32 MiB they kept being evicted and each batch re-read most node pages. Its ~270k
   * deeper records (~70 MB) are needed by one random put in four: the idle warm-up reads them
   * too while there is room (measured on Node: ~600 scattered node reads per 2,560 puts with
   * only the top five levels cached, each a page read from IndexedDB).
   */
  nodeCacheBytes?: number;
}

/** Whether the client is state syncing, applying deltas live, or catching up by change proof. */
export type LiveMode = 'syncing' | 'live' | 'catching-up';

/** Why a catch-up by change proof was asked for. */
export type CatchUpReason =
  | 'root-mismatch'
  | 'gap-too-large'
  | 'peer-lacks-deltas'
  | 'timeout'
  | 'source-failed'
  | 'aborted'
  | 'no-source'
  | 'pending-expired'
  | 'state-changed';

/**
 * The live follower's mode and position: syncing, live or catching up (and why), the root and
 * log size it stands at, and what applying cost. Emitted as `live`.
 *
 * @example
 * client.on('live', (e) => {
 *   if (e.mode === 'catching-up') console.log(`catching up: ${e.reason}`);
 *   else if (e.mode === 'live') console.log(`live at seq ${e.seq}, ${e.applied} deltas applied`);
 * });
 */
export interface LiveStateEvent {
  /** The current mode. */
  mode: LiveMode;
  /** Why the mode changed (catch-ups). */
  reason?: CatchUpReason | 'synced' | 'restored';
  /** The root the local state stands at, once known. */
  root: Uint8Array | undefined;
  /** The `seq` of that root's announcement, when known. */
  seq: number | undefined;
  /** Operations in the writer's log up to that root (the applied delta's `logIndex` + 1). */
  logSize: number;
  /** Deltas applied this session. */
  applied: number;
  /** Catch-ups by change proof asked for this session. */
  catchUps: number;
  /** Where applying spent its time this session (ms, summed over store commits). */
  timings: ApplyTimings;
  /** The idle warm-up of the trie node cache is done (every node record cached, or the cache full). */
  warm: boolean;
  /**
   * Applied deltas whose trie state the store does not hold yet: the journal's, until its
   * checkpoint is durable. 0: the store holds every update emitted.
   */
  unstored: number;
}

/** Where applying deltas spent its time, summed over a session. */
export interface ApplyTimings {
  /** Store commits, and the deltas in them. */
  commits: number;
  deltas: number;
  /** Reading the touched trie paths (prefetch). */
  readMs: number;
  /** Applying actions and hashing, in memory. */
  computeMs: number;
  /**
   * The store commit (trie records, position and progress in one batch): encoding and staging
   * it, and waiting for the previous commit's write, which runs while the next group is read
   * and computed. For a journaled group: waiting for the previous write.
   */
  commitMs: number;
  /** Checkpoints of the journal, and their encoding and staging (the write runs after). */
  checkpoints: number;
  checkpointMs: number;
  /** Checkpoints whose write completed: the store then holds every update emitted before. */
  checkpointsStored: number;
}

/**
 * Deltas held while their parents are missing, and what happened to gossip deltas: received,
 * duplicate, rejected, dropped. Emitted as `pending`.
 *
 * @example
 * client.on('pending', (p) => {
 *   if (p.rejected > 0) console.warn(`${p.rejected} gossip deltas were invalid`);
 * });
 */
export interface PendingStateEvent {
  /** Held (verified, not applied) deltas. */
  count: number;
  /** Wire bytes of the held deltas. */
  bytes: number;
  /** Gossip deltas received. */
  received: number;
  /** Received deltas that were already known. */
  duplicates: number;
  /** Received deltas dropped as invalid (they failed decoding or verification). */
  rejected: number;
  /** Held deltas dropped over a bound (`maxPending`, `maxPendingBytes`). */
  evicted: number;
  /** Held deltas dropped after `pendingTimeoutMs`. */
  expired: number;
  /** Held deltas discarded after a root mismatch. */
  discarded: number;
  /** Held deltas found in the pending store at start (a reload). */
  restored: number;
  /** Deltas dropped because they hang on a chain given up on (more missing ancestors than a gap fill may fetch, or none to be had). */
  abandoned: number;
}

/**
 * A gap fill over `/delta`: missing ancestors of held deltas fetched from one peer. Emitted as
 * `gapFill` when it starts, finishes or fails.
 *
 * @example
 * client.on('gapFill', (e) => {
 *   if (e.phase === 'finished') console.log(`filled ${e.fetched} deltas from ${e.peer} in ${e.rounds} rounds`);
 * });
 */
export interface GapFillEvent {
  /** Whether it started, finished or failed. */
  phase: 'started' | 'finished' | 'failed';
  /** The peer asked. */
  peer: string | undefined;
  /** Ids missing when it started. */
  missing: number;
  /** Verified deltas received. */
  fetched: number;
  /** `/delta` requests made. */
  rounds: number;
  /** Why it failed (`abandoned-chain`: it reached a chain given up on before; no catch-up follows). */
  reason?: CatchUpReason | 'abandoned-chain';
  /** Answers that were forged, unrequested or badly signed (the peer is penalised). */
  offences: number;
}

/**
 * One applied delta, as subscribers see it. Emitted as `update`.
 *
 * @example
 * client.on('update', (u) => console.log(`delta ${u.logIndex}: ${u.keys.length} keys, ${u.appliedAtMs - u.hlcWallMs} ms after commit`));
 */
export interface DeltaUpdate {
  /** The delta's id (its hash). */
  deltaId: Uint8Array;
  /** The verified root after it (for a partial sync: the writer's root its ranges stand at). */
  root: Uint8Array;
  /** The `seq` of that root's announcement, when known. */
  seq: number | undefined;
  /** The delta's position in the writer's operation log. */
  logIndex: number;
  /** Changed keys within the client's synced ranges, in key order. */
  keys: Uint8Array[];
  /** The writer's commit time (its HLC wall clock, ms since the epoch). */
  hlcWallMs: number;
  /** When the worker committed it (ms since the epoch). */
  appliedAtMs: number;
}

export type LiveEvent =
  | { type: 'live'; detail: LiveStateEvent }
  | { type: 'pending'; detail: PendingStateEvent }
  | { type: 'gapFill'; detail: GapFillEvent }
  | { type: 'update'; detail: DeltaUpdate };

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

const DEFAULTS: Required<LiveTuning> = {
  maxPending: 1024,
  maxPendingBytes: 16 * 1024 * 1024,
  maxPerRound: 3000,
  maxGapFill: 1000,
  maxMissingIds: DEFAULT_MAX_MISSING_IDS,
  pendingTimeoutMs: 30_000,
  requestTimeoutMs: 10_000,
  gossipGraceMs: 250,
  maxBatch: 1024,
  checkpointEvery: 4096,
  nodeCacheBytes: 160 * 1024 * 1024,
};



const GAP_RETRY_MS = 1000;
const FILL_BUDGET_WINDOW_MS = 60_000;
/** Ids one fill may request from a peer over its budget (see `#budget`). */
const SHORT_FILL = 16;
const GAP_RETRY_MAX_MS = 10_000;

function inRanges(key: Uint8Array, ranges: readonly InclusiveRange[] | undefined): boolean {
  if (!ranges) return true;
  return ranges.some((r) => inKeyRange(key, r.start, r.end));
}

/** Actions of `d` that touch the synced ranges. */
export function actionsInScope(actions: readonly KeyChange[], ranges: readonly InclusiveRange[] | undefined): KeyChange[] {
  return ranges ? actions.filter((a) => inRanges(a.key, ranges)) : [...actions];
}

/**
 * Whether a delta's parents are exactly `heads` (hex ids): then applying it must reproduce its
 * `stateRoot` (dag.ts `appliedIsCausalPastOf`, for heads that run ahead of the DAG in a batch).
 */
export function isCausalPast(parents: readonly Uint8Array[], heads: ReadonlySet<string>): boolean {
  return parents.length === heads.size && parents.every((p) => heads.has(toHex(p)));
}

/** Ids of the held deltas in `held` (causally ordered) that descend from `id`, itself included. */
export function heldDescendants(held: readonly VerifiedDelta[], id: Uint8Array): Uint8Array[] {
  const doomed = new Set([toHex(id)]);
  const out = [id];
  // causal order: a parent comes before its children, so one pass suffices
  for (const d of held) {
    if (doomed.has(toHex(d.id)) || !d.parents.some((p) => doomed.has(toHex(p)))) continue;
    doomed.add(toHex(d.id));
    out.push(d.id);
  }
  return out;
}

export class LiveFollower {
  readonly #deps: FollowerDeps;
  readonly #tuning: Required<LiveTuning>;
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => () => void;
  #buffer: PendingWriteBuffer;
  #dag: DeltaDag;
  #mode: LiveMode = 'syncing';
  #position: LivePosition | undefined;
  #progress: StoredProgress | undefined;
  #trie: MerkleTrie | undefined;
  /** Next chunk (first three key tokens) of the idle warm-up of the trie's upper levels; 4096: done. */
  #warmNext = 0;
  /** Then the scan of every node record into the cache while it has room: where it goes on (null: done). */
  #warmAfter: Uint8Array | undefined | null = undefined;
  /** The apply loop, while it runs. */
  #applying: Promise<void> | undefined;
  #filling: Promise<void> | undefined;
  /** Announced heads we neither hold nor applied, to fetch. */
  readonly #wantedHeads = new Map<string, Uint8Array>();
  #nextFillAt = 0;
  #fillTimer: (() => void) | undefined;
  #fillHint: string | undefined;
  #fillBackoff = GAP_RETRY_MS;
  #closed = false;
  #expiryTimer: (() => void) | undefined;
  #pendingEventScheduled = false;
  #stats = { received: 0, duplicates: 0, rejected: 0, evicted: 0, expired: 0, discarded: 0, restored: 0, abandoned: 0 };
  /** Chains gap filling gave up on: deltas on them are dropped, not walked again. */
  #chains: MissingChains;
  /**
   * Ids each peer had us request in fills that led nowhere: past `maxGapFill` in a minute, its
   * fills are short (`SHORT_FILL`), so a peer gossiping fresh deep chains costs about one
   * fill's worth a minute, not one per chain.
   */
  #budget: PeerFillBudget;
  #applied = 0;
  #catchUps = 0;
  readonly #timings: ApplyTimings = { commits: 0, deltas: 0, readMs: 0, computeMs: 0, commitMs: 0, checkpoints: 0, checkpointMs: 0, checkpointsStored: 0 };
  /** Test hook: gossip deltas (and announcements) still to ignore. */
  #dropGossip = 0;

  constructor(deps: FollowerDeps) {
    this.#deps = deps;
    this.#tuning = { ...DEFAULTS, ...Object.fromEntries(Object.entries(deps.tuning ?? {}).filter(([, v]) => v !== undefined)) };
    this.#now = deps.now ?? Date.now;
    this.#setTimer =
      deps.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      });
    this.#dag = this.#newDag();
    this.#buffer = new PendingWriteBuffer(deps.pending, (err) => deps.fail(err));
    this.#chains = new MissingChains({ maxIds: this.#tuning.maxMissingIds });
    this.#budget = new PeerFillBudget({ maxIds: this.#tuning.maxGapFill, windowMs: FILL_BUDGET_WINDOW_MS });
  }

  #newDag(): DeltaDag {
    return new DeltaDag({ maxPending: this.#tuning.maxPending, maxPendingBytes: this.#tuning.maxPendingBytes });
  }

  get mode(): LiveMode {
    return this.#mode;
  }

  /** Where the local state stands, once known. */
  get position(): LivePosition | undefined {
    return this.#position;
  }

  /** The local trie's root (a partial sync's own root), once live. */
  get localRoot(): Uint8Array | undefined {
    return this.#journalRoot ?? this.#trie?.root;
  }

  /**
   * A key's value in the applied state (the journal's verified groups included), or null when
   * the follower holds no state (not live: read the store). Not from the journal view itself:
   * between two turns of a group it holds changes not yet checked against their `stateRoot`.
   */
  async read(key: Uint8Array): Promise<Uint8Array | undefined | null> {
    if (this.#mode !== 'live' || !this.#trie) return null;
    if (this.#journal) {
      // indexed on demand: reads are rare next to the puts a burst applies
      for (; this.#journalIndexed < this.#journaledChanges.length; this.#journalIndexed++) {
        for (const c of this.#journaledChanges[this.#journalIndexed]) this.#journalValues.set(toHex(c.key), c.value ?? null);
      }
      const v = this.#journalValues.get(toHex(key));
      if (v !== undefined) return v ?? undefined;
    }
    // the stored state, with the checkpoint being written (staged) if one is
    return this.#trie.view().get(key);
  }

  /** Resolves once the store itself holds every applied delta (a checkpoint of the journal is durable). */
  async stored(): Promise<void> {
    // a journal exists only while the apply loop runs (the loop checkpoints it before it ends)
    while (this.#journal && this.#applying) await this.#applying;
    await this.#lastCheckpoint;
  }

  get pendingCount(): number {
    return this.#dag.pendingCount;
  }

  get dag(): DeltaDag {
    return this.#dag;
  }

  /**
   * Loads the held deltas the pending store kept (a reload), verifying each again. They are
   * applied once the state stands at a root (`goLive`).
   */
  async restore(): Promise<number> {
    const records = await this.#deps.pending.load();
    let restored = 0;
    const bad: Uint8Array[] = [];
    for (const r of records) {
      try {
        const d = await this.#deps.verifier.verifyBytes(r.delta);
        const res = this.#dag.add(d, r.receivedAt);
        this.#afterAdd(res);
        if (res.status === 'ready' || res.status === 'pending') restored++;
      } catch {
        bad.push(r.id);
      }
    }
    for (const id of bad) this.#buffer.delete(id);
    this.#stats.restored += restored;
    this.#emitPending();
    return restored;
  }

  /** Test hook: ignore the next `count` gossip deltas, and announcements meanwhile (a filtering relay). */
  dropGossip(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`expected a non-negative count, got ${count}`);
    this.#dropGossip = count;
  }

  /** Whether gossip is being dropped (test hook). */
  get droppingGossip(): boolean {
    return this.#dropGossip > 0;
  }

  /** A gossip delta (wire bytes after the 0x01 type byte is NOT stripped: pass the delta bytes). */
  async offerDelta(bytes: Uint8Array, from?: string): Promise<void> {
    if (this.#closed) return;
    if (this.#dropGossip > 0) {
      this.#dropGossip--;
      return;
    }
    this.#stats.received++;
    let d: VerifiedDelta;
    try {
      d = await this.#deps.verifier.verifyBytes(bytes);
    } catch {
      this.#stats.rejected++;
      this.#emitPending();
      return;
    }
    if (this.abandoned(d)) return;
    this.#hold(d, from, bytes);
  }

  /** A gossip delta the gossip validator already decoded and verified (`bytes`: its wire bytes). */
  offerVerified(d: VerifiedDelta, bytes: Uint8Array, from?: string): void {
    if (this.#closed) return;
    if (this.#dropGossip > 0) {
      this.#dropGossip--;
      return;
    }
    this.#stats.received++;
    if (this.abandoned(d)) return;
    this.#hold(d, from, bytes);
  }

  /** Whether the delta is already held or applied (gossip validation: a duplicate). */
  knows(id: Uint8Array): boolean {
    return this.#dag.knows(id);
  }

  /**
   * Whether a verified delta hangs on a chain given up on (missing-chains.ts): then it is
   * remembered with the chain, counted, and must be dropped (gossip validation: ignored).
   */
  abandoned(d: VerifiedDelta): boolean {
    if (!this.#chains.hangs(d)) return false;
    this.#stats.abandoned++;
    this.#emitPending();
    return true;
  }

  #hold(d: VerifiedDelta, from: string | undefined, bytes?: Uint8Array): AddResult {
    const res = this.#dag.add(d, this.#now());
    if (res.status === 'duplicate' || res.status === 'applied') this.#stats.duplicates++;
    if (res.status === 'ready' || res.status === 'pending') {
      this.#buffer.put({ id: d.id, delta: bytes ?? encodeDelta(d), receivedAt: this.#now() });
      this.#wantedHeads.delete(toHex(d.id));
    }
    this.#afterAdd(res);
    if (this.#mode === 'live') {
      if (res.status === 'ready') this.#kickApply();
      else if (res.status === 'pending' && res.missing.length > 0) this.#scheduleFill(from);
    }
    this.#emitPending();
    return res;
  }

  #afterAdd(res: AddResult): void {
    for (const id of res.evicted) this.#buffer.delete(id);
    this.#stats.evicted += res.evicted.length;
    this.#armExpiry();
  }

  /**
   * A newer signed announcement. Its heads should arrive by gossip; those still unknown after
   * the grace period are fetched like missing parents. An announcement whose heads are applied
   * but whose root is not ours says the state changed outside the DAG (a bulk load): catch up.
   */
  offerAnnouncement(ann: { stateRoot: Uint8Array; heads: Uint8Array[]; logSize: number; seq: number }): void {
    if (this.#closed || this.#dropGossip > 0 || this.#mode !== 'live' || !this.#position) return;
    const pos = this.#position;
    if (ann.logSize < pos.logSize || (ann.seq <= (pos.seq ?? -1))) return;
    if (equalBytes(ann.stateRoot, pos.root) && ann.logSize === pos.logSize) {
      // the announcement of the state we stand at (deltas usually arrive before theirs): its seq
      pos.seq = ann.seq;
      this.#emitLive(undefined);
      return;
    }
    // the writer signed these heads for this database: a chain remembered as given up on that
    // holds one was this database's own history after all
    if (ann.heads.some((h) => this.#chains.has(h))) this.#chains.clear();
    const unknown = ann.heads.filter((h) => !this.#dag.knows(h));
    if (unknown.length === 0) {
      const heads = ann.heads.length ? ann.heads : [EMPTY_ROOT];
      const headsApplied = heads.every((h) => this.#dag.isApplied(h));
      if (headsApplied && ann.logSize === pos.logSize && !equalBytes(ann.stateRoot, pos.root)) this.#requestCatchUp('state-changed');
      return;
    }
    for (const h of unknown) this.#wantedHeads.set(toHex(h), h);
    this.#scheduleFill(undefined);
  }

  /**
   * The state stands at `position` (a sync reached its target, or a reload found its stored
   * position valid): held deltas it covers are dropped, so are those held too long (they never
   * wait forever), and the rest are applied as they become ready.
   */
  async goLive(position: LivePosition, reason: 'synced' | 'restored'): Promise<void> {
    if (this.#closed) return;
    await this.#applying;
    const trie = await MerkleTrie.open(this.#deps.store, { cacheBytes: this.#tuning.nodeCacheBytes });
    // the same root is the same trie: keep the old one and its warm node cache (pause, resume)
    if (!this.#trie || !equalBytes(this.#trie.root, trie.root)) {
      this.#trie = trie;
      this.#warmNext = 0;
      this.#warmAfter = undefined;
    }
    this.#progress = await loadProgress(this.#deps.store);
    const changed = !this.#position || !equalBytes(this.#position.root, position.root) || this.#position.logSize !== position.logSize;
    if (changed || this.#position?.seq !== position.seq) await this.#deps.store.write(positionOps(position));
    this.#position = { ...position, heads: position.heads.map((h) => h.slice()) };
    this.#storedPosition = this.#position;
    if (changed || this.#mode !== 'live') {
      for (const id of this.#dag.resetApplied({ heads: position.heads, logSize: position.logSize })) this.#buffer.delete(id);
    }
    // chains given up on that lie within the state's log prefix were its own history: forget them
    this.#chains.covered(position.logSize);
    const expired = this.#dag.drop(this.#waitedTooLong().map((d) => d.id));
    for (const id of expired) this.#buffer.delete(id);
    this.#stats.expired += expired.length;
    // heads wanted before a catch-up may lie behind it now (their ancestors are not in the
    // applied set, so a fill would walk back to genesis): the host offers the newest again
    if (changed) this.#wantedHeads.clear();
    for (const [k, h] of this.#wantedHeads) if (this.#dag.knows(h)) this.#wantedHeads.delete(k);
    this.#mode = 'live';
    this.#emitLive(reason);
    this.#emitPending();
    this.#armExpiry();
    this.#kickApply();
    this.#kickFill(undefined);
  }

  /** Stops applying before the host runs a sync; resolves once no commit is in flight. */
  async leave(mode: 'syncing' | 'catching-up', reason?: CatchUpReason): Promise<void> {
    if (this.#mode !== mode) {
      this.#mode = mode;
      this.#emitLive(reason);
    }
    await this.#applying;
  }

  /** The host forgot the local state (`clear()`): everything held goes too. */
  async reset(store: KVStore, pending: PendingDeltaStore): Promise<void> {
    await this.#applying;
    await this.#filling;
    await this.#buffer.flush();
    (this.#deps as { store: KVStore }).store = store;
    (this.#deps as { pending: PendingDeltaStore }).pending = pending;
    this.#buffer = new PendingWriteBuffer(pending, (err) => this.#deps.fail(err));
    this.#dag = this.#newDag();
    this.#chains = new MissingChains({ maxIds: this.#tuning.maxMissingIds });
    this.#position = undefined;
    this.#storedPosition = undefined;
    this.#unstored = 0;
    this.#progress = undefined;
    this.#dropJournal();
    this.#trie = undefined;
    this.#warmNext = 0;
    this.#warmAfter = undefined;
    this.#wantedHeads.clear();
    this.#mode = 'syncing';
    this.#emitLive(undefined);
    this.#emitPending();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#expiryTimer?.();
    this.#fillTimer?.();
    await this.#applying;
    await this.#buffer.flush();
  }

  /** Writes buffered pending-store changes now (tests; before a planned reload). */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  /** Resolves once the apply loop and gap fill in flight (if any) are done. */
  async idle(): Promise<void> {
    while (this.#applying || this.#filling) {
      await this.#applying;
      await this.#filling;
    }
  }

  // ---- applying -----------------------------------------------------------------------------

  #kickApply(): void {
    if (this.#applying || this.#mode !== 'live' || this.#closed) return;
    this.#applying = this.#applyLoop()
      .catch((err: unknown) => {
        this.#mode = 'syncing';
        this.#deps.fail(err);
      })
      .finally(() => {
        this.#applying = undefined;
      });
  }

  async #applyLoop(): Promise<void> {
    try {
      while (this.#mode === 'live' && !this.#closed) {
        const ready = this.#dag.ready();
        if (ready.length === 0) {
          await this.#settle();
          if (this.#dag.ready().length) continue;
          if (this.#journal) {
            await this.#checkpoint();
            continue;
          }
          if (this.#warmAfter === null) return;
          await this.#warmChunk();
          continue;
        }
        const batch = ready.slice(0, this.#tuning.maxBatch);
        const ok = await this.#applyBatch(batch, ready);
        if (!ok) return;
        if (this.#journaled.length >= this.#tuning.checkpointEvery) await this.#checkpoint();
      }
    } finally {
      // leaving (a sync, a catch-up, close): the store gets the journal's state first
      await this.#checkpoint();
      await this.#settle();
    }
  }

  /**
   * The commit in flight (`#applyBatch` stages one and computes the next group meanwhile):
   * resolves once it is durable and its updates were emitted; rejects if the write failed.
   */
  #inflight: Promise<void> | undefined;

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
   * While idle, reads one 4096th of the trie's upper levels (every node on a path of at most
   * 4 tokens under one 3-token prefix) into the node cache, so random updates
   * find them in memory. Runs inside the apply loop: no commit races the cache fill.
   */
  async #warmChunk(): Promise<void> {
    if (this.#warmNext >= 4096) {
      // then every other node record, in store order, while the cache has room (1,024 records,
      // a few pages, per chunk)
      this.#warmAfter = (await this.#trie!.warmNodes(this.#warmAfter ?? undefined, 1024)) ?? null;
      if (this.#warmAfter === null) this.#emitLive(undefined);
      return;
    }
    const chunk = this.#warmNext++;
    // two-byte keys are four-token paths: the walk to each reads every node above it. A chunk
    // is 16 siblings under one three-token path (about one page of node records), so a delta
    // arriving meanwhile waits for one small read, not for a 256th of the trie.
    const keys = Array.from({ length: 16 }, (_, j) => Uint8Array.of(chunk >> 4, ((chunk & 15) << 4) | j));
    await this.#trie!.view().prefetch(keys);
  }

  /**
   * Applies `batch` (causally ordered, ready); false after a root mismatch. With more ready
   * deltas behind it (or a journal open), it goes into the journal view; else, with no journal
   * open, it is committed to the store at once.
   */
  async #applyBatch(batch: VerifiedDelta[], ready: VerifiedDelta[]): Promise<boolean> {
    const trie = this.#trie!;
    const full = this.#deps.ranges === undefined;
    const heads = new Set(this.#dag.heads().map(toHex));
    const journal = this.#tuning.checkpointEvery > 0 && (this.#journal !== undefined || ready.length > batch.length);
    const t0 = performance.now();
    let view = this.#journal ?? trie.view();
    // one parallel read of every path the batch touches, not one wave per delta (IndexedDB reads
    // are asynchronous: on a large state most nodes are not cached)
    const scoped = batch.map((d) => actionsInScope(d.actions, this.#deps.ranges));
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
      for (const changes of this.#journaledChanges) await view.apply(changes);
      for (let i = 0; i < good.length; i++) await view.apply(scoped[i]);
      if (this.#journal) this.#journal = view;
    }
    if (good.length > 0) {
      const last = good[good.length - 1];
      const root = full ? view.root : last.stateRoot;
      let logSize = this.#position!.logSize;
      const indexes = new Set(good.map((d) => d.logIndex));
      while (indexes.delete(logSize)) logSize++;
      const position: LivePosition = { root, heads: this.#headsAfter(good), logSize, seq: this.#deps.seqOf(root) };
      const t2 = performance.now();
      // the previous group's write ran while this group was computed: it must be durable (and
      // announced) before this one is staged on top of it
      await this.#settle();
      const before = { position: this.#position, progress: this.#progress };
      let durable: Promise<void>;
      if (journal) {
        // the journal: the trie's records wait for a checkpoint; these deltas are durable once
        // the pending store holds them (a reload applies them again on the stored state)
        this.#journal = view;
        this.#journalRoot = view.root;
        this.#unstored += good.length;
        this.#journaled.push(...good);
        this.#journaledChanges.push(...scoped.slice(0, good.length));
        durable = this.#buffer.written();
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
      for (const d of good) this.#dag.markApplied(d.id);
      this.#inflight = durable.then(
        () => {
          const appliedAtMs = this.#now();
          for (const d of good) {
            // a journaled delta stays in the pending store until a checkpoint covers it
            if (!journal) this.#buffer.delete(d.id);
            this.#applied++;
            this.#deps.emit({
              type: 'update',
              detail: {
                deltaId: d.id,
                root: d === last ? root : d.stateRoot,
                seq: this.#deps.seqOf(d.stateRoot),
                logIndex: d.logIndex,
                keys: d.actions.filter((a) => inRanges(a.key, this.#deps.ranges)).map((a) => a.key),
                hlcWallMs: d.hlc.wallMs,
                appliedAtMs,
              },
            });
          }
          this.#emitLive(undefined);
          if (!journal) this.#deps.stored?.(root);
        },
        (err: unknown) => {
          // the trie went back to its state before the batch (`stageView`), or the pending
          // store lost deltas of the journal: back to the stored position
          if (journal) this.#dropJournal();
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
    if (bad) {
      await this.#settle();
      const discarded = this.#dag.drop(heldDescendants(ready, bad.delta.id));
      for (const id of discarded) this.#buffer.delete(id);
      this.#stats.discarded += discarded.length;
      this.#emitPending();
      // the verified state is made durable before the catch-up starts from it
      await this.#checkpoint();
      await this.#settle();
      this.#requestCatchUp('root-mismatch');
      return false;
    }
    this.#emitPending();
    return true;
  }

  /**
   * Writes the journal view to the store (trie records, position and progress in one batch)
   * and then removes its deltas from the pending store. Runs when the apply loop has nothing
   * ready, when the journal holds `checkpointEvery` deltas, and before the follower leaves.
   */
  async #checkpoint(): Promise<void> {
    const view = this.#journal;
    if (!view) return;
    // the journal's own callbacks first (its pending-store write)
    await this.#settle();
    if (this.#journal !== view) return;
    const covered = this.#journaled;
    this.#dropJournal();
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
        for (const d of covered) this.#buffer.delete(d.id);
        this.#timings.checkpointsStored++;
        this.#unstored -= covered.length;
        this.#deps.stored?.(position.root);
        this.#emitLive(undefined);
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

  #dropJournal(): void {
    this.#journal = undefined;
    this.#journalRoot = undefined;
    this.#journaled = [];
    this.#journaledChanges = [];
    this.#journalValues.clear();
    this.#journalIndexed = 0;
  }

  /** Applied deltas whose trie changes only the journal view holds, not yet the store (see `#checkpoint`). */
  #journal: TrieView | undefined;
  #journaled: VerifiedDelta[] = [];
  #journaledChanges: KeyChange[][] = [];
  /** The journal's verified changes by key (hex), for `read`: the first `#journalIndexed` groups' actions. */
  readonly #journalValues = new Map<string, Uint8Array | null>();
  #journalIndexed = 0;
  /** The local root of the journal view's state (`localRoot`). */
  #journalRoot: Uint8Array | undefined;
  /** See `LiveStateEvent.unstored`. */
  #unstored = 0;
  /** The position the store holds (the journal's deltas are beyond it). */
  #storedPosition: LivePosition | undefined;
  #lastCheckpoint: Promise<void> = Promise.resolve();

  /** The applied heads once `good` (a causally ordered prefix) is applied on top of the DAG's. */
  #headsAfter(good: VerifiedDelta[]): Uint8Array[] {
    const heads = new Map(this.#dag.heads().map((h) => [toHex(h), h]));
    for (const d of good) {
      for (const p of d.parents) heads.delete(toHex(p));
      heads.set(toHex(d.id), d.id);
    }
    return [...heads.values()].sort(compareBytes);
  }

  #requestCatchUp(reason: CatchUpReason): void {
    if (this.#mode !== 'live') return;
    this.#catchUps++;
    this.#mode = 'catching-up';
    this.#emitLive(reason);
    this.#deps.catchUp(reason);
  }

  // ---- gap filling --------------------------------------------------------------------------

  /** Fills gaps after the grace period (one timer at a time; `hint` is the first peer to ask). */
  #scheduleFill(hint: string | undefined): void {
    if (this.#fillTimer || this.#closed) return;
    this.#fillHint ??= hint;
    this.#fillTimer = this.#setTimer(() => {
      this.#fillTimer = undefined;
      const h = this.#fillHint;
      this.#fillHint = undefined;
      this.#kickFill(h);
    }, this.#tuning.gossipGraceMs);
  }

  #kickFill(hint: string | undefined): void {
    if (this.#filling || this.#mode !== 'live' || this.#closed) return;
    const wait = this.#nextFillAt - this.#now();
    if (wait > 0) {
      this.#setTimer(() => this.#kickFill(hint), wait);
      return;
    }
    this.#filling = this.#fill(hint).finally(() => {
      this.#filling = undefined;
    });
  }

  async #fill(hint: string | undefined): Promise<void> {
    for (;;) {
      if (this.#mode !== 'live' || this.#closed) return;
      this.#dropAbandoned();
      const missing = [...this.#dag.missingParents(), ...[...this.#wantedHeads.values()].filter((h) => !this.#dag.knows(h))];
      this.#wantedHeads.clear();
      if (missing.length === 0) return;
      const sources = this.#deps.sources(hint);
      if (sources.length === 0) {
        this.#failFill(undefined, missing.length, 'no-source', 0, 0, 0);
        return;
      }
      let last: CatchUpReason = 'no-source';
      let filled = false;
      let abandoned = false;
      /** Ids walked by fills that found the chain too long, or its ancestors nowhere. */
      const walked: WalkedId[] = [];
      const blamed = hint ?? sources[0].id;
      for (const { id, source } of sources) {
        // this peer's fills led nowhere a whole fill's worth this minute: it gets short fills
        // only (enough to reach a remembered chain, or to fill a small gap of its own)
        const maxTotal = this.#budget.exhausted(id, this.#now()) ? Math.min(SHORT_FILL, this.#tuning.maxGapFill) : this.#tuning.maxGapFill;
        this.#deps.emit({ type: 'gapFill', detail: { phase: 'started', peer: id, missing: missing.length, fetched: 0, rounds: 0, offences: 0 } });
        const r = await fillGaps(missing, {
          source,
          writerPublicKey: this.#deps.writerPublicKey,
          knows: (x) => this.#dag.knows(x),
          abandoned: (x) => this.#chains.has(x),
          maxPerRound: this.#tuning.maxPerRound,
          maxTotal,
          requestTimeoutMs: this.#tuning.requestTimeoutMs,
        });
        if (r.offences.length > 0) this.#deps.penalise?.(id, r.offences.length);
        if (r.kind === 'filled') {
          // parents first, so each is held (and ready) before its children
          for (const d of [...r.deltas].reverse()) this.#hold(d, id);
          this.#deps.emit({ type: 'gapFill', detail: { phase: 'finished', peer: id, missing: missing.length, fetched: r.deltas.length, rounds: r.rounds, offences: r.offences.length } });
          filled = true;
          break;
        }
        this.#deps.emit({ type: 'gapFill', detail: { phase: 'failed', peer: id, missing: missing.length, fetched: r.deltas.length, rounds: r.rounds, reason: r.reason, offences: r.offences.length } });
        if (r.reason === 'abandoned-chain' || r.reason === 'gap-too-large' || r.reason === 'peer-lacks-deltas') this.#budget.spend(id, r.requested, this.#now());
        if (r.reason === 'abandoned-chain') {
          // it reached a chain given up on before: what it walked is on that chain too
          walked.push(...r.walked);
          abandoned = true;
          break;
        }
        if (r.reason === 'gap-too-large' || r.reason === 'peer-lacks-deltas') walked.push(...r.walked);
        // a timeout or a failed source says nothing about the chain: keep what arrived
        else for (const d of [...r.deltas].reverse()) this.#hold(d, id);
        last = r.reason;
        // another peer cannot make a gap smaller
        if (r.reason === 'gap-too-large') break;
      }
      if (filled) {
        this.#fillBackoff = GAP_RETRY_MS;
        this.#kickApply();
        hint = undefined;
        continue;
      }
      if (walked.length > 0) {
        // remembered, so that the chain is not walked again; the deltas held on it are dropped
        this.#abandon(walked);
        this.#deps.blame?.(blamed, abandoned ? 'delta on a chain given up on' : `delta on a chain ${last === 'gap-too-large' ? `of more than ${this.#tuning.maxGapFill} missing ancestors` : 'whose ancestors no peer has'}`);
      }
      if (abandoned) {
        // no catch-up: the state is where it was, only that chain does not connect to it
        hint = undefined;
        continue;
      }
      this.#failFill(undefined, missing.length, last, 0, 0, 0, false);
      return;
    }
  }

  /** Remembers a walked chain (ids without a bound get their held children's) and drops what hangs on it. */
  #abandon(walked: WalkedId[]): void {
    const childIndex = new Map<string, number>();
    for (const d of this.#dag.heldDeltas()) {
      for (const p of d.parents) {
        const k = toHex(p);
        childIndex.set(k, Math.min(childIndex.get(k) ?? Infinity, d.logIndex));
      }
    }
    this.#chains.abandon(walked.map((w) => ({ id: w.id, below: w.below ?? childIndex.get(toHex(w.id)) })));
    this.#dropAbandoned();
  }

  /** Drops held deltas that hang on a chain given up on (and so, in turn, their children). */
  #dropAbandoned(): void {
    for (;;) {
      const doomed = this.#dag.heldDeltas().filter((d) => this.#chains.hangs(d));
      if (doomed.length === 0) break;
      const dropped = this.#dag.drop(doomed.map((d) => d.id));
      for (const id of dropped) this.#buffer.delete(id);
      this.#stats.abandoned += dropped.length;
    }
    this.#emitPending();
  }

  #failFill(peer: string | undefined, missing: number, reason: CatchUpReason, fetched: number, rounds: number, offences: number, emit = true): void {
    if (emit) this.#deps.emit({ type: 'gapFill', detail: { phase: 'failed', peer, missing, fetched, rounds, reason, offences } });
    this.#nextFillAt = this.#now() + this.#fillBackoff;
    this.#fillBackoff = Math.min(GAP_RETRY_MAX_MS, this.#fillBackoff * 2);
    this.#requestCatchUp(reason);
  }

  // ---- expiry -------------------------------------------------------------------------------

  /** Held deltas older than `pendingTimeoutMs` make the follower catch up (then they are dropped). */
  checkExpired(): boolean {
    if (this.#mode !== 'live' || this.#closed) return false;
    if (this.#waitedTooLong().length === 0) return false;
    this.#requestCatchUp('pending-expired');
    return true;
  }

  /**
   * Held deltas older than the timeout that still wait for a parent. Ready ones are only queued
   * behind the apply loop (a burst after a pause or a sync): they are not stuck.
   */
  #waitedTooLong(): VerifiedDelta[] {
    const old = this.#dag.expired(this.#now(), this.#tuning.pendingTimeoutMs);
    if (old.length === 0) return old;
    const ready = new Set(this.#dag.ready().map((d) => toHex(d.id)));
    return old.filter((d) => !ready.has(toHex(d.id)));
  }

  #armExpiry(): void {
    if (this.#expiryTimer || this.#dag.pendingCount === 0 || this.#closed) return;
    this.#expiryTimer = this.#setTimer(() => {
      this.#expiryTimer = undefined;
      this.checkExpired();
      this.#armExpiry();
    }, Math.max(250, this.#tuning.pendingTimeoutMs / 4));
  }

  // ---- events -------------------------------------------------------------------------------

  #emitLive(reason: LiveStateEvent['reason']): void {
    const p = this.#position;
    this.#deps.emit({
      type: 'live',
      detail: { mode: this.#mode, reason, root: p?.root, seq: p?.seq, logSize: p?.logSize ?? 0, applied: this.#applied, catchUps: this.#catchUps, timings: { ...this.#timings }, warm: this.#warmAfter === null, unstored: this.#unstored },
    });
  }

  #emitPending(): void {
    if (this.#pendingEventScheduled) return;
    this.#pendingEventScheduled = true;
    queueMicrotask(() => {
      this.#pendingEventScheduled = false;
      this.#deps.emit({ type: 'pending', detail: { count: this.#dag.pendingCount, bytes: this.#dag.pendingBytes, ...this.#stats } });
    });
  }
}

const turn = typeof MessageChannel === 'function' ? new MessageChannel() : undefined;
const waiting: (() => void)[] = [];
if (turn) {
  turn.port1.onmessage = () => waiting.shift()?.();
  // Node: the port must not keep the process alive
  (turn.port1 as { unref?: () => void }).unref?.();
  (turn.port2 as { unref?: () => void }).unref?.();
}

/** Resolves in a later turn of the event loop (a message, not a timer: timers are clamped to 4 ms when nested). */
function nextTurn(): Promise<void> {
  if (!turn) return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    waiting.push(r);
    turn.port2.postMessage(0);
  });
}
