/**
 * Fetching a run of the operation log (docs/mmr.md#syncing-a-log): the loop shared by the
 * browser worker (`client.log.fetch`) and Node tools (`fetchLogOperations`). It turns signed
 * targets (an announcement's `logRoot`/`logSize`) into `runLogSync` runs, hands out verified
 * operations in order, and, when asked, stores them with their progress (persist.ts)
 * so that a later fetch first reads what is stored and continues the network fetch at its end.
 *
 * - `to` open: the target follows newer announcements while the fetch runs; the fetch ends at
 *   the newest target reached (or never, with `follow`).
 * - `to` given: requests are clamped at `to` (a batch that would pass it is asked shorter; one
 *   that starts at it waits until the fetch ends), so nothing past `to` is downloaded; a `to`
 *   beyond the announced size waits for announcements that reach it.
 * - Resume: the stored run's MMR frontier must match the pinned nodes the network proves at its
 *   end, and the frontier extended by the new operations must rebuild each reached target's
 *   root; otherwise the store is cleared and the fetch fails with `StoredLogMismatch`.
 *
 * One file: `TargetFeed` and `BatchChannel` exist only for the loop of `fetchOperationBatches`,
 * which ties them to the stored run and the engine's driver; the engine, the persistence and
 * the sources are beside it (engine.ts, persist.ts, network-source.ts).
 */
import { equalBytes } from '../../core/bytes.ts';
import { decodeDelta } from '../../core/delta.ts';
import { errorClass, ProofsyncError } from '../../core/errors.ts';
import type { Hlc } from '../../core/hlc.ts';
import type { Digest } from '../../core/mmr.ts';
import type { KVStore } from '../../core/store.ts';
import type { KeyChange } from '../../core/types.ts';
import { runLogSync, type LogSyncProgress } from './driver.ts';
import type { InvalidLogResponse } from './engine.ts';
import { LogStore, MmrFrontier, samePeaks } from './persist.ts';
import type { LogRequest } from './requests.ts';
import type { LogFetchResponse, LogSource } from './source.ts';
import type { LogSyncTarget } from './target.ts';

/** A log target from a signed announcement. */
export interface LogTarget {
  /** The announcement's `logRoot`: the MMR root of the first `size` operations. */
  root: Uint8Array;
  size: number;
  seq: number;
}

/** One verified operation: the writer's delta at log index `index`, decoded. */
export interface LogOperation {
  /** Its position in the writer's log. */
  index: number;
  /** SHA-256 of the delta's canonical body (re-derived from its bytes). */
  id: Uint8Array;
  /** Puts (`value` set) and deletes (`value` undefined), keys increasing. */
  actions: KeyChange[];
  /** The writer's hybrid logical clock at the commit (`wallMs`: its wall clock, ms since the epoch). */
  hlc: Hlc;
  /** The state root after this delta. */
  stateRoot: Uint8Array;
}

/** An operation as verified: its log index and its bytes (the wire-encoded delta). */
export interface RawOperation {
  index: number;
  bytes: Uint8Array;
}

/**
 * Where a log fetch stands, after every batch: what is delivered, the target, what came from
 * the store and from peers. Given to `onProgress`.
 *
 * @example
 * const onProgress = (p: LogFetchProgress) => console.log(`${p.next - p.from} of ${(p.to ?? p.targetSize) - p.from}`);
 * for await (const op of client.log.fetch({ from: 0, onProgress })) handle(op);
 */
export interface LogFetchProgress {
  /** The fetch's first index. */
  from: number;
  /** The fetch's end (exclusive); undefined when open. */
  to: number | undefined;
  /** Next index handed out: `[from, next)` are delivered. */
  next: number;
  /** Log size of the target being fetched (0 before the first announcement). */
  targetSize: number;
  /** The target announcement's `seq` (-1 before the first announcement). */
  seq: number;
  /** Operations read from the local store. */
  fromStore: number;
  /** Operations fetched (verified) from peers. */
  fetched: number;
  /** End of the stored run after this step (undefined when nothing is stored). */
  storedUpTo: number | undefined;
  /** Requests in flight. */
  outstanding: number;
  /** Answers rejected by verification (their peers were penalised). */
  rejected: number;
}

export interface FetchOperationsOptions {
  /** Where batches come from (a `NetworkLogSource` over peers, or any `LogSource`). */
  source: LogSource;
  /** Signed targets, newest last; the fetch waits for the first one. */
  targets: AsyncIterable<LogTarget>;
  /** First index (default 0). */
  from?: number;
  /** End, exclusive (default: the newest announced size, moving while fetching). */
  to?: number;
  /** With `to` open: keep following new announcements until aborted. */
  follow?: boolean;
  /** Where stored runs live; read when given, written only with `persist`. */
  store?: KVStore;
  /** Write fetched operations and progress to `store`, so a later fetch resumes. */
  persist?: boolean;
  /** Operations per request (default 1,024). */
  batchSize?: number;
  /** Requests in flight (default 4). */
  maxOutstanding?: number;
  /** Stops the fetch; the iterator rejects with the signal's reason. */
  signal?: AbortSignal;
  /** After every batch, with where the fetch stands. */
  onProgress?: (p: LogFetchProgress) => void;
  /** Called for every answer that failed verification (its peer is penalised). */
  onInvalidResponse?: (request: LogRequest, error: InvalidLogResponse) => void;
}

/** The stored run and the log the network proves are not the same history. */
export const StoredLogMismatch = errorClass(ProofsyncError, 'StoredLogMismatch');

/** A verified operation whose delta says it sits at another log index (a writer bug). */
export const LogIndexMismatch = errorClass(ProofsyncError, 'LogIndexMismatch');

/**
 * Decodes a verified operation. The bytes are authenticated by the MMR proof against the signed
 * log root, so the delta's own signature adds nothing; its `logIndex` must be `index`.
 */
export function decodeOperation(op: RawOperation): LogOperation {
  const d = decodeDelta(op.bytes);
  if (d.logIndex !== op.index) throw new LogIndexMismatch(`operation ${op.index} is a delta for log index ${d.logIndex}`, { index: op.index, logIndex: d.logIndex });
  return { index: op.index, id: d.id, actions: d.actions, hlc: d.hlc, stateRoot: d.stateRoot };
}

/** The newest target seen, with waiters; fed from the caller's iterable. */
class TargetFeed {
  latest: LogTarget | undefined;
  closed = false;
  #waiters = new Set<() => void>();
  #subscribers = new Set<(t: LogTarget | undefined) => void>();

  constructor(targets: AsyncIterable<LogTarget>, signal: AbortSignal) {
    void (async () => {
      try {
        for await (const t of targets) {
          if (signal.aborted) break;
          if (this.latest && t.size <= this.latest.size) continue;
          this.latest = t;
          this.#wake();
          for (const s of this.#subscribers) s(t);
        }
      } catch {
        // a target stream that fails is one that ended
      }
      this.closed = true;
      this.#wake();
      for (const s of this.#subscribers) s(undefined);
    })();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** The newest target once one exists (undefined: the stream ended without any). */
  async first(signal: AbortSignal): Promise<LogTarget | undefined> {
    return this.beyond(-1, signal);
  }

  /** The newest target once its size exceeds `size` (undefined: the stream ended first). */
  async beyond(size: number, signal: AbortSignal): Promise<LogTarget | undefined> {
    while (!(this.latest && this.latest.size > size)) {
      if (this.closed) return undefined;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return this.latest;
  }

  /** Engine targets for sizes beyond `after`, as they arrive, for operations from `lower`. */
  updates(after: number, lower: number): AsyncIterable<LogSyncTarget> {
    const items: LogTarget[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const listener = (t: LogTarget | undefined): void => {
      if (t) items.push(t);
      else ended = true;
      wake?.();
    };
    const subscribers = this.#subscribers;
    return {
      async *[Symbol.asyncIterator]() {
        subscribers.add(listener);
        try {
          for (;;) {
            while (items.length) {
              const t = items.shift()!;
              if (t.size <= after) continue;
              after = t.size;
              yield { root: t.root, lower, upper: t.size };
            }
            if (ended) return;
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          subscribers.delete(listener);
        }
      },
    };
  }
}

/** Batches handed from the sync's `onApply` to the consumer; `push` waits while it is full. */
class BatchChannel<T> {
  readonly #items: T[] = [];
  readonly #highWater: number;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  #end: { error?: unknown } | undefined;

  constructor(highWater: number) {
    this.#highWater = highWater;
  }

  async push(item: T, signal: AbortSignal): Promise<void> {
    this.#items.push(item);
    this.#wakeReader?.();
    while (this.#items.length > this.#highWater && !signal.aborted) {
      await new Promise<void>((r) => {
        this.#wakeWriter = r;
        signal.addEventListener('abort', () => r(), { once: true });
      });
    }
    signal.throwIfAborted();
  }

  end(error?: unknown): void {
    this.#end = { error };
    this.#wakeReader?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#items.length) {
        const item = this.#items.shift()!;
        this.#wakeWriter?.();
        yield item;
        continue;
      }
      if (this.#end) {
        if (this.#end.error !== undefined) throw this.#end.error;
        return;
      }
      await new Promise<void>((r) => (this.#wakeReader = r));
      this.#wakeReader = undefined;
    }
  }
}

/** A request that never resolves: the engine's slots past `to` wait here until the fetch ends. */
function parked(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal?.aborted) reject(signal.reason);
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Verified operations `[from, to)` of the writer's log, in order and in batches: first those
 * already stored, then those fetched (and, with `persist`, stored) from `source`.
 *
 * @example
 * for await (const batch of fetchOperationBatches({ source, targets, from: 0, to: 5000 })) {
 *   for (const op of batch) show(decodeOperation(op));
 * }
 */
export async function* fetchOperationBatches(o: FetchOperationsOptions): AsyncGenerator<RawOperation[]> {
  const from = o.from ?? 0;
  const to = o.to;
  if (!Number.isSafeInteger(from) || from < 0) throw new RangeError(`expected from to be a non-negative integer, got ${from}`);
  if (to !== undefined && (!Number.isSafeInteger(to) || to < from)) throw new RangeError(`expected to to be an integer >= from ${from}, got ${to}`);
  if (o.persist && !o.store) throw new TypeError('persist needs a store');
  const batchSize = o.batchSize ?? 1024;
  const life = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, life.signal]) : life.signal;
  const feed = new TargetFeed(o.targets, signal);
  const logStore = o.store ? new LogStore(o.store) : undefined;
  const progress: LogFetchProgress = {
    from,
    to,
    next: from,
    targetSize: 0,
    seq: -1,
    fromStore: 0,
    fetched: 0,
    storedUpTo: undefined,
    outstanding: 0,
    rejected: 0,
  };
  const report = (): void => o.onProgress?.({ ...progress });

  try {
    // 1. what is stored
    let run = await logStore?.run();
    progress.storedUpTo = run?.next;
    if (run && run.lower <= from && from <= run.next) {
      const end = to === undefined ? run.next : Math.min(run.next, to);
      let batch: RawOperation[] = [];
      for await (const [index, bytes] of logStore!.read(from, end)) {
        batch.push({ index, bytes });
        if (batch.length === batchSize) {
          progress.fromStore += batch.length;
          progress.next = index + 1;
          report();
          yield batch;
          batch = [];
        }
      }
      if (batch.length) {
        progress.fromStore += batch.length;
        progress.next = end;
        report();
        yield batch;
      }
    } else if (run && o.persist) {
      // one run per store: a fetch outside it replaces it
      await logStore!.clear();
      run = undefined;
      progress.storedUpTo = undefined;
    }
    const cursor = progress.next;
    if (to !== undefined && cursor >= to) return;

    // 2. the first target beyond what is delivered
    const first = await feed.first(signal);
    if (!first) return;
    progress.targetSize = first.size;
    progress.seq = first.seq;
    if (first.size <= cursor && to === undefined && !o.follow) return report();
    const target = first.size > cursor ? first : await feed.beyond(cursor, signal);
    if (!target) return;
    progress.targetSize = target.size;
    progress.seq = target.seq;
    report();

    // 3. the network fetch from `cursor`
    const resuming = o.persist && run !== undefined && run.next === cursor;
    const runLower = resuming ? run!.lower : cursor;
    let frontier: MmrFrontier | undefined = !o.persist ? undefined : resuming ? MmrFrontier.fromPeaks(cursor, run!.frontier) : cursor === 0 ? MmrFrontier.fromPeaks(0, []) : undefined;
    const storedPeaks: Digest[] | undefined = resuming ? run!.frontier : undefined;
    let pinnedAtCursor: Digest[] | undefined;
    const source: LogSource = {
      fetch: async (req): Promise<LogFetchResponse> => {
        if (to !== undefined && req.start >= to) return parked(req.signal);
        const res = await o.source.fetch(to === undefined ? req : { ...req, maxOps: Math.min(req.maxOps, to - req.start) });
        if (!req.withPinned || req.start !== cursor) return res;
        const pinned = res.pinned;
        return {
          ...res,
          feedback: (valid) => {
            // accepted before the batch is applied: the pinned nodes at `cursor`, verified
            if (valid && pinned) pinnedAtCursor = pinned.map((d) => d.slice());
            res.feedback?.(valid);
          },
        };
      },
    };
    const engine = new AbortController();
    const engineSignal = AbortSignal.any([signal, engine.signal]);
    const channel = new BatchChannel<RawOperation[]>(4);
    let mismatch: Error | undefined;
    let reachedTo = false;
    const done = runLogSync({
      source,
      target: { root: target.root, lower: cursor, upper: target.size },
      signal: engineSignal,
      fetchBatchSize: batchSize,
      maxOutstanding: o.maxOutstanding ?? 4,
      targetUpdates: feed.updates(target.size, cursor),
      // a fixed `to` or `follow`: stay at reached targets (the fetch ends by aborting)
      finish: o.follow || to !== undefined ? parked(engineSignal).catch(() => undefined) : undefined,
      onApply: async (start, ops, peaks) => {
        const take = to === undefined ? ops : ops.slice(0, Math.max(0, to - start));
        if (take.length === 0) return;
        if (start === cursor && cursor > 0 && pinnedAtCursor) {
          if (storedPeaks && !samePeaks(storedPeaks, pinnedAtCursor)) {
            mismatch = new StoredLogMismatch(`the stored run [${runLower}, ${cursor}) is not a prefix of the log the writer signed at size ${target.size}`);
            throw mismatch;
          }
          frontier ??= o.persist ? MmrFrontier.fromPeaks(cursor, pinnedAtCursor) : undefined;
        }
        if (o.persist) {
          if (!frontier) throw new Error(`no MMR frontier at ${start}: the boundary batch brought no pinned nodes`);
          // the engine's peaks after the batch (its verification computed them); a batch cut
          // short at `to` is hashed here
          if (take.length === ops.length && frontier.leafCount === start) frontier.advance(start + ops.length, peaks);
          else for (const op of take) frontier.append(op);
          await logStore!.append(runLower, start, take, frontier);
          progress.storedUpTo = start + take.length;
        }
        progress.fetched += take.length;
        progress.next = start + take.length;
        if (to !== undefined && progress.next >= to) reachedTo = true;
        await channel.push(
          take.map((bytes, i) => ({ index: start + i, bytes })),
          engineSignal,
        );
        if (reachedTo) engine.abort(new DOMException('the requested run is complete', 'AbortError'));
      },
      onProgress: (p: LogSyncProgress) => {
        progress.outstanding = p.outstanding;
        if (p.upper !== progress.targetSize) {
          progress.targetSize = p.upper;
          progress.seq = feed.latest && feed.latest.size === p.upper ? feed.latest.seq : progress.seq;
        }
        report();
      },
      onTargetReached: (t, root) => {
        if (frontier && frontier.leafCount === t.upper && !equalBytes(frontier.root(), root)) {
          mismatch = new StoredLogMismatch(`the stored run and the fetched operations do not rebuild the signed log root at size ${t.upper}`);
          throw mismatch;
        }
      },
      onInvalidResponse: (request, error) => {
        progress.rejected++;
        o.onInvalidResponse?.(request, error);
      },
    });
    done.then(
      () => channel.end(),
      (err: unknown) => channel.end(reachedTo && engine.signal.aborted && !signal.aborted ? undefined : err),
    );
    try {
      for await (const batch of channel) yield batch;
    } catch (err) {
      if (mismatch && logStore) await logStore.clear();
      throw err;
    } finally {
      engine.abort(new DOMException('the fetch ended', 'AbortError'));
      await done.catch(() => undefined);
    }
    report();
  } finally {
    life.abort(new DOMException('the fetch ended', 'AbortError'));
  }
}
