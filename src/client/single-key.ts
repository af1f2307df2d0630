/**
 * `getVerified`: one key's value (or absence) from an untrusted peer, proven against a signed
 * root, before (or without) a local sync. The wire has no single-key protocol, so the question
 * is a range proof request for `[key, key]` with a key limit of 1 (docs/proofs.md#verification): the
 * only key the range can hold is `key` itself, so a valid proof shows its value or, with no
 * key-values, its absence. A proof that does not rebuild the signed root is rejected.
 */
import { verifyRangeProof } from '../core/proof.ts';
import type { RangeProof, RangeProofRequest } from '../core/types.ts';

/** Enough for a proof path of two 32-byte keys plus a value; far above what one key needs. */
export const SINGLE_KEY_BYTES_LIMIT = 1 << 20;

/**
 * The range proof request that asks for `key` alone at `root`: the range `[key, key]` with a key
 * limit of 1. Throws `RangeError` for a root that is not 32 bytes.
 *
 * @example
 * const req = singleKeyRequest(announcement.stateRoot, key);
 * const frame = await request(node, peer, '/proofsync/1/range', encodeRangeProofRequest(req), { maxResponseBytes: 2 << 20 });
 * const res = decodeRangeProofResponse(frame, { maxKeyValues: 1 });
 * if (res.type === 'rangeProof') console.log(verifySingleKey(announcement.stateRoot, key, res.proof));
 */
export function singleKeyRequest(root: Uint8Array, key: Uint8Array): RangeProofRequest {
  if (!(root instanceof Uint8Array) || root.length !== 32) throw new RangeError(`expected 32-byte root, got ${root?.length}`);
  if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
  return { rootHash: root, startKey: key, endKey: key, keyLimit: 1, bytesLimit: SINGLE_KEY_BYTES_LIMIT };
}

/**
 * Verifies a peer's answer to `singleKeyRequest(root, key)` and returns the proven value
 * (undefined: the key is absent at `root`). Throws the `ProofError` of the rule it breaks.
 *
 * @example
 * const proof = await requestRangeProof(peer, singleKeyRequest(ann.stateRoot, key), { timeoutMs: 5_000 });
 * const value = verifySingleKey(ann.stateRoot, key, proof);
 */
export function verifySingleKey(root: Uint8Array, key: Uint8Array, proof: RangeProof): Uint8Array | undefined {
  // start = end = key: StateFromOutsideOfRange rejects any other key, TooManyKeys a second one
  verifyRangeProof(proof, { root, start: key, end: key, keyLimit: 1 });
  return proof.keyValues[0]?.value;
}
