/**
 * Errors of the light client's public API, one class per condition with a stable
 * `name` (docs/style.md; callers match on `err.name` or `instanceof`). They cross the worker
 * boundary as `{name, message, details}` and are rebuilt here by name (`reviveError`), so an
 * error raised inside the worker arrives on the page as the same class.
 *
 * Proof, decode and request errors keep the core's names (docs/proofs.md#verification); the storage
 * errors are those of the IndexedDB store (`StorageQuotaExceeded` leaves the store readable).
 * The page rebuilds every class of the error registry (src/core/errors.ts) by name.
 */
import { errorClass, ProofsyncError, rebuildError, type ErrorDetails } from '../core/errors.ts';
import { LightClientError, NoPeers } from '../sync/errors.ts';

export { ProofsyncError, LightClientError, NoPeers };

/** The client was closed (`close()`), or its worker went away; create a new one. */
export const ClientClosed = errorClass(LightClientError, 'ClientClosed');
/** Every peer asked answered with a proof that does not verify against the signed root. */
export const InvalidRemoteProof = errorClass(LightClientError, 'InvalidRemoteProof');
/** The key lies outside the ranges this client syncs (a partial sync): use `getVerified`. */
export const KeyOutOfScope = errorClass(LightClientError, 'KeyOutOfScope');
/** An announcement signed by the writer names another database than the one configured. */
export const WrongDatabase = errorClass(LightClientError, 'WrongDatabase');
/** `navigator.storage.estimate()` says the sync will not fit; free space or request persistence. */
export const InsufficientStorage = errorClass(LightClientError, 'InsufficientStorage');
/** The worker failed to load or crashed (see `cause` / `details.message`). */
export const WorkerFailed = errorClass(LightClientError, 'WorkerFailed');
/** The local state could not prove the key (it changed under the proof three times running). */
export const ProofUnavailable = errorClass(LightClientError, 'ProofUnavailable');

/** An error as it crosses `postMessage` (Error subclasses lose their class in structured clone). */
export interface SerializedError {
  name: string;
  message: string;
  details?: Record<string, unknown>;
  stack?: string;
}

/** Structured-clone-safe details (drops functions and anything that would not clone). */
function cloneableDetails(details: ErrorDetails | undefined): ErrorDetails | undefined {
  if (!details) return undefined;
  const out: ErrorDetails = {};
  for (const [k, v] of Object.entries(details)) {
    if (v === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof v) || v instanceof Uint8Array) out[k] = v;
  }
  return out;
}

/**
 * An error as plain data for `postMessage`. A proofsync error is its `name`, `message` and
 * `details` (src/core/errors.ts), so nothing else needs copying.
 */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const details = err instanceof ProofsyncError ? cloneableDetails(err.details) : undefined;
    return { name: err.name, message: err.message, details, stack: err.stack };
  }
  // DOMException in some engines is not instanceof Error
  const e = err as { name?: unknown; message?: unknown } | null;
  if (e && typeof e.name === 'string') return { name: e.name, message: String(e.message ?? '') };
  return { name: 'Error', message: String(err) };
}

/**
 * A named error rebuilt on the page; `name` is the one raised in the worker. Errors the page
 * has a class for arrive as that class; any other arrives as this one.
 *
 * @example
 * try {
 *   await client.getVerified(key);
 * } catch (err) {
 *   if (err instanceof RemoteWorkerError) console.warn(`worker error ${err.name}: ${err.message}`);
 * }
 */
export class RemoteWorkerError extends ProofsyncError {
  /** The name of the error raised in the worker. */
  override name: string;
  constructor(name: string, message: string, details?: ErrorDetails) {
    super(message, details);
    this.name = name;
  }
}

/**
 * Rebuilds an error from the worker: every class of the error registry by name (the light
 * client's, the core's, the store's, and any other the page has loaded), with its details;
 * `AbortError` and `TimeoutError` as `DOMException`s (what `signal.reason` is); anything else
 * as a `RemoteWorkerError` carrying the same `name`, `message` and `details`.
 */
export function reviveError(e: SerializedError): Error {
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return new DOMException(e.message, e.name);
  return rebuildError(e.name, e.message, e.details) ?? new RemoteWorkerError(e.name, e.message, e.details);
}
