/**
 * Errors the sync layer raises itself and the light client also raises: they live here, below
 * both, and `src/client/errors.ts` re-exports them, so `NoPeers` is one class whether the
 * browser worker or a Node log fetch throws it (and `instanceof LightClientError` holds for it).
 * The engines' own errors stay with their engines (`InvalidLogResponse`, `InvalidTargetUpdate`,
 * `CorruptLogStore`); `RequestTimeout` is the stream layer's (protocol/stream.ts).
 */
import { errorClass, ProofsyncError, registerError } from '../core/errors.ts';

/**
 * Base of the light client's own errors; each subclass names one condition.
 *
 * @example
 * try {
 *   await client.get(key);
 * } catch (err) {
 *   if (err instanceof LightClientError) console.warn(err.name, err.message); // e.g. KeyOutOfScope
 *   else throw err;
 * }
 */
export class LightClientError extends ProofsyncError {
  /** `'LightClientError'`; each subclass sets its own. */
  override readonly name: string = 'LightClientError';
}
registerError(LightClientError, 'LightClientError');

/** No bootstrap peer could be reached, or none gave a valid signed announcement. */
export const NoPeers = errorClass(LightClientError, 'NoPeers');
