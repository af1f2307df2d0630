/**
 * The `log` call between the page and the light client's worker (worker/worker-messages.ts carries it
 * as `{ method: 'log', call }`). A fetch is pulled: `open` starts it in the worker, each `next`
 * returns the next verified batch (decoded) with the progress after it, `close` stops it. The
 * worker keeps fetching ahead of the page by a few batches, so pulling costs no round trip of
 * network time. Everything here is structured-clone safe.
 */
import type { LogFetchProgress, LogOperation } from '../../sync/log/fetch.ts';

/** What `client.log.fetch` passes to the worker. */
export interface LogOpenRequest {
  /** First index (default 0). */
  from?: number;
  /** End, exclusive (default: the newest announced log size, moving while fetching). */
  to?: number;
  /** With `to` open: keep following new announcements until aborted. */
  follow?: boolean;
  /** Store verified operations with their progress (and resume a stored run). */
  store?: boolean;
  /** Operations per request (default 1,024). */
  batchSize?: number;
  /** Requests in flight (default 4). */
  maxOutstanding?: number;
}

export type LogCall =
  | { op: 'open'; request: LogOpenRequest }
  | { op: 'next'; handle: number }
  | { op: 'close'; handle: number };

export interface LogBatchReply {
  ops: LogOperation[];
  progress: LogFetchProgress | undefined;
  /** No batch follows. */
  done: boolean;
}

export type LogReply = { handle: number } | LogBatchReply | undefined;
