/**
 * The async driver of the state sync (docs/sync.md): it runs the engine's actions
 * against the sources and a `MerkleTrie` on the store, and feeds the results back as events.
 * Decisions are the engine's (`engine.ts`); this file fetches, verifies answers against the
 * local state (`verify.ts`), writes, and waits.
 *
 * Events are handled one at a time: an answer is verified on a view of the committed trie, the
 * engine decides, and its `write` commits that view together with the progress records in one
 * atomic batch. Fetches run concurrently. The write is staged (`stageView`): the requests the
 * answer frees go out and the next answers are handled while the store writes it, up to
 * `MAX_STAGED_WRITES` writes staged; the trie writes the ones staged behind the write in flight
 * as one batch, so they land in order, and a failed write fails those after it.
 *
 * Change proofs that are already waiting when one is handled share a view (a group commit):
 * each is verified by applying it to the view that holds the ones before it (their key ranges
 * are disjoint, so none reads another's keys), the engine decides on each in turn and its
 * requests go out at once, and the view is committed, with every answer's progress records in
 * order, once no answer is waiting (or the group is large); the write runs while the next
 * answers are verified on the state it makes (`stageView`). Catching up is bound by the
 * client's CPU with answers queued (measured, 10,000 changes on 1M keys in LevelDB: 16 answers
 * of ~600 changes, ~50 ms of verifying each; one commit per answer, each awaited before the next
 * answer, takes ~0.3 s of the ~1.4 s; two group commits take ~0.2 s, their writes running
 * while the next answers are verified). Progress events may then report an answer shortly
 * before it is durable; the `at-target` progress and `done` wait for every write.
 *
 * One file: `syncState` is one loop over the engine's actions, and the fetches, the group
 * commit and the writes share that loop's state (the requests in flight, the open group's view,
 * the store write in flight).
 */
import { DecodeError, FinishedWithUnexpectedRoot, ProofError, UnexpectedResponse } from '../../core/errors.ts';
import { equalBytes, toHex } from '../../core/bytes.ts';
import type { KVStore } from '../../core/store.ts';
import { MerkleTrie, type ProvenSubtrees, type TrieView } from '../../core/trie.ts';
import type { BatchOp } from '../../core/store.ts';
import type { KeyChange } from '../../core/types.ts';
import { systemClock, type Clock } from './clock.ts';
import { StateSyncEngine, type StateSyncAction, type StateSyncEvent, type StateSyncProgress } from './engine.ts';
import type { PeerStats } from '../peers.ts';
import { loadProgress } from './stored-progress.ts';
import { fromInclusive, type InclusiveRange } from './ranges.ts';
import type { StateRequest } from './requests.ts';
import { estimateResponseSize, type StateResponse, type StateSource } from './source.ts';
import { preverify, verifyResponse, type ResponseOutcome } from './verify.ts';
import { EventQueue } from '../event-queue.ts';
import { RequestTimeout } from '../../protocol/stream.ts';
import { isAnswerFault, isNotServed, isTimeout } from '../faults.ts';

export { RequestTimeout };

export interface SyncStateOptions {
  store: KVStore;
  sources: readonly StateSource[];
  /** Sources that connect after the sync started (e.g. a replica dialed later); each takes work from then on. */
  sourceUpdates?: AsyncIterable<StateSource>;
  /**
   * Ids of sources that went away (disconnected): their requests in flight are cancelled and
   * the work queued again without counting an attempt; one that comes back through
   * `sourceUpdates` takes work again.
   */
  sourcesLeft?: AsyncIterable<string>;
  /** The root to sync to (from a signed announcement). */
  target: Uint8Array;
  /** Partial sync: inclusive key ranges (see `prefixRange`); default the whole key space. */
  ranges?: readonly InclusiveRange[];
  /** Newer targets; the sync follows them and finishes at the last one once this ends. */
  targetUpdates?: AsyncIterable<Uint8Array>;
  /**
   * A checkpoint root: while it is the target, never-fetched ranges go by the canonical plan
   * (docs/sync.md#canonical-plan). Usually `target` itself, with the head in `targetUpdates`.
   */
  canonicalRoot?: Uint8Array;
  signal?: AbortSignal;
  /** Most requests in flight (default 4). */
  concurrency?: number;
  /** Key limit per request (default 2048). */
  keyLimit?: number;
  bytesLimit?: number;
  /** Per-request deadline in ms (default 30,000; Infinity for none). */
  requestTimeoutMs?: number;
  maxRetainedRoots?: number;
  maxAttempts?: number;
  /** Invalid proofs before a peer is banned (default 3). */
  banAfter?: number;
  maxInFlightPerPeer?: number;
  /** Send a request left unanswered too long to a faster peer too (default true; see engine.ts). */
  hedge?: boolean;
  clock?: Clock;
  /** Size of an answer in bytes (default: an estimate of its protobuf encoding). */
  sizeOf?: (response: StateResponse) => number;
  onProgress?: (progress: StateSyncProgress) => void;
  /** A peer sent an invalid answer (and is banned when `banned`). */
  onPenalise?: (peer: string, reason: Error, banned: boolean) => void;
  /**
   * Write node records with their leaf children elided (`TrieOptions.elideLeaves`, default
   * true): a light client's store. A full node's store (a replica's first sync) passes false, as
   * its database writes them: it serves proofs, and elided leaves cost a value scan per node read.
   */
  elideLeaves?: boolean;
}

export interface SyncStateResult {
  /** The target reached. */
  target: Uint8Array;
  /** The local root (equal to the target for a full sync). */
  root: Uint8Array;
  progress: StateSyncProgress;
  peers: PeerStats[];
}


type DriverEvent =
  | StateSyncEvent
  | { type: 'answer'; requestId: number; response: StateResponse | undefined; error?: undefined; elapsedMs: number; pre?: ProvenSubtrees | Error }
  | { type: 'answer'; requestId: number; response?: undefined; error: unknown; elapsedMs: number };


/**
 * A verified answer's keys and values are views of the decoded answer, and the progress ops are
 * made for the write: nothing changes them, so the store need not copy them (`WriteOptions`).
 */
const HAND_OVER = { handOver: true } as const;

/**
 * Most store writes in flight (staged, not yet durable): verified answers wait in memory for
 * IndexedDB at most this many deep. Measured, a 200k-key browser sync (`BENCH_KEYS=200000
 * BENCH_RUNS=3 node bench/sync-ab.ts`, runs 1–2 of two alternating rounds, the node's proof cache
 * warm, this 2-core machine at load average 11–16, so the spread is wide):
 * - one write staged: sync 27.7 / 34.6 / 31.1 / 37.1 s; worker thread CPU 6.8 / 7.1 / 6.5 / 7.8 s;
 *   all Chromium threads 19.9 / 20.1 / 17.9 / 21.2 s;
 * - four staged, merged by the trie: 24.8 / 30.2 / 26.8 / 37.4 s; 5.8 / 6.1 / 5.9 / 7.4 s;
 *   15.6 / 16.8 / 16.8 / 20.5 s.
 * At load 2.5–5: 17.6 / 18.0 s (worker 6.8 / 7.5 s) against 16.6 / 16.8 s (worker 6.2 / 6.5 s).
 * At load 4, first runs with CPU profiles: 10.5 s (worker 5.5 s) against 10.7 s (5.6 s), no
 * difference: the gain is where IndexedDB is slow (a loaded machine), within the spread above.
 * `BENCH_KEYS=200000 BENCH_BASELINE=0 BENCH_PLACEMENT=0 BENCH_FIREFOX=0 BENCH_VERIFIED=0 npm run
 * bench -- browser`, one run each: sync / floors 3.13 (19.7 s) before, 2.65 (13.7 s) after; peak
 * worker heap 37 → 49 MiB (the staged answers).
 * Instrumented (not kept): with one write staged the driver waited on the store 10–18 s of a
 * 14–26 s sync and the worker was ~40% idle in its CPU profile; with four, 5–12 s, and ~128
 * IndexedDB transactions became ~90.
 */
const MAX_STAGED_WRITES = 4;

/** Most verified change proofs one group commit holds (a bound on memory and on lost work). */
const MAX_GROUP_ANSWERS = 8;

/** Errors that make an answer invalid (the peer's fault), as opposed to local failures. */
function isPeerError(e: unknown): e is Error {
  return e instanceof ProofError || e instanceof DecodeError || e instanceof UnexpectedResponse;
}

/** Rejects answers that are not shaped like proofs (remote data is hostile). */
function checkShape(r: unknown): asserts r is StateResponse {
  const bad = (why: string): never => {
    throw new UnexpectedResponse(`malformed answer: ${why}`);
  };
  if (typeof r !== 'object' || r === null) bad('not an object');
  const { type, proof } = r as { type?: unknown; proof?: Record<string, unknown> };
  if (type !== 'range' && type !== 'change') bad('unknown type');
  if (typeof proof !== 'object' || proof === null) bad('no proof');
  const nodes = (ns: unknown) => {
    if (!Array.isArray(ns)) bad('proof path is not a list');
    for (const n of ns as { key?: unknown; valueOrHash?: unknown; children?: unknown }[]) {
      if (!(n?.key instanceof Uint8Array) || !(n.children instanceof Map)) bad('malformed proof node');
      if (n.valueOrHash !== undefined && !(n.valueOrHash instanceof Uint8Array)) bad('malformed proof node value');
      for (const id of (n.children as Map<unknown, unknown>).values()) if (!(id instanceof Uint8Array)) bad('malformed child id');
    }
  };
  nodes(proof!.startProof);
  nodes(proof!.endProof);
  const list = type === 'range' ? proof!.keyValues : proof!.keyChanges;
  if (!Array.isArray(list)) bad('no key list');
  for (const kv of list as { key?: unknown; value?: unknown }[]) {
    if (!(kv?.key instanceof Uint8Array)) bad('malformed key');
    if (!(kv.value instanceof Uint8Array) && !(type === 'change' && kv.value === undefined)) bad('malformed value');
  }
}

/**
 * Syncs the state at `target` (and the targets that follow it) from untrusted `sources` into
 * the trie on `store`, verifying every answer, resuming from and recording progress in the same
 * store. Resolves at the target; rejects with `SyncStalled`, `FinishedWithUnexpectedRoot` (a
 * bug), a store error, or the signal's reason.
 *
 * @example
 * const { root } = await syncState({ store, sources: [new MemoryStateSource('a', db)], target: db.root });
 */
export async function syncState(options: SyncStateOptions): Promise<SyncStateResult> {
  const { store, signal } = options;
  const clock = options.clock ?? systemClock;
  const sizeOf = options.sizeOf ?? estimateResponseSize;
  const timeout = options.requestTimeoutMs ?? 30_000;
  signal?.throwIfAborted();
  const sources = new Map<string, StateSource>();
  for (const s of options.sources) {
    if (sources.has(s.id)) throw new TypeError(`duplicate source id ${s.id}`);
    sources.set(s.id, s);
  }
  const trie = await MerkleTrie.open(store, { elideLeaves: options.elideLeaves });
  const stored = await loadProgress(store);
  const scope = options.ranges?.map(fromInclusive);
  const engine = new StateSyncEngine({
    target: options.target,
    peers: [...sources.keys()],
    localRoot: trie.root,
    scope,
    stored,
    concurrency: options.concurrency,
    keyLimit: options.keyLimit,
    bytesLimit: options.bytesLimit,
    maxRetainedRoots: options.maxRetainedRoots,
    maxAttempts: options.maxAttempts,
    banAfter: options.banAfter,
    maxInFlightPerPeer: options.maxInFlightPerPeer,
    hedge: options.hedge,
    acceptsUpdates: options.targetUpdates !== undefined,
    canonicalRoot: options.canonicalRoot,
  });
  const events = new EventQueue<DriverEvent>();
  const stop = new AbortController();
  const inFlight = new Map<number, { request: StateRequest; controller: AbortController; sentAt: number; settled: boolean }>();
  /** Events pushed and not yet taken (whether an answer is waiting). */
  let waiting = 0;
  const push = (event: DriverEvent): void => {
    waiting++;
    events.push(event);
  };
  /** The view the current answer was verified on, and whether it joins the group commit. */
  let verified: { requestId: number; view: TrieView; grouped: boolean } | undefined;
  /** Verified change proofs applied to one view, not yet written: their progress ops in order, and their changes to replay. */
  let group: { view: TrieView; progress: BatchOp[]; changes: KeyChange[][] } | undefined;
  const checkRoot = (): void => {
    if (writeFailure) throw writeFailure.error;
    if (!equalBytes(trie.root, engine.localRoot)) {
      throw new Error(`state sync: local root ${toHex(trie.root)} differs from the verified ${toHex(engine.localRoot)}`);
    }
  };
  /**
   * Store writes in flight, oldest first: the trie holds their state at once (`stageView`), so
   * the next answers are verified while they run, and the trie merges the ones staged behind a
   * write into one batch. At most `MAX_STAGED_WRITES`; they land in order.
   */
  const writing: Promise<void>[] = [];
  /**
   * The first store write that failed. The trie has gone back to the state before it (and the
   * writes staged after it fail too), so nothing more is staged: the sync fails with this error
   * (e.g. `StorageQuotaExceeded`), not with a root mismatch.
   */
  let writeFailure: { error: unknown } | undefined;
  const stage = (view: TrieView, progress: BatchOp[]): void => {
    if (writeFailure) throw writeFailure.error;
    const durable = trie.stageView(view, progress, HAND_OVER).durable;
    durable.catch((error: unknown) => (writeFailure ??= { error }));
    writing.push(durable);
    checkRoot();
  };
  /** Waits until fewer than `room` writes are in flight (0: none); a failed write fails the sync here. */
  const settle = async (room = 0): Promise<void> => {
    while (writing.length > Math.max(0, room - 1)) {
      await writing.shift();
    }
  };
  const flush = async (): Promise<void> => {
    if (!group) return;
    const g = group;
    group = undefined;
    await settle(MAX_STAGED_WRITES);
    stage(g.view, g.progress);
  };
  /** Writes what the group holds and waits for every write. */
  const drain = async (): Promise<void> => {
    await flush();
    await settle();
  };

  const startFetch = (request: StateRequest): void => {
    if (request.kind === 'clear') {
      inFlight.set(request.id, { request, controller: new AbortController(), sentAt: clock.now(), settled: true });
      push({ type: 'answer', requestId: request.id, response: undefined, elapsedMs: 0 });
      return;
    }
    const controller = new AbortController();
    const entry = { request, controller, sentAt: clock.now(), settled: false };
    inFlight.set(request.id, entry);
    const settle = (result: { response: StateResponse } | { error: unknown }) => {
      if (entry.settled) return;
      entry.settled = true;
      controller.abort();
      const elapsedMs = clock.now() - entry.sentAt;
      if ('error' in result) push({ type: 'answer', requestId: request.id, error: result.error, elapsedMs });
      else {
        // Verify a range proof now: it overlaps the store write of the answer being applied.
        let pre: ProvenSubtrees | Error | undefined;
        try {
          checkShape(result.response);
          pre = preverify(request, result.response);
        } catch {
          pre = undefined; // the shape error is raised again, in order, when the answer is handled
        }
        push({ type: 'answer', requestId: request.id, response: result.response, elapsedMs, pre });
      }
    };
    const fetchSignal = AbortSignal.any([stop.signal, controller.signal]);
    const source = sources.get(request.peer)!;
    Promise.resolve()
      .then(() => (request.kind === 'range' ? source.rangeProof(request.request, { signal: fetchSignal }) : source.changeProof(request.request, { signal: fetchSignal })))
      .then(
        (response) => settle({ response }),
        (error: unknown) => settle({ error }),
      );
    if (Number.isFinite(timeout)) {
      clock.sleep(timeout, fetchSignal).then(
        () => settle({ error: new RequestTimeout(`request ${request.id} to ${request.peer} timed out after ${timeout} ms`) }),
        () => {},
      );
    }
  };

  /** A view of the committed trie with `changes` applied: the group's state without an invalid answer. */
  const replay = async (changes: KeyChange[][]): Promise<TrieView> => {
    const view = trie.view();
    for (const c of changes) await view.apply(c);
    if (!equalBytes(view.root, engine.localRoot)) throw new Error('state sync: replaying the verified answers does not give the verified root');
    return view;
  };

  let result: SyncStateResult | undefined;
  const run = async (actions: StateSyncAction[]): Promise<void> => {
    // New requests go out before any write below is awaited: an answer's actions are its write,
    // then the requests that refill its slot, and waiting on the store first left that slot
    // empty for the length of an IndexedDB commit.
    for (const action of actions) if (action.type === 'request') startFetch(action.request);
    for (const action of actions) {
      switch (action.type) {
        case 'request':
          break;
        case 'cancel': {
          const entry = inFlight.get(action.requestId);
          if (entry) {
            entry.settled = true;
            entry.controller.abort();
            inFlight.delete(action.requestId);
          }
          break;
        }
        case 'write': {
          const mine = verified?.requestId === action.requestId ? verified : undefined;
          if (mine?.grouped) {
            group ??= { view: mine.view, progress: [], changes: [] };
            group.progress.push(...action.progress);
            group.changes.push(action.changes);
            break;
          }
          if (mine) {
            // staged: the next answers are handled while it is written (the writes land in
            // order); `at-target` and `done` wait for it
            await flush();
            await settle(MAX_STAGED_WRITES);
            stage(mine.view, action.progress);
          } else {
            await drain();
            await trie.commit(action.changes, action.progress);
          }
          checkRoot();
          break;
        }
        case 'penalise':
          options.onPenalise?.(action.peer, action.reason, action.banned);
          break;
        case 'wake':
          clock.sleep(Math.max(0, action.at - clock.now()), stop.signal).then(
            () => push({ type: 'tick' }),
            () => {},
          );
          break;
        case 'progress':
          // at the target, the state must be durable first: a listener reads it at once (the
          // client's `synced` event comes from this phase)
          if (action.progress.phase === 'at-target') await drain();
          options.onProgress?.(action.progress);
          break;
        case 'done':
          await drain();
          if (scope === undefined && !equalBytes(trie.root, action.target)) {
            throw new FinishedWithUnexpectedRoot(`sync finished at root ${toHex(trie.root)}, expected ${toHex(action.target)}`);
          }
          result = { target: action.target, root: trie.root, progress: engine.progress(), peers: engine.peers };
          break;
        case 'failed':
          // what was verified stays (a restart resumes after it)
          await drain().catch(() => {});
          throw action.error;
      }
    }
    verified = undefined;
  };

  /** Sources that went away and have not come back. */
  const departed = new Set<string>();
  /** Takes each item of `stream` until the sync stops; a stream that fails is one that ended, and the known sources carry on. */
  const follow = <T>(stream: AsyncIterable<T> | undefined, take: (item: T) => void): void => {
    if (!stream) return;
    const it = stream[Symbol.asyncIterator]();
    stop.signal.addEventListener('abort', () => void it.return?.()?.catch?.(() => {}), { once: true });
    void (async () => {
      try {
        for (;;) {
          const next = await it.next();
          if (stop.signal.aborted || next.done) return;
          take(next.value);
        }
      } catch {
        // ended
      }
    })();
  };
  follow(options.sourceUpdates, (source) => {
    if (sources.has(source.id) && !departed.has(source.id)) return;
    departed.delete(source.id);
    sources.set(source.id, source);
    push({ type: 'peerAdded', peer: source.id });
  });
  follow(options.sourcesLeft, (id) => {
    // the source stays in the map: a request the engine sends before it reads this event fails on its own
    if (!sources.has(id) || departed.has(id)) return;
    departed.add(id);
    push({ type: 'peerRemoved', peer: id });
  });

  let updates: AsyncIterator<Uint8Array> | undefined;
  if (options.targetUpdates) {
    const it = options.targetUpdates[Symbol.asyncIterator]();
    updates = it;
    void (async () => {
      try {
        for (;;) {
          const next = await it.next();
          if (stop.signal.aborted) return;
          if (next.done) break;
          push({ type: 'newTarget', root: next.value });
        }
      } catch {
        // An update stream that fails is one that ended.
      }
      if (!stop.signal.aborted) push({ type: 'updatesClosed' });
    })();
  }

  try {
    await run(engine.start(clock.now()));
    while (!result) {
      // nothing waiting: what the group holds is written before waiting for more
      if (waiting === 0) await flush();
      let event: DriverEvent;
      try {
        event = await events.next(signal);
        waiting--;
      } catch (reason) {
        await run(engine.step({ type: 'abort', reason }, clock.now())).catch(() => {});
        throw reason;
      }
      if (event.type === 'answer') {
        const entry = inFlight.get(event.requestId);
        if (!entry) continue; // cancelled
        inFlight.delete(event.requestId);
        if (event.error !== undefined) {
          // a malformed, oversized or wrong-typed answer is an invalid answer, not a failure
          if (isAnswerFault(event.error)) {
            const outcome: ResponseOutcome = { valid: false, error: event.error };
            await run(engine.step({ type: 'response', requestId: event.requestId, outcome, elapsedMs: event.elapsedMs, bytes: 0 }, clock.now()));
          } else {
            const failure = { type: 'failure', requestId: event.requestId, error: event.error, elapsedMs: event.elapsedMs, timedOut: isTimeout(event.error), notServed: isNotServed(event.error) } as const;
            await run(engine.step(failure, clock.now()));
          }
          continue;
        }
        let bytes = 0;
        let outcome: ResponseOutcome;
        // Only change proofs join the group: a range proof reads the view's key range (costly
        // over a large overlay) and may graft, so it gets a view of its own, after the group.
        const grouped = entry.request.kind === 'change' && (event.response as { type?: unknown } | undefined)?.type === 'change';
        if (!grouped || (group && group.changes.length >= MAX_GROUP_ANSWERS)) await flush();
        const view = grouped && group ? group.view : trie.view();
        try {
          if (entry.request.kind !== 'clear') {
            checkShape(event.response);
            bytes = sizeOf(event.response);
          }
          outcome = await verifyResponse(entry.request, event.response, view, 'pre' in event ? event.pre : undefined);
          verified = { requestId: event.requestId, view, grouped };
        } catch (error) {
          if (!isPeerError(error)) throw error;
          outcome = { valid: false, error };
          // The invalid answer's changes may be in the group's view: rebuild it from the verified ones.
          if (grouped && group) group.view = await replay(group.changes);
        }
        await run(engine.step({ type: 'response', requestId: event.requestId, outcome, elapsedMs: event.elapsedMs, bytes }, clock.now()));
      } else {
        await flush();
        await run(engine.step(event, clock.now()));
      }
    }
    return result;
  } finally {
    for (const w of writing) await w.catch(() => {}); // never leave the store with a write of ours in flight
    stop.abort();
    for (const { controller } of inFlight.values()) controller.abort();
    void updates?.return?.()?.catch?.(() => {});
  }
}
