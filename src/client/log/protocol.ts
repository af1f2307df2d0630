/**
 * The `log` call between the page and the light client's worker (worker/protocol.ts carries it
 * as `{ method: 'log', call }`). A fetch is pulled: `open` starts it in the worker, each `next`
 * returns the next verified batch (decoded) with the progress after it, `close` stops it. The
 * worker keeps fetching ahead of the page by a few batches, so pulling costs no round trip of
 * network time. Everything here is structured-clone safe.
 */
import type { LogFetchProgress, LogOperation } from './fetch.ts';

/** What `client.log.fetch` passes to the worker. */
export interface LogFetchRequest {
  from?: number;
  to?: number;
  follow?: boolean;
  /** Store verified operations with their progress (and resume a stored run). */
  store?: boolean;
  batchSize?: number;
  maxOutstanding?: number;
}

export type LogCall =
  | { op: 'open'; request: LogFetchRequest }
  | { op: 'next'; handle: number }
  | { op: 'close'; handle: number };

export interface LogBatchReply {
  ops: LogOperation[];
  progress: LogFetchProgress | undefined;
  /** No batch follows. */
  done: boolean;
}

export type LogReply = { handle: number } | LogBatchReply | undefined;
