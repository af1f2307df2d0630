/**
 * Whose fault a failed request is. An answer that is malformed, oversized or wrong-typed
 * (`MessageTooLarge`, `TooManyItems`, `InvalidWireType`, `InvalidFieldNumber`, ...), or a proof
 * that does not verify, is the peer's: it is penalised and, after a few, banned. An error
 * envelope the peer sent on purpose (`RootNotFound`, `RateLimited`, ... with `details.remote`),
 * a timeout or a reset is no answer: the peer is backed off and ranked by the time it took.
 */
import { DecodeError, ProofError, UnexpectedResponse } from '../core/errors.ts';

/**
 * The request got an invalid answer: the peer's fault. A peer held on the main thread
 * (WebRTC-Direct) is read there; its framing faults cross the bridge as their own classes
 * (client/errors.ts `reviveError` rebuilds every registered error).
 */
export function isAnswerFault(e: unknown): e is Error {
  if ((e as { details?: { remote?: unknown } } | null)?.details?.remote) return false;
  return e instanceof ProofError || e instanceof DecodeError || e instanceof UnexpectedResponse;
}

/**
 * The peer does not serve the protocol at all (libp2p's multistream-select found no match): a
 * gossip-only peer or another application, not a slow or faulty server; or a static mirror
 * has no file for the request (state/http-source.ts: a 404, another checkpoint, a change
 * proof). It leaves the sync's sources instead of being retried on a back-off.
 */
export function isNotServed(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'UnsupportedProtocolError' || name === 'NotServedStatically';
}

/** The request ran past a deadline (ours, the stream's, or the server's own). */
export function isTimeout(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'RequestTimeout' || name === 'TimeoutError';
}
