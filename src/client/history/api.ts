/**
 * `client.log` on the page: the writer's history, fetched by the worker from
 * untrusted peers and verified against signed log roots (docs/mmr.md), as an async iterator.
 */
import type { LogFetchProgress, LogOperation } from '../../sync/log/fetch.ts';
import type { LogBatchReply, LogCall, LogOpenRequest, LogReply } from './worker-messages.ts';

/**
 * Options of `client.log.fetch`: the index range, whether to follow and store, batch sizes,
 * and an abort signal and progress callback.
 *
 * @example
 * const options: LogFetchOptions = { from: 0, to: 10_000, store: true, signal: AbortSignal.timeout(60_000) };
 * for await (const op of client.log.fetch(options)) console.log(op.index);
 */
export interface LogFetchOptions extends LogOpenRequest {
  /** Stops the fetch; the iterator rejects with the signal's reason. */
  signal?: AbortSignal;
  /** After every batch, with where the fetch stands. */
  onProgress?: (progress: LogFetchProgress) => void;
}

/** How the API reaches the worker: one `log` call (LightClient's call plumbing). */
export type LogCaller = (call: LogCall, signal?: AbortSignal) => Promise<LogReply>;

/**
 * The writer's history on the page, `client.log`: operations of the writer's log fetched by the
 * worker from untrusted peers and verified against signed log roots (docs/mmr.md).
 *
 * @example
 * const client = createLightClient({ db, writer, bootstrap });
 * for await (const op of client.log.fetch({ from: 0, to: 100 })) console.log(op.index, op.actions.length);
 */
export class LogApi {
  readonly #call: LogCaller;

  /** @internal created by the LightClient */
  constructor(call: LogCaller) {
    this.#call = call;
  }

  /**
   * Verified operations `[from, to)` of the writer's log, in order: each is the writer's delta
   * at that index, decoded (`{index, id, actions, hlc, stateRoot}`), proven against the log root
   * of a signed announcement. With `to` open the fetch follows newer announcements until it
   * reaches the newest (with `follow`, until aborted). With `store: true` operations are kept in
   * the client's IndexedDB with their progress, and a later fetch (after a reload too) reads
   * them back and continues the network fetch where it stopped. Breaking out of the loop stops
   * the fetch.
   *
   * @example
   * for await (const op of client.log.fetch({ from: 0, to: 1000, store: true, onProgress: (p) => bar(p.next / (p.to ?? p.targetSize)) })) {
   *   feed.append(op.index, op.hlc.wallMs, op.actions.length);
   * }
   */
  fetch(o: LogFetchOptions = {}): AsyncIterable<LogOperation> {
    const request: LogOpenRequest = {
      from: o.from,
      to: o.to,
      follow: o.follow,
      store: o.store,
      batchSize: o.batchSize,
      maxOutstanding: o.maxOutstanding,
    };
    for (const [k, v] of Object.entries({ from: o.from, to: o.to, batchSize: o.batchSize, maxOutstanding: o.maxOutstanding })) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new RangeError(`expected ${k} to be a non-negative integer, got ${v}`);
    }
    const call = this.#call;
    return {
      async *[Symbol.asyncIterator]() {
        const { handle } = (await call({ op: 'open', request }, o.signal)) as { handle: number };
        let done = false;
        try {
          while (!done) {
            const r = (await call({ op: 'next', handle }, o.signal)) as LogBatchReply;
            done = r.done;
            if (r.progress) o.onProgress?.(r.progress);
            yield* r.ops;
          }
        } finally {
          if (!done) await call({ op: 'close', handle }).catch(() => undefined);
        }
      },
    };
  }
}
