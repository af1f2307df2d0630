/**
 * The state sync engine (docs/sync.md) as an explicit state machine, after commonware's
 * `Engine::step`: `start(now)` and `step(event, now)` return the actions the caller must carry
 * out. No network, storage or clock in here; `driver.ts` runs it.
 *
 * Split of work with the driver: the engine decides what to ask whom (work queue, peers),
 * what a verified answer means (which range is now at which root, what is left), what to
 * persist (progress ops, written in the same batch as the data), when a target change makes
 * work stale, when to cancel, penalise, ban, back off, and when the sync is done or failed.
 * The driver fetches, and checks each answer against the local state (`verify.ts`, which needs
 * the store) before handing the outcome in as a `response` event.
 *
 * - Each work item is tagged with the revision of its local keys, so an answer for an older
 *   target is applied as what it is, an item at that older root, and caught up later with a
 *   change proof: never as if it were for the new target. In-flight requests for one of the
 *   last `maxRetainedRoots` targets are kept; older ones are cancelled.
 * - A target that returns to a root an item is already at (A→B→A) leaves that item done: it is
 *   never requested, so upstream's livelock cannot occur.
 * - Hedging: a request to a peer other than the fastest that is still unanswered after
 *   `PeerBook.hedgeAfter` is sent again to a peer known to be faster; the first valid answer
 *   wins and the other request is cancelled (its peer charged the time it took, as a timeout).
 *   Both carry the work item's id in the queue (`queueId`, the first request's id), so the item
 *   is released only when neither can answer any more.
 * - Completion: nothing queued or in flight (and no more target updates expected); a full
 *   sync then requires the local root to equal the target (`FinishedWithUnexpectedRoot`).
 *
 * One file: the engine is one state machine, and every event handler reads and changes the same
 * state (the outstanding requests, the retained targets, the work queue, the peer book); the
 * parts that stand alone are beside it (work-queue.ts, peers.ts, requests.ts, verify.ts,
 * progress.ts).
 */
import { compareBytes, equalBytes, toHex } from '../../core/bytes.ts';
import { FinishedWithUnexpectedRoot, SyncStalled } from '../../core/errors.ts';
import type { BatchOp } from '../../core/store.ts';
import { EMPTY_ROOT, type KeyChange } from '../../core/types.ts';
import { PeerBook, type PeerStats } from '../peers.ts';
import { canonicalSegments, progressOps, type Segment, type StoredProgress } from './stored-progress.ts';
import { compareEnd, EMPTY_KEY, normaliseRanges, rangeWidth, requestEnd, type KeyRange } from './ranges.ts';
import type { StateRequest } from './requests.ts';
import type { ResponseOutcome } from './verify.ts';
import { LEFT, STALE, WorkQueue } from './work-queue.ts';
import { canonicalParts, canonicalRangeRequest } from './plan.ts';

export interface StateSyncConfig {
  target: Uint8Array;
  /** Ids of the sources to ask. */
  peers: readonly string[];
  /** The local trie's root now. */
  localRoot: Uint8Array;
  /** Key ranges to sync (half-open); default: the whole key space (a full sync). */
  scope?: readonly KeyRange[];
  /** Progress found in the store. */
  stored?: StoredProgress;
  /** Most requests in flight (default 4). */
  concurrency?: number;
  /** Key limit per request (default 2048, the most a server gives). */
  keyLimit?: number;
  /** Byte limit per request (default 2,093,056, docs/proofs.md#serving). */
  bytesLimit?: number;
  /** Targets whose in-flight answers are still accepted, the current one included (default 3). */
  maxRetainedRoots?: number;
  /** Failed or invalid attempts at one item without progress before the sync fails (default 32). */
  maxAttempts?: number;
  /** Invalid proofs before a peer is banned (default 3). */
  banAfter?: number;
  maxInFlightPerPeer?: number;
  /** Hedge slow requests to a faster peer (default true). */
  hedge?: boolean;
  /** Whether target updates may still arrive: then the sync waits at the target (default false). */
  acceptsUpdates?: boolean;
  /**
   * A checkpoint root (docs/sync.md#canonical-plan): while it is the target, never-fetched key
   * ranges are fetched by the canonical plan (plan.ts: its fixed parts and limits, no midpoint
   * splits, resumed from each answer alone), so every client syncing to it sends the same
   * requests. `keyLimit` and `bytesLimit` then apply to the other requests only.
   */
  canonicalRoot?: Uint8Array;
}

export type StateSyncEvent =
  | { type: 'response'; requestId: number; outcome: ResponseOutcome; elapsedMs: number; bytes: number }
  /**
   * The request failed without an answer (error, timeout, refusal) after `elapsedMs` (default:
   * since it was sent); `timedOut` when it ran past its deadline.
   */
  | { type: 'failure'; requestId: number; error: unknown; elapsedMs?: number; timedOut?: boolean; notServed?: boolean }
  | { type: 'newTarget'; root: Uint8Array }
  | { type: 'updatesClosed' }
  /** Time passed (after a `wake`). */
  | { type: 'tick' }
  /** A peer connected after the sync started (or came back): it takes work from now on. */
  | { type: 'peerAdded'; peer: string }
  /** A peer went away: its requests in flight are cancelled and their work queued again, without an attempt counted. */
  | { type: 'peerRemoved'; peer: string }
  | { type: 'abort'; reason?: unknown };

export type SyncPhase = 'fetching' | 'catching-up' | 'at-target' | 'done' | 'failed';

export interface StateSyncProgress {
  phase: SyncPhase;
  target: Uint8Array;
  localRoot: Uint8Array;
  /** Key-values and key changes received in verified answers. */
  keyValuesReceived: number;
  /** Estimated bytes of all answers received, valid or not. */
  bytesReceived: number;
  requests: number;
  /** Requests sent again to a faster peer because the first went unanswered too long. */
  hedges: number;
  /** Done ranges (after merging) and the fraction of the synced key space they cover. */
  rangesDone: number;
  fractionDone: number;
  inFlight: number;
  queued: number;
  peersUsed: number;
  peersBanned: number;
  proofsRejected: number;
  failures: number;
  /** The newest failure without an answer, as `peer: Name: message` (what a stalled sync is waiting out). */
  lastFailure?: string;
  targetUpdates: number;
  /**
   * The key space as ranges in order, each done at the target, at an older root, or not
   * fetched (merged neighbours; at most `maxSegments`, so a picture of progress stays cheap).
   */
  segments: ProgressSegment[];
}

export interface ProgressSegment {
  start: Uint8Array | undefined;
  end: Uint8Array | undefined;
  state: 'target' | 'older' | 'none';
}

const MAX_PROGRESS_SEGMENTS = 256;

function describeFailure(peer: string | undefined, error: unknown, elapsedMs: number): string {
  const e = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `${peer ?? 'local'}: ${e.slice(0, 200)} (after ${Math.round(elapsedMs)} ms)`;
}

export type StateSyncAction =
  | { type: 'request'; request: StateRequest }
  | { type: 'cancel'; requestId: number }
  /** Write `changes` (as verified for `requestId`) and `progress` in one atomic batch. */
  | { type: 'write'; requestId: number; changes: KeyChange[]; progress: BatchOp[] }
  | { type: 'penalise'; peer: string; reason: Error; banned: boolean }
  /** Deliver a `tick` at time `at`. */
  | { type: 'wake'; at: number }
  | { type: 'progress'; progress: StateSyncProgress }
  | { type: 'done'; target: Uint8Array; root: Uint8Array }
  | { type: 'failed'; error: unknown };

export type StateSyncStatus = 'syncing' | 'done' | 'failed';

/** The whole key space. */
export const FULL_SCOPE: readonly KeyRange[] = [{ start: EMPTY_KEY, end: undefined }];

function positive(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`expected ${what} to be a positive integer, got ${v}`);
  return v;
}

function checkRoot(root: Uint8Array, what: string): void {
  if (!(root instanceof Uint8Array) || root.length !== 32) throw new TypeError(`expected 32-byte ${what}, got ${root?.length}`);
}

/**
 * The initial work: the scope, cut into the stored segments where they overlap it. Parts of
 * the scope with no stored progress hold the local trie's keys, so they are at `localRoot`
 * (a server that does not know that root answers with a range proof); in an empty store they
 * are never-fetched.
 */
export function initialSegments(scope: readonly KeyRange[], stored: readonly Segment[], localRoot: Uint8Array): Segment[] {
  const gapRoot = equalBytes(localRoot, EMPTY_ROOT) ? undefined : localRoot;
  const out: Segment[] = [];
  for (const r of scope) {
    let cursor: Uint8Array | undefined = r.start;
    for (const s of stored) {
      if (cursor === undefined) break;
      // intersection of s with [cursor, r.end)
      if (compareEnd(s.end, cursor) <= 0 && s.end !== undefined) continue;
      if (r.end !== undefined && compareBytes(s.start, r.end) >= 0) break;
      const from = compareBytes(s.start, cursor) > 0 ? s.start : cursor;
      if (compareBytes(from, cursor) > 0) out.push({ start: cursor, end: from, root: gapRoot });
      const to = compareEnd(s.end, r.end) < 0 ? s.end : r.end;
      out.push({ start: from, end: to, root: s.root });
      cursor = to;
    }
    if (cursor !== undefined && (r.end === undefined || compareBytes(cursor, r.end) < 0)) out.push({ start: cursor, end: r.end, root: gapRoot });
  }
  return out;
}

/** `segments` with the never-fetched ones cut at the canonical parts' bounds (plan.ts). */
function cutToParts(segments: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    if (s.root !== undefined) out.push(s);
    else for (const p of canonicalParts([s])) out.push({ start: p.start, end: p.end, root: undefined });
  }
  return out;
}

interface Outstanding {
  request: StateRequest;
  sentAt: number;
  /** The id the work queue knows the item by: the first request's (a hedge shares it). */
  queueId: number;
  /** The other request for the same item (a hedge, or the request it hedges), in flight. */
  twin: number | undefined;
}

/**
 * The engine. Run the actions of `start(now)`, then feed each event to `step(event, now)` and
 * run the actions it returns, in order.
 *
 * @example
 * const engine = new StateSyncEngine({ target, peers: ['a', 'b'], localRoot: trie.root });
 * let actions = engine.start(clock.now());
 * // for each `request`: fetch, verify (verify.ts), then actions = engine.step({ type: 'response', ... }, clock.now())
 */
export class StateSyncEngine {
  readonly #concurrency: number;
  readonly #keyLimit: number;
  readonly #bytesLimit: number;
  readonly #maxRetained: number;
  readonly #maxAttempts: number;
  readonly #hedge: boolean;
  readonly #canonicalRoot: Uint8Array | undefined;
  readonly #fullSync: boolean;
  readonly #scopeWidth: number;
  readonly #queue: WorkQueue;
  readonly #peers: PeerBook;
  readonly #requests = new Map<number, Outstanding>();
  #target: Uint8Array;
  /** Earlier targets whose answers are still accepted, newest last. */
  #retained: Uint8Array[] = [];
  #localRoot: Uint8Array;
  #persisted: Segment[];
  #persistedTarget: Uint8Array | undefined;
  #nextId = 1;
  #status: StateSyncStatus = 'syncing';
  #started = false;
  #updatesOpen: boolean;
  #wakeAt: number | undefined;
  #atTargetReported = false;
  /**
   * Per kind of request, the answers taken and the keys (or changes) they held over the key-space
   * width they covered: how many the next answers of that kind hold (`#keepWhole`). A change
   * proof holds what changed, a range proof the whole state: they differ by orders of magnitude.
   */
  readonly #density = { range: { answers: 0, keys: 0, width: 0 }, change: { answers: 0, keys: 0, width: 0 } };
  readonly #used = new Set<string>();
  #lastFailure: string | undefined;
  #stats = { keyValuesReceived: 0, bytesReceived: 0, requests: 0, hedges: 0, proofsRejected: 0, failures: 0, targetUpdates: 0 };

  constructor(config: StateSyncConfig) {
    checkRoot(config.target, 'target root');
    checkRoot(config.localRoot, 'local root');
    this.#concurrency = positive(config.concurrency ?? 4, 'concurrency');
    this.#keyLimit = positive(config.keyLimit ?? 2048, 'keyLimit');
    this.#bytesLimit = positive(config.bytesLimit ?? 2_093_056, 'bytesLimit');
    this.#maxRetained = positive(config.maxRetainedRoots ?? 3, 'maxRetainedRoots');
    this.#maxAttempts = positive(config.maxAttempts ?? 32, 'maxAttempts');
    this.#target = config.target.slice();
    this.#localRoot = config.localRoot.slice();
    this.#updatesOpen = config.acceptsUpdates ?? false;
    this.#hedge = config.hedge ?? true;
    const scope = normaliseRanges((config.scope ?? FULL_SCOPE).map((r) => ({ start: r.start, end: r.end })));
    if (scope.length === 0) throw new RangeError('expected at least one non-empty key range to sync');
    this.#fullSync = scope.length === 1 && scope[0].start.length === 0 && scope[0].end === undefined;
    this.#scopeWidth = scope.reduce((w, r) => w + rangeWidth(r), 0);
    const stored = config.stored?.segments ?? [];
    this.#persisted = canonicalSegments(stored);
    this.#persistedTarget = config.stored?.target;
    if (config.canonicalRoot !== undefined) checkRoot(config.canonicalRoot, 'canonical root');
    this.#canonicalRoot = config.canonicalRoot?.slice();
    let segments = initialSegments(scope, stored, this.#localRoot);
    if (this.#canonicalRoot) segments = cutToParts(segments);
    this.#queue = new WorkQueue(segments, (s) => (s.root === undefined ? LEFT : STALE));
    this.#peers = new PeerBook(config.peers, { banAfter: config.banAfter, maxInFlightPerPeer: config.maxInFlightPerPeer, share: this.#concurrency });
  }

  get status(): StateSyncStatus {
    return this.#status;
  }

  get target(): Uint8Array {
    return this.#target.slice();
  }

  get localRoot(): Uint8Array {
    return this.#localRoot.slice();
  }

  /** The work items, for inspection (sorted, non-overlapping). */
  get items(): readonly Readonly<Segment & { requestId: number | undefined }>[] {
    return this.#queue.items;
  }

  get peers(): PeerStats[] {
    return this.#peers.all();
  }

  outstanding(): StateRequest[] {
    return [...this.#requests.values()].map((o) => o.request);
  }

  /** The first requests. Call once. */
  start(now: number): StateSyncAction[] {
    if (this.#started) throw new Error('StateSyncEngine.start() called twice');
    this.#started = true;
    const actions: StateSyncAction[] = [];
    this.#advance(actions, now);
    return actions;
  }

  /** Handles one event and returns the actions to carry out, in order. */
  step(event: StateSyncEvent, now: number): StateSyncAction[] {
    const actions: StateSyncAction[] = [];
    if (!this.#started) throw new Error('StateSyncEngine.step() before start()');
    if (this.#status !== 'syncing') return actions;
    switch (event.type) {
      case 'response':
        this.#onResponse(event, now, actions);
        break;
      case 'failure': {
        const o = this.#take(event.requestId);
        if (!o) return actions;
        this.#stats.failures++;
        this.#lastFailure = describeFailure(o.request.peer, event.error, event.elapsedMs ?? now - o.sentAt);
        if (o.request.peer !== undefined && event.notServed) {
          // not the range's fault: it goes back without an attempt, the peer leaves the sources
          this.#peers.retire(o.request.peer, o.sentAt);
          this.#release(o, now, false);
          break;
        }
        if (o.request.peer !== undefined) {
          this.#peers.failed(o.request.peer, now, event.elapsedMs ?? now - o.sentAt, { timedOut: event.timedOut, startedAt: o.sentAt });
        }
        if (!this.#release(o, now, true) && this.#checkAttempts(o.request, event.error, actions)) return actions;
        break;
      }
      case 'newTarget':
        this.#onNewTarget(event.root, now, actions);
        break;
      case 'updatesClosed':
        this.#updatesOpen = false;
        break;
      case 'tick':
        if (this.#wakeAt !== undefined && this.#wakeAt <= now) this.#wakeAt = undefined;
        break;
      case 'peerAdded':
        this.#peers.add(event.peer);
        break;
      case 'peerRemoved':
        if (this.#peers.get(event.peer) === undefined) break;
        this.#cancelPeer(event.peer, now, actions);
        this.#peers.left(event.peer);
        break;
      case 'abort':
        this.#cancelAll(actions);
        this.#fail(actions, event.reason ?? new DOMException('The sync was aborted', 'AbortError'));
        return actions;
    }
    if (this.#status === 'syncing') this.#advance(actions, now);
    return actions;
  }

  #take(requestId: number): Outstanding | undefined {
    const o = this.#requests.get(requestId);
    if (o) this.#requests.delete(requestId);
    return o;
  }

  /**
   * `o` (taken) can no longer answer: its item goes back to the queue, unless its twin is still
   * in flight and may answer for it. Returns true when the twin holds the item.
   */
  #release(o: Outstanding, now: number, failed: boolean): boolean {
    const twin = o.twin === undefined ? undefined : this.#requests.get(o.twin);
    if (twin) {
      twin.twin = undefined;
      return true;
    }
    this.#queue.release(o.queueId, now, failed);
    return false;
  }

  /** Cancels the twin of `o` (which answered validly): its peer is charged the time it waited. */
  #cancelTwin(o: Outstanding, now: number, actions: StateSyncAction[]): void {
    if (o.twin === undefined) return;
    const twin = this.#take(o.twin);
    o.twin = undefined;
    if (!twin) return;
    actions.push({ type: 'cancel', requestId: twin.request.id });
    if (twin.request.peer === undefined) return;
    // The hedge lost: its peer only took longer than the winner, which is no fault of its own.
    if (twin.queueId !== twin.request.id) this.#peers.released(twin.request.peer, twin.sentAt);
    // The hedged request lost: its peer left it unanswered for this long, as good as a timeout.
    else this.#peers.failed(twin.request.peer, now, now - twin.sentAt, { timedOut: true, startedAt: twin.sentAt });
  }

  /** A banned or departed peer's requests still in flight are cancelled: nothing more is taken from it. */
  #cancelPeer(peer: string, now: number, actions: StateSyncAction[]): void {
    for (const [id, o] of [...this.#requests]) {
      if (o.request.peer !== peer) continue;
      this.#requests.delete(id);
      this.#peers.released(peer, o.sentAt);
      this.#release(o, now, false);
      actions.push({ type: 'cancel', requestId: id });
    }
  }

  #onResponse(event: Extract<StateSyncEvent, { type: 'response' }>, now: number, actions: StateSyncAction[]): void {
    const o = this.#take(event.requestId);
    if (!o) return; // cancelled: its answer is not ours to apply
    const { request } = o;
    this.#stats.bytesReceived += event.bytes;
    const outcome = event.outcome;
    if (!outcome.valid) {
      this.#stats.proofsRejected++;
      let banned = false;
      if (request.peer !== undefined) {
        banned = this.#peers.penalise(request.peer, now, o.sentAt);
        actions.push({ type: 'penalise', peer: request.peer, reason: outcome.error, banned });
      }
      if (!this.#release(o, now, true)) this.#checkAttempts(request, outcome.error, actions);
      if (banned && this.#status === 'syncing') this.#cancelPeer(request.peer!, now, actions);
      return;
    }
    this.#cancelTwin(o, now, actions);
    if (request.peer !== undefined) {
      this.#peers.succeeded(request.peer, event.elapsedMs, event.bytes, o.sentAt);
      this.#used.add(request.peer);
    }
    this.#stats.keyValuesReceived += outcome.received;
    const density = request.kind === 'change' ? this.#density.change : this.#density.range;
    density.answers++;
    density.keys += outcome.received;
    density.width += rangeWidth({ start: request.start, end: outcome.resume ?? request.end });
    this.#queue.complete(o.queueId, request.root, outcome.resume, this.#target);
    this.#localRoot = outcome.rootAfter;
    const next = canonicalSegments(this.#queue.segments());
    const progress = progressOps(this.#persisted, next, this.#target, this.#persistedTarget);
    this.#persisted = next;
    this.#persistedTarget = this.#target;
    actions.push({ type: 'write', requestId: request.id, changes: outcome.changes, progress });
    this.#pushProgress(actions);
  }

  /** True when the sync failed because an item ran out of attempts. */
  #checkAttempts(request: StateRequest, error: unknown, actions: StateSyncAction[]): boolean {
    const item = this.#queue.items.find((i) => equalBytes(i.start, request.start));
    if (!item || item.attempts < this.#maxAttempts) return false;
    this.#cancelAll(actions);
    this.#fail(
      actions,
      new SyncStalled(`no valid answer for a key range after ${item.attempts} attempts`, { start: toHex(request.start), attempts: item.attempts }, { cause: error }),
    );
    return true;
  }

  #onNewTarget(root: Uint8Array, now: number, actions: StateSyncAction[]): void {
    checkRoot(root, 'target root');
    if (equalBytes(root, this.#target)) return;
    this.#stats.targetUpdates++;
    const previous = this.#target;
    const keepOld = this.#maxRetained - 1;
    this.#retained = keepOld === 0 ? [] : [...this.#retained.filter((r) => !equalBytes(r, root)), previous].slice(-keepOld);
    this.#target = root.slice();
    this.#atTargetReported = false;
    // Answers in flight for targets no longer retained are dropped, their items requeued as they were.
    const keep = (r: Uint8Array) => equalBytes(r, root) || this.#retained.some((x) => equalBytes(x, r));
    for (const [id, o] of [...this.#requests]) {
      if (keep(o.request.root) || !this.#requests.has(id)) continue;
      this.#requests.delete(id);
      if (o.request.peer !== undefined) this.#peers.released(o.request.peer, o.sentAt);
      actions.push({ type: 'cancel', requestId: id });
      // a twin asks for the same root: it goes too
      const twin = o.twin === undefined ? undefined : this.#take(o.twin);
      if (twin) {
        if (twin.request.peer !== undefined) this.#peers.released(twin.request.peer, twin.sentAt);
        actions.push({ type: 'cancel', requestId: twin.request.id });
      }
      this.#queue.release(o.queueId, now, false);
    }
    this.#queue.retarget(previous, this.#target);
    this.#pushProgress(actions);
  }

  #cancelAll(actions: StateSyncAction[]): void {
    const released = new Set<number>();
    for (const [id, o] of [...this.#requests]) {
      this.#requests.delete(id);
      if (o.request.peer !== undefined) this.#peers.released(o.request.peer, o.sentAt);
      if (!released.has(o.queueId)) this.#queue.release(o.queueId, 0, false);
      released.add(o.queueId);
      actions.push({ type: 'cancel', requestId: id });
    }
  }

  /** Items in flight (a request and its hedge hold one slot). */
  #slotsUsed(): number {
    let n = 0;
    for (const [id, o] of this.#requests) if (o.twin === undefined || o.queueId === id) n++;
    return n;
  }

  #fail(actions: StateSyncAction[], error: unknown): void {
    this.#status = 'failed';
    this.#pushProgress(actions);
    actions.push({ type: 'failed', error });
  }

  /** Sends what can be sent, then checks for completion or a stall. */
  #advance(actions: StateSyncAction[], now: number): void {
    const empty = equalBytes(this.#target, EMPTY_ROOT);
    let slots = this.#slotsUsed();
    while (slots < this.#concurrency) {
      const peer = empty ? undefined : this.#peers.choose(now);
      if (!empty && peer === undefined) break;
      const item = this.#queue.next(this.#target, now, this.#concurrency, (i) => this.#keepWhole(i));
      if (!item) break;
      const request = this.#buildRequest(item, peer);
      this.#queue.assign(item, request.id);
      if (peer !== undefined) this.#peers.started(peer, now);
      this.#requests.set(request.id, { request, sentAt: now, queueId: request.id, twin: undefined });
      this.#stats.requests++;
      slots++;
      actions.push({ type: 'request', request });
    }
    const hedgeAt = this.#hedgeSlow(actions, now);
    if (this.#queue.isComplete(this.#target)) {
      if (this.#updatesOpen) {
        if (!this.#atTargetReported) this.#pushProgress(actions);
        return;
      }
      if (this.#fullSync && !equalBytes(this.#localRoot, this.#target)) {
        this.#fail(
          actions,
          new FinishedWithUnexpectedRoot(`sync finished at root ${toHex(this.#localRoot)}, expected ${toHex(this.#target)}`, {
            root: toHex(this.#localRoot),
            target: toHex(this.#target),
          }),
        );
        return;
      }
      this.#status = 'done';
      this.#pushProgress(actions);
      actions.push({ type: 'done', target: this.#target.slice(), root: this.#localRoot.slice() });
      return;
    }
    if (hedgeAt !== undefined) this.#wake(hedgeAt, actions);
    if (slots >= this.#concurrency || this.#queue.queued(this.#target) === 0) return;
    // Work is waiting: for a peer to come out of backoff, or for an item's retry delay.
    if (!empty && this.#peers.active === 0) {
      if (this.#requests.size > 0) return; // answers still due, perhaps valid
      this.#fail(actions, new SyncStalled('no peer is left to ask: each was banned for invalid answers or does not serve the state protocols', { peers: this.#peers.all().map((p) => p.id) }));
      return;
    }
    const peerAt = empty || this.#peers.choose(now) !== undefined ? now : this.#peers.nextAvailable(now);
    const itemAt = this.#queue.hasReady(this.#target, now) ? now : this.#queue.nextReady(this.#target, now);
    if (peerAt === undefined || itemAt === undefined) return; // a pending answer frees what is needed
    const at = Math.max(peerAt, itemAt);
    if (at > now) this.#wake(at, actions);
  }

  #wake(at: number, actions: StateSyncAction[]): void {
    if (this.#wakeAt === undefined || at < this.#wakeAt) {
      this.#wakeAt = at;
      actions.push({ type: 'wake', at });
    }
  }

  /**
   * Sends a hedge for every request overdue at its peer's hedge delay, to a peer known to be
   * faster. Returns when the next request becomes due (undefined: none will without news).
   */
  #hedgeSlow(actions: StateSyncAction[], now: number): number | undefined {
    if (!this.#hedge) return undefined;
    let next: number | undefined;
    let available: number | undefined | null = null; // when a backed-off peer is usable again (looked up once)
    for (const o of [...this.#requests.values()]) {
      const { request } = o;
      if (request.kind === 'clear' || o.twin !== undefined || o.queueId !== request.id) continue;
      const after = this.#peers.hedgeAfter(request.peer, now);
      if (after === undefined) {
        // no peer known to be faster is usable now: look again when a backed-off one is, since
        // no answer may come to wake the engine before this request's own deadline
        if (available === null) available = this.#peers.nextAvailable(now);
        if (available !== undefined) next = next === undefined ? available : Math.min(next, available);
        continue;
      }
      const due = o.sentAt + after;
      if (due > now) {
        next = next === undefined ? due : Math.min(next, due);
        continue;
      }
      const peer = this.#peers.hedgeTo(request.peer, now, now - o.sentAt);
      if (peer === undefined) continue; // a later answer or tick brings one
      const hedge: StateRequest = { ...request, id: this.#nextId++, peer } as StateRequest;
      this.#peers.started(peer, now);
      this.#requests.set(hedge.id, { request: hedge, sentAt: now, queueId: o.queueId, twin: request.id });
      o.twin = hedge.id;
      this.#stats.requests++;
      this.#stats.hedges++;
      actions.push({ type: 'request', request: hedge });
    }
    return next;
  }

  /**
   * Items the queue must not split now: the canonical plan's parts, and items narrower than one
   * answer of their kind likely covers at the density seen so far. An item at an older root
   * (change-proof work) is not split before some change proof has shown how dense the changes
   * are: a catch-up's changes are few next to the state (100 missed commits of 10 keys are 1,000
   * changes, one answer of the 2,048 a request may hold), so the first request asks for the
   * whole item, and an answer cut short at the key limit gives the density the rest is split at.
   * Split blindly into twice the concurrency, that catch-up took 8 answers in two rounds, each
   * verified in turn with its own four waves of IndexedDB reads down the trie. Measured, a
   * browser reloaded 100 commits behind (`VERIFIED=0 TRACE=0 node bench/startup-trace.ts 200000
   * 3`, worker marks from the sync's start to the `at-target` write being durable, three runs
   * each, back to back, this loaded 2-core machine): 8 answers 1,655 / 1,561 / 2,011 ms, one
   * answer 905 / 1,079 / 862 ms; navigation to live at the head 2,883 / 3,168 / 3,581 ms
   * against 2,080 / 2,742 / 2,400 ms. At 20,000 keys: 1,028 / 797 / 838 ms against 336 / 540 /
   * 831 ms. A second 200k pair, the machine busier (load average 6-10, the node's first answer
   * up to 835 ms): 2,038 / 2,180 / 1,680 ms against 2,176 / 1,717 / 2,126 ms, no difference
   * there; the single answer's own costs were the waves of node-record page reads (~300 ms, the
   * trie's level-3 and 4 records are spread over every node page), applying and hashing, and its
   * write (~450 ms). A second 20k pair: 492 / 580 / 605 ms against 478 / 523 / 334 ms
   * (navigation to live 1,355 / 1,382 / 1,380 against 1,274 / 1,364 / 1,287 ms). A catch-up of
   * more changes than one answer holds pays one round trip more.
   */
  #keepWhole(item: Readonly<Segment>): boolean {
    // never-fetched items at the canonical root stay the plan's parts
    if (item.root === undefined && this.#canonical()) return true;
    // toward the empty root the work is local deletes (`clear` requests), split as range work
    const change = item.root !== undefined && !equalBytes(this.#target, EMPTY_ROOT);
    const density = change ? this.#density.change : this.#density.range;
    if (density.answers === 0) return change;
    if (density.width <= 0) return false;
    return rangeWidth(item) < (this.#keyLimit * density.width) / (density.keys + 1);
  }

  /** Whether the target is the canonical root: never-fetched ranges go by the plan. */
  #canonical(): boolean {
    return this.#canonicalRoot !== undefined && equalBytes(this.#canonicalRoot, this.#target);
  }

  #buildRequest(item: Readonly<Segment>, peer: string | undefined): StateRequest {
    const id = this.#nextId++;
    const common = { id, start: item.start, end: item.end, root: this.#target.slice() };
    if (peer === undefined) return { ...common, kind: 'clear', peer: undefined };
    if (item.root === undefined && this.#canonical()) {
      return { ...common, kind: 'range', peer, request: canonicalRangeRequest(common.root, item.start, item.end), canonical: true };
    }
    const startKey = item.start.length ? item.start : undefined;
    const endKey = requestEnd(item.end);
    if (item.root === undefined) {
      return { ...common, kind: 'range', peer, request: { rootHash: common.root, startKey, endKey, keyLimit: this.#keyLimit, bytesLimit: this.#bytesLimit } };
    }
    return {
      ...common,
      kind: 'change',
      peer,
      request: { startRootHash: item.root, endRootHash: common.root, startKey, endKey, keyLimit: this.#keyLimit, bytesLimit: this.#bytesLimit },
    };
  }

  #pushProgress(actions: StateSyncAction[]): void {
    const progress = this.progress();
    if (progress.phase === 'at-target') this.#atTargetReported = true;
    actions.push({ type: 'progress', progress });
  }

  progress(): StateSyncProgress {
    const done = this.#queue.isComplete(this.#target);
    let phase: SyncPhase;
    if (this.#status === 'failed') phase = 'failed';
    else if (this.#status === 'done') phase = 'done';
    else if (done) phase = 'at-target';
    else phase = this.#queue.items.some((i) => i.root === undefined) ? 'fetching' : 'catching-up';
    return {
      phase,
      target: this.#target.slice(),
      localRoot: this.#localRoot.slice(),
      ...this.#stats,
      lastFailure: this.#lastFailure,
      rangesDone: this.#queue.doneCount(this.#target),
      fractionDone: this.#scopeWidth > 0 ? Math.min(1, this.#queue.doneFraction(this.#target) / this.#scopeWidth) : done ? 1 : 0,
      inFlight: this.#requests.size,
      queued: this.#queue.queued(this.#target),
      peersUsed: this.#used.size,
      peersBanned: this.#peers.all().filter((p) => p.banned).length,
      segments: this.#segments(),
    };
  }

  #segments(): ProgressSegment[] {
    const out: ProgressSegment[] = [];
    for (const i of this.#queue.items) {
      const state: ProgressSegment['state'] =
        i.root === undefined ? 'none' : equalBytes(i.root, this.#target) && i.requestId === undefined ? 'target' : 'older';
      const last = out[out.length - 1];
      if (last && last.state === state) last.end = i.end;
      else out.push({ start: i.start, end: i.end, state });
    }
    if (out.length <= MAX_PROGRESS_SEGMENTS) return out;
    // Too many to draw: keep the largest runs' boundaries by merging the narrowest ones into
    // their left neighbour (what a picture at that resolution shows anyway).
    const step = Math.ceil(out.length / MAX_PROGRESS_SEGMENTS);
    const merged: ProgressSegment[] = [];
    for (let k = 0; k < out.length; k += step) {
      const group = out.slice(k, k + step);
      const state = group.some((g) => g.state === 'none') ? 'none' : group.some((g) => g.state === 'older') ? 'older' : 'target';
      merged.push({ start: group[0].start, end: group[group.length - 1].end, state });
    }
    return merged;
  }
}
