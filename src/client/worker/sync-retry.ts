/**
 * How the engine host (engine-host.ts) recognises an error and what its sync loop does after
 * one. Errors are recognised by `name`, one way everywhere: a proofsync error's class carries a
 * stable name (core/errors.ts `errorClass`), IndexedDB and `AbortSignal` raise DOMExceptions
 * known only by name, and a name survives what `instanceof` does not (another realm, a copy of
 * the library bundled twice, a message from another thread).
 */

/** The error's `name`, or undefined when it has none (a thrown string, undefined). */
export function errorName(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | null | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
}

/** Whether `err` is one of the conditions named (class names such as `NoPeers.name`, or DOMException names). */
export function isError(err: unknown, ...names: readonly string[]): boolean {
  const name = errorName(err);
  return name !== undefined && names.includes(name);
}

/** A sync that ends with one of these stops for good until `resume()`: the store is full. */
const STORAGE_FULL = ['StorageQuotaExceeded', 'InsufficientStorage'];
/** No peer can serve now: wait for a new peer (or the longest backoff), not a short retry. */
const NO_SOURCE = ['SyncStalled', 'NoPeers'];
/** A peer refusing for load (its per-peer limits, protocol/peer-limits.ts): ask again shortly. */
const LOAD_REFUSALS = ['TooManyStreams', 'RateLimited'];

export const MAX_BACKOFF_MS = 30_000;

/** What the sync loop does after an attempt failed. */
export type SyncRetry =
  /** The sync was stopped (pause, clear, close): end quietly. */
  | { action: 'stop' }
  /** Report the error as fatal and end: the store stays at its last committed state, readable. */
  | { action: 'fatal' }
  /** Report the error and try again after `waitMs`, sooner if a peer connects. */
  | { action: 'retry'; waitMs: number };

/**
 * The sync loop's decision after attempt number `failures` (1 for the first failure) ended
 * with `err`.
 */
export function syncRetry(err: unknown, failures: number): SyncRetry {
  if (isError(err, 'AbortError')) return { action: 'stop' };
  if (isError(err, ...STORAGE_FULL)) return { action: 'fatal' };
  if (isError(err, ...NO_SOURCE)) return { action: 'retry', waitMs: MAX_BACKOFF_MS };
  return { action: 'retry', waitMs: Math.min(MAX_BACKOFF_MS, 250 * 2 ** failures) };
}

/** Whether a peer refused a request for load, so that asking again shortly may succeed. */
export function isLoadRefusal(err: unknown): boolean {
  return isError(err, ...LOAD_REFUSALS);
}
