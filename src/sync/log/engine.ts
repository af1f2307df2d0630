/**
 * The log sync engine (docs/mmr.md#syncing-a-log; the shape of commonware's QMDB `sync/engine.rs`) as an
 * explicit state machine: `start()` and `step(event)` return the actions the caller must carry
 * out (fetch, cancel, apply, feedback, completion). No network, storage or clock in here; the
 * async driver (`driver.ts`) feeds it.
 *
 * - Batches of at most `fetchBatchSize` operations, up to `maxOutstanding` in flight, chosen by
 *   `findNextGap` over what is fetched and what is outstanding; applied strictly in order.
 * - With `lower > 0`, the first batch at `lower` also brings the pinned nodes, verified against
 *   the current target root only; the engine's MMR frontier starts from them.
 * - Only the frontier (the peaks) of what is applied is kept, and no operation is hashed twice:
 *   verifying a batch yields the peaks at both of its ends (`MmrRangeWitness`), and a batch
 *   whose start peaks equal the frontier moves it to its end peaks without hashing. Any other
 *   batch (one that overlaps what is applied, or disagrees with it) is appended by hashing, so
 *   the root check at `upper` sees exactly what was applied.
 * - A target update must move forward (`target.ts`). Requests before the new lower bound are
 *   cancelled; later ones are kept and verified against the root they were issued for, which
 *   is retained among the last `maxRetainedRoots`; a result whose root was evicted is dropped
 *   and the range refetched.
 * - At `upper` the engine compares the root of what it applied with the target (`RootMismatch`
 *   is a hard error). With nothing outstanding and no update to wait for it fails with
 *   `SyncStalled` rather than hang.
 * - An invalid response yields a `penalise` action and the range is refetched, up to
 *   `maxRetries` times per range; a source that takes no feedback cannot change its answer,
 *   so an invalid response from it is terminal (`InvalidLogResponse`).
 *
 * One file: the engine is one state machine, and every event handler reads and changes the same
 * state (the outstanding requests, the retained roots, the MMR frontier); its pure parts are
 * beside it (gaps.ts, requests.ts, target.ts).
 */
import { equalBytes } from '../../core/bytes.ts';
import { ProofsyncError, reasonError, RootMismatch, SyncStalled } from '../../core/errors.ts';
import { InvalidMmrProof, MmrFrontier, verifyPinnedNodes, verifyRangeProof, type Digest, type MmrRangeProof, type MmrRangeWitness } from '../../core/mmr.ts';
import { findNextGap, type LocationRange } from './gaps.ts';
import { OutstandingRequests, type LogRequest } from './requests.ts';
import { checkTarget, targetUpdateRejection, type InvalidTargetUpdate, type LogSyncTarget } from './target.ts';

export const INVALID_RESPONSE_REASONS = [
  'EmptyBatch',
  'TooManyOps',
  'BeyondLogSize',
  'WrongShape',
  'MissingPinnedNodes',
  'InvalidProof',
  'InvalidPinnedNodes',
] as const;
export type InvalidResponseReason = (typeof INVALID_RESPONSE_REASONS)[number];

/** A response failed validation. Terminal only when the source takes no feedback. */
export const InvalidLogResponse = reasonError(ProofsyncError, 'InvalidLogResponse', 'invalid log response', INVALID_RESPONSE_REASONS);
export type InvalidLogResponse = InstanceType<typeof InvalidLogResponse>;

export interface LogSyncConfig {
  target: LogSyncTarget;
  /** Most operations asked for per request. */
  fetchBatchSize: number;
  /** Most requests in flight. */
  maxOutstanding: number;
  /** Old roots kept to verify requests issued before a target update (default 3). */
  maxRetainedRoots?: number;
  /** Failed or invalid attempts per range before it is given up (default 3). */
  maxRetries?: number;
  /** Stay at a reached target until a `finish` event (default false). */
  holdCompletion?: boolean;
  /** Whether target updates may still arrive (default false); cleared by `updatesClosed`. */
  acceptsUpdates?: boolean;
}

export type LogSyncEvent =
  | {
      type: 'response';
      id: number;
      ops: Uint8Array[];
      proof: MmrRangeProof;
      pinned?: Uint8Array[];
      /** Whether the source listens to feedback (default true). */
      acceptsFeedback?: boolean;
    }
  | { type: 'fetchFailed'; id: number; error: unknown }
  | { type: 'targetUpdate'; target: LogSyncTarget }
  | { type: 'updatesClosed' }
  | { type: 'finish' };

export type LogSyncAction =
  | { type: 'fetch'; request: LogRequest }
  | { type: 'cancel'; id: number }
  /** The response to `id` verified. */
  | { type: 'accept'; id: number }
  /** The response to `id` was invalid: penalise the peer that sent it. */
  | { type: 'penalise'; id: number; error: InvalidLogResponse }
  /**
   * Append `ops` at locations `start..`; always contiguous with the previous apply. `peaks`:
   * the MMR peaks over `[0, start + ops.length)` after it (for a stored run's frontier).
   */
  | { type: 'apply'; start: number; ops: Uint8Array[]; peaks: Digest[] }
  /** Discard every applied operation; applies restart at `lower`. */
  | { type: 'reset'; lower: number }
  | { type: 'targetReached'; target: LogSyncTarget; root: Uint8Array }
  | { type: 'targetRejected'; target: LogSyncTarget; error: InvalidTargetUpdate }
  | { type: 'done'; target: LogSyncTarget; root: Uint8Array }
  | { type: 'failed'; error: Error };

export type LogSyncStatus = 'syncing' | 'atTarget' | 'done' | 'failed';

interface FetchedBatch {
  ops: Uint8Array[];
  pinned?: Uint8Array[];
  /** The peaks at both ends of the batch, from its verification. */
  witness: MmrRangeWitness;
}

interface Failure {
  count: number;
  lastError: unknown;
}

/**
 * The engine. Create it, run the actions of `start()`, then feed each event to `step` and run
 * the actions it returns, in order.
 *
 * @example
 * const engine = new LogSyncEngine({ target, fetchBatchSize: 64, maxOutstanding: 4 });
 * let actions = engine.start();
 * // for each `fetch` action: source.fetch(...) then actions = engine.step({ type: 'response', ... })
 */
export class LogSyncEngine {
  readonly #fetchBatchSize: number;
  readonly #maxOutstanding: number;
  readonly #maxRetainedRoots: number;
  readonly #maxRetries: number;
  readonly #hold: boolean;
  #target: LogSyncTarget;
  /** Targets replaced by updates, oldest first, at most `maxRetainedRoots`. */
  #retained: LogSyncTarget[] = [];
  readonly #requests = new OutstandingRequests();
  /** Verified batches not yet applied, by start. */
  readonly #fetched = new Map<number, FetchedBatch>();
  /** Next location to apply. */
  #applied: number;
  /** MMR peaks of what was applied; undefined until the pinned nodes at the lower bound are in. */
  #mmr: MmrFrontier | undefined;
  /** Attempts that failed, by request start. */
  readonly #failures = new Map<number, Failure>();
  /** Ranges given up after `maxRetries` failures (until the next target). */
  #abandoned: (LocationRange & { lastError: unknown })[] = [];
  #status: LogSyncStatus = 'syncing';
  #updatesOpen: boolean;
  #finishRequested = false;
  #reachedReported = false;
  #started = false;

  constructor(config: LogSyncConfig) {
    checkTarget(config.target);
    const positive = (v: number, what: string): number => {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`expected ${what} to be a positive integer, got ${v}`);
      return v;
    };
    this.#fetchBatchSize = positive(config.fetchBatchSize, 'fetchBatchSize');
    this.#maxOutstanding = positive(config.maxOutstanding, 'maxOutstanding');
    this.#maxRetainedRoots = config.maxRetainedRoots ?? 3;
    this.#maxRetries = config.maxRetries ?? 3;
    if (!Number.isSafeInteger(this.#maxRetainedRoots) || this.#maxRetainedRoots < 0) {
      throw new RangeError(`expected maxRetainedRoots to be a non-negative integer, got ${this.#maxRetainedRoots}`);
    }
    if (!Number.isSafeInteger(this.#maxRetries) || this.#maxRetries < 0) {
      throw new RangeError(`expected maxRetries to be a non-negative integer, got ${this.#maxRetries}`);
    }
    this.#hold = config.holdCompletion ?? false;
    this.#updatesOpen = config.acceptsUpdates ?? false;
    this.#target = { ...config.target };
    this.#applied = this.#target.lower;
    this.#mmr = this.#target.lower === 0 ? MmrFrontier.fromPeaks(0, []) : undefined;
  }

  get status(): LogSyncStatus {
    return this.#status;
  }

  get target(): LogSyncTarget {
    return { ...this.#target };
  }

  /** Next location to apply: every operation of `[target.lower, applied)` is applied. */
  get applied(): number {
    return this.#applied;
  }

  get outstanding(): LogRequest[] {
    return this.#requests.values();
  }

  /** The first requests. Call once. */
  start(): LogSyncAction[] {
    if (this.#started) throw new Error('LogSyncEngine.start() called twice');
    this.#started = true;
    const actions: LogSyncAction[] = [];
    this.#schedule(actions);
    this.#checkStalled(actions);
    return actions;
  }

  /** Handles one event and returns the actions to carry out, in order. */
  step(event: LogSyncEvent): LogSyncAction[] {
    const actions: LogSyncAction[] = [];
    if (this.#status === 'done' || this.#status === 'failed') {
      // Late results are ignored; cancel them so the caller can release them.
      if (event.type === 'response' || event.type === 'fetchFailed') this.#requests.remove(event.id);
      return actions;
    }
    switch (event.type) {
      case 'response':
        this.#onResponse(event, actions);
        break;
      case 'fetchFailed': {
        const request = this.#requests.remove(event.id);
        if (request) this.#recordFailure(request, event.error);
        break;
      }
      case 'targetUpdate':
        this.#onTargetUpdate(event.target, actions);
        break;
      case 'updatesClosed':
        this.#updatesOpen = false;
        break;
      case 'finish':
        this.#finishRequested = true;
        if (this.#status === 'atTarget') this.#complete(actions);
        break;
    }
    if (this.#status === 'syncing') {
      this.#apply(actions);
      if (this.#status === 'syncing') this.#schedule(actions);
      if (this.#status === 'syncing') this.#checkStalled(actions);
    }
    return actions;
  }

  #fail(actions: LogSyncAction[], error: Error): void {
    this.#status = 'failed';
    for (const r of this.#requests.values()) {
      this.#requests.remove(r.id);
      actions.push({ type: 'cancel', id: r.id });
    }
    actions.push({ type: 'failed', error });
  }

  /** The root a request must verify against, or undefined if it was evicted. */
  #verificationRoot(request: LogRequest): Uint8Array | undefined {
    const matches = (t: LogSyncTarget): boolean => t.upper === request.leafCount && equalBytes(t.root, request.root);
    if (matches(this.#target)) return this.#target.root;
    return this.#retained.find(matches)?.root;
  }

  #needsPinnedAt(start: number): boolean {
    return this.#mmr === undefined && start === this.#target.lower;
  }

  #onResponse(event: Extract<LogSyncEvent, { type: 'response' }>, actions: LogSyncAction[]): void {
    const request = this.#requests.remove(event.id);
    if (!request) return; // cancelled or unknown: nothing to do
    const root = this.#verificationRoot(request);
    if (root === undefined) return; // root evicted: drop; the range is refetched
    const needPinned = this.#needsPinnedAt(request.start);
    const current = root === this.#target.root;
    // Pinned nodes are verified against the current target root only; a boundary batch for an
    // older root is dropped and refetched with the current one.
    if (needPinned && !current) return;
    const checked = this.#validate(request, event, needPinned, root);
    if (checked instanceof InvalidLogResponse) {
      const error = checked;
      actions.push({ type: 'penalise', id: request.id, error });
      if (event.acceptsFeedback === false) {
        this.#fail(actions, error);
        return;
      }
      this.#recordFailure(request, error);
      return;
    }
    actions.push({ type: 'accept', id: request.id });
    this.#failures.delete(request.start);
    this.#fetched.set(request.start, { ops: event.ops, pinned: needPinned ? event.pinned : undefined, witness: checked });
  }

  #validate(
    request: LogRequest,
    event: Extract<LogSyncEvent, { type: 'response' }>,
    needPinned: boolean,
    root: Uint8Array,
  ): InvalidLogResponse | MmrRangeWitness {
    const { ops, proof, pinned } = event;
    const at = { start: request.start, maxOps: request.maxOps, leafCount: request.leafCount };
    if (!Array.isArray(ops) || !ops.every((o) => o instanceof Uint8Array)) {
      return new InvalidLogResponse('WrongShape', 'operations are not a list of byte strings', at);
    }
    if (ops.length === 0) return new InvalidLogResponse('EmptyBatch', 'the batch is empty', at);
    if (ops.length > request.maxOps) {
      return new InvalidLogResponse('TooManyOps', `${ops.length} operations for at most ${request.maxOps}`, at);
    }
    if (request.start + ops.length > request.leafCount) {
      return new InvalidLogResponse('BeyondLogSize', `the batch runs past the log size ${request.leafCount}`, at);
    }
    if (!proof || !Array.isArray(proof.digests) || !proof.digests.every((d) => d instanceof Uint8Array)) {
      return new InvalidLogResponse('WrongShape', 'the proof is not a list of digests', at);
    }
    if (needPinned && (!Array.isArray(pinned) || !pinned.every((d) => d instanceof Uint8Array))) {
      return new InvalidLogResponse('MissingPinnedNodes', 'the first batch at the lower bound has no pinned nodes', at);
    }
    try {
      if (needPinned) return verifyPinnedNodes(root, request.leafCount, request.start, ops, proof, pinned!);
      return verifyRangeProof(root, request.leafCount, request.start, ops, proof);
    } catch (e) {
      if (!(e instanceof InvalidMmrProof)) throw e;
      const pinnedRule = e.reason === 'PinnedCountMismatch' || e.reason === 'PinnedNodeMismatch';
      return new InvalidLogResponse(pinnedRule ? 'InvalidPinnedNodes' : 'InvalidProof', e.message, at, { cause: e });
    }
  }

  #recordFailure(request: LogRequest, error: unknown): void {
    const f = this.#failures.get(request.start) ?? { count: 0, lastError: undefined };
    f.count++;
    f.lastError = error;
    this.#failures.set(request.start, f);
    if (f.count > this.#maxRetries) {
      this.#abandoned.push({ start: request.start, end: request.start + request.maxOps, lastError: error });
    }
  }

  #onTargetUpdate(next: LogSyncTarget, actions: LogSyncAction[]): void {
    checkTarget(next);
    const rejection = targetUpdateRejection(this.#target, next);
    if (rejection) {
      actions.push({ type: 'targetRejected', target: { ...next }, error: rejection });
      return;
    }
    if (this.#maxRetainedRoots > 0) {
      this.#retained.push(this.#target);
      while (this.#retained.length > this.#maxRetainedRoots) this.#retained.shift();
    }
    // What is applied stays valid if it reaches the new lower bound: the MMR already holds the
    // peaks over [0, lower). Otherwise start over at the new lower bound with new pinned nodes.
    const keep = this.#mmr !== undefined && this.#applied >= next.lower;
    this.#target = { ...next };
    if (!keep) {
      // Operations are only applied once the MMR exists, so without one there is nothing to undo.
      if (this.#mmr !== undefined) actions.push({ type: 'reset', lower: next.lower });
      this.#mmr = next.lower === 0 ? MmrFrontier.fromPeaks(0, []) : undefined;
      this.#applied = next.lower;
      // A request at the new lower bound cannot bring pinned nodes for the new root.
      const boundary = this.#mmr === undefined ? next.lower + 1 : next.lower;
      for (const r of this.#requests.removeBefore(boundary)) actions.push({ type: 'cancel', id: r.id });
      for (const start of [...this.#fetched.keys()]) if (start < boundary) this.#fetched.delete(start);
    }
    this.#failures.clear();
    this.#abandoned = [];
    this.#reachedReported = false;
    this.#status = 'syncing';
  }

  /** Applies the fetched batches contiguous with `applied`, then checks for the target. */
  #apply(actions: LogSyncAction[]): void {
    for (;;) {
      let found: [number, FetchedBatch] | undefined;
      for (const [start, batch] of this.#fetched) {
        const end = start + batch.ops.length;
        if (end <= this.#applied) this.#fetched.delete(start); // stale
        else if (start <= this.#applied && !found) found = [start, batch];
      }
      if (!found) break;
      const [start, batch] = found;
      this.#fetched.delete(start);
      if (this.#mmr === undefined) {
        if (start !== this.#target.lower || !batch.pinned) continue; // refetched with pinned nodes
        this.#mmr = MmrFrontier.fromPeaks(start, batch.pinned);
      }
      const ops = batch.ops.slice(this.#applied - start);
      if (start === this.#applied && this.#mmr.hasPeaks(batch.witness.before)) this.#mmr.advance(start + ops.length, batch.witness.after);
      else for (const op of ops) this.#mmr.append(op);
      actions.push({ type: 'apply', start: this.#applied, ops, peaks: this.#mmr.peaks() });
      this.#applied += ops.length;
    }
    if (this.#applied === this.#target.upper) this.#reached(actions);
  }

  #reached(actions: LogSyncAction[]): void {
    const root = this.#mmr!.root();
    if (!equalBytes(root, this.#target.root)) {
      this.#fail(
        actions,
        new RootMismatch('the applied log does not rebuild the target root', {
          lower: this.#target.lower,
          upper: this.#target.upper,
        }),
      );
      return;
    }
    if (!this.#reachedReported) {
      this.#reachedReported = true;
      actions.push({ type: 'targetReached', target: this.target, root });
    }
    this.#status = 'atTarget';
    if (!this.#hold || this.#finishRequested) this.#complete(actions);
  }

  #complete(actions: LogSyncAction[]): void {
    this.#status = 'done';
    for (const r of this.#requests.values()) {
      this.#requests.remove(r.id);
      actions.push({ type: 'cancel', id: r.id });
    }
    actions.push({ type: 'done', target: this.target, root: this.#mmr!.root() });
  }

  #schedule(actions: LogSyncAction[]): void {
    const fetched = [...this.#fetched].map(([start, b]) => ({ start, end: start + b.ops.length }));
    while (this.#requests.size < this.#maxOutstanding) {
      const gap = findNextGap(this.#applied, this.#target.upper, fetched, [
        ...this.#requests.ranges(),
        ...this.#abandoned,
      ]);
      if (!gap) break;
      const request = this.#requests.add({
        root: this.#target.root,
        leafCount: this.#target.upper,
        start: gap.start,
        maxOps: Math.min(this.#fetchBatchSize, gap.end - gap.start),
        withPinned: this.#needsPinnedAt(gap.start),
      });
      actions.push({ type: 'fetch', request });
    }
  }

  #checkStalled(actions: LogSyncAction[]): void {
    if (this.#requests.size > 0 || this.#updatesOpen) return;
    const last = this.#abandoned.at(-1)?.lastError;
    this.#fail(
      actions,
      new SyncStalled(
        `log sync stalled at ${this.#applied} of [${this.#target.lower}, ${this.#target.upper}): nothing outstanding and no target update to wait for`,
        { applied: this.#applied, abandoned: this.#abandoned.map(({ start, end }) => ({ start, end })) },
        { cause: last },
      ),
    );
  }
}
