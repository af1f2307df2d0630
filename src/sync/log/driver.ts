/**
 * The async driver of the log sync engine: it runs the engine's actions against a
 * {@link LogSource} (fetches with per-request `AbortController`s, feedback, applies) and feeds
 * the results back as events. All decisions are the engine's (`engine.ts`); this file only
 * waits. docs/mmr.md#syncing-a-log.
 */
import { LogSyncEngine, type InvalidLogResponse, type LogSyncAction, type LogSyncEvent } from './engine.ts';
import type { LogRequest } from './requests.ts';
import type { LogFetchResponse, LogSource } from './source.ts';
import type { InvalidTargetUpdate, LogSyncTarget } from './target.ts';
import { EventQueue } from '../event-queue.ts';

export interface LogSyncProgress {
  /** Next location to apply. */
  applied: number;
  lower: number;
  upper: number;
  outstanding: number;
}

export interface RunLogSyncOptions {
  source: LogSource;
  target: LogSyncTarget;
  signal?: AbortSignal;
  /** Default 256. */
  fetchBatchSize?: number;
  /** Default 4. */
  maxOutstanding?: number;
  maxRetainedRoots?: number;
  maxRetries?: number;
  /** Newer targets, e.g. from signed announcements; sync follows them until this ends. */
  targetUpdates?: AsyncIterable<LogSyncTarget>;
  /** When given, completion is held at a reached target until this resolves. */
  finish?: Promise<void>;
  /**
   * Receives applied operations in order, with the MMR peaks over `[0, start + ops.length)`
   * after them; when given, operations are not collected.
   */
  onApply?: (start: number, ops: Uint8Array[], peaks: Uint8Array[]) => void | Promise<void>;
  /** Everything applied so far is void; applies restart at `lower`. */
  onReset?: (lower: number) => void | Promise<void>;
  onProgress?: (progress: LogSyncProgress) => void;
  onTargetReached?: (target: LogSyncTarget, root: Uint8Array) => void;
  onTargetRejected?: (target: LogSyncTarget, error: InvalidTargetUpdate) => void;
  /** A response failed verification (its source was told through `feedback`). */
  onInvalidResponse?: (request: LogRequest, error: InvalidLogResponse) => void;
}

export interface LogSyncResult {
  target: LogSyncTarget;
  root: Uint8Array;
  /** Operations `target.lower..target.upper-1`, unless `onApply` took them. */
  ops?: Uint8Array[];
}


/**
 * Syncs operations `target.lower..target.upper-1` of a log from `source`, verifying every batch,
 * and resolves with the final target and root once the applied log rebuilds it. Rejects with
 * `RootMismatch`, `SyncStalled`, `InvalidLogResponse` (from a source that takes no feedback) or
 * the signal's reason.
 *
 * @example
 * const { ops } = await runLogSync({ source, target: { root, lower: 0, upper: 1000 } });
 */
export async function runLogSync(options: RunLogSyncOptions): Promise<LogSyncResult> {
  const { source, signal } = options;
  signal?.throwIfAborted();
  const engine = new LogSyncEngine({
    target: options.target,
    fetchBatchSize: options.fetchBatchSize ?? 256,
    maxOutstanding: options.maxOutstanding ?? 4,
    maxRetainedRoots: options.maxRetainedRoots,
    maxRetries: options.maxRetries,
    holdCompletion: options.finish !== undefined,
    acceptsUpdates: options.targetUpdates !== undefined,
  });
  const queue = new EventQueue<LogSyncEvent>();
  const inFlight = new Map<number, { request: LogRequest; controller: AbortController; response?: LogFetchResponse }>();
  const collected: Uint8Array[] = [];
  let collectedFrom = options.target.lower;
  let stopUpdates = false;
  let updates: AsyncIterator<LogSyncTarget> | undefined;

  const startFetch = (request: LogRequest): void => {
    const controller = new AbortController();
    const entry: { request: LogRequest; controller: AbortController; response?: LogFetchResponse } = { request, controller };
    inFlight.set(request.id, entry);
    const fetchSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const { id, root, leafCount, start, maxOps, withPinned } = request;
    Promise.resolve()
      .then(() => source.fetch({ root, leafCount, start, maxOps, withPinned, signal: fetchSignal }))
      .then(
        (response) => {
          if (controller.signal.aborted) return;
          entry.response = response;
          queue.push({
            type: 'response',
            id,
            ops: response?.ops,
            proof: response?.proof,
            pinned: response?.pinned,
            acceptsFeedback: typeof response?.feedback === 'function',
          });
        },
        (error: unknown) => {
          if (!controller.signal.aborted) queue.push({ type: 'fetchFailed', id, error });
        },
      );
  };

  const tellSource = (id: number, valid: boolean): LogRequest | undefined => {
    const entry = inFlight.get(id);
    inFlight.delete(id);
    try {
      entry?.response?.feedback?.(valid);
    } catch {
      // A source that drops its feedback channel is not our failure.
    }
    return entry?.request;
  };

  const run = async (actions: LogSyncAction[]): Promise<LogSyncResult | undefined> => {
    let result: LogSyncResult | undefined;
    for (const action of actions) {
      switch (action.type) {
        case 'fetch':
          startFetch(action.request);
          break;
        case 'cancel':
          inFlight.get(action.id)?.controller.abort();
          inFlight.delete(action.id);
          break;
        case 'accept':
          tellSource(action.id, true);
          break;
        case 'penalise': {
          const request = tellSource(action.id, false);
          if (request) options.onInvalidResponse?.(request, action.error);
          break;
        }
        case 'apply':
          if (options.onApply) await options.onApply(action.start, action.ops, action.peaks);
          else collected.push(...action.ops);
          break;
        case 'reset':
          collected.length = 0;
          collectedFrom = action.lower;
          await options.onReset?.(action.lower);
          break;
        case 'targetReached':
          options.onTargetReached?.(action.target, action.root);
          break;
        case 'targetRejected':
          options.onTargetRejected?.(action.target, action.error);
          break;
        case 'done': {
          const { target, root } = action;
          result = options.onApply ? { target, root } : { target, root, ops: collected.slice(target.lower - collectedFrom) };
          break;
        }
        case 'failed':
          throw action.error;
      }
    }
    for (const id of [...inFlight.keys()]) if (!engine.outstanding.some((r) => r.id === id)) inFlight.delete(id);
    options.onProgress?.({
      applied: engine.applied,
      lower: engine.target.lower,
      upper: engine.target.upper,
      outstanding: engine.outstanding.length,
    });
    return result;
  };

  if (options.targetUpdates) {
    updates = options.targetUpdates[Symbol.asyncIterator]();
    const it = updates;
    void (async () => {
      try {
        for (;;) {
          const next = await it.next();
          if (stopUpdates) return;
          if (next.done) break;
          queue.push({ type: 'targetUpdate', target: next.value });
        }
      } catch {
        // An update stream that fails is an update stream that ended.
      }
      if (!stopUpdates) queue.push({ type: 'updatesClosed' });
    })();
  }
  options.finish?.then(
    () => queue.push({ type: 'finish' }),
    () => queue.push({ type: 'finish' }),
  );

  try {
    let result = await run(engine.start());
    while (!result) {
      const event = await queue.next(signal);
      result = await run(engine.step(event));
    }
    return result;
  } finally {
    stopUpdates = true;
    for (const { controller } of inFlight.values()) controller.abort();
    void updates?.return?.()?.catch?.(() => {});
  }
}
