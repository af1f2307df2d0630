/**
 * Answering range and change proof requests (docs/proofs.md#serving): validate, clamp the limits,
 * and halve the key limit until the encoded response is smaller than the byte limit.
 * Used by the full node's protocol handlers and by the CLI.
 */
import { compareBytes, equalBytes } from '../core/bytes.ts';
import { InvalidRequest, MinProofSizeTooLarge } from '../core/errors.ts';
import type { MerkleDatabase } from '../core/database.ts';
import { EMPTY_ROOT, type ChangeProof, type ChangeProofRequest, type RangeProof, type RangeProofRequest } from '../core/types.ts';
import { changeProofSize, rangeProofResponseSize } from './codec.ts';

/** The most key-values a served proof holds, whatever the request's key limit (docs/proofs.md#serving). */
export const MAX_KEY_LIMIT = 2048;
/** The largest served response in bytes, whatever the request's byte limit: 2 MiB less 4 KiB of envelope. */
export const MAX_BYTE_LIMIT = 2 * 1024 * 1024 - 4 * 1024;

function checkCommon(keyLimit: number, bytesLimit: number, start: Uint8Array | undefined, end: Uint8Array | undefined): void {
  if (!Number.isInteger(keyLimit) || keyLimit <= 0) throw new InvalidRequest(`key limit must be a positive integer, got ${keyLimit}`);
  if (!Number.isInteger(bytesLimit) || bytesLimit <= 0) throw new InvalidRequest(`byte limit must be a positive integer, got ${bytesLimit}`);
  if (start && end && compareBytes(start, end) > 0) throw new InvalidRequest('start key is after end key');
}

function checkRoot(root: Uint8Array, what: string): void {
  if (root.length !== 32) throw new InvalidRequest(`expected 32-byte ${what}, got ${root.length}`);
}

/** Halves the key limit until `size(proof) < bytesLimit` (docs/proofs.md#serving). */
async function fit<P>(keyLimit: number, bytesLimit: number, make: (limit: number) => Promise<P>, size: (p: P) => number): Promise<P> {
  let limit = Math.min(keyLimit, MAX_KEY_LIMIT);
  const bytes = Math.min(bytesLimit, MAX_BYTE_LIMIT);
  while (limit > 0) {
    const proof = await make(limit);
    if (size(proof) < bytes) return proof;
    limit >>= 1;
  }
  throw new MinProofSizeTooLarge(`even a one-key proof does not fit in ${bytes} bytes`, { bytesLimit: bytes });
}

/**
 * Answers a range proof request from `db` (docs/proofs.md#serving): validates it (`InvalidRequest`),
 * clamps the limits to `MAX_KEY_LIMIT` and `MAX_BYTE_LIMIT`, and halves the key limit until the
 * encoded response fits (`MinProofSizeTooLarge` when not even one key does).
 *
 * @example
 * const proof = await serveRangeProof(db, decodeRangeProofRequest(frame));
 * await writeFrame(stream, encodeRangeProofResponse({ type: 'rangeProof', proof }));
 */
export async function serveRangeProof(db: MerkleDatabase, req: RangeProofRequest): Promise<RangeProof> {
  checkRoot(req.rootHash, 'root');
  checkCommon(req.keyLimit, req.bytesLimit, req.startKey, req.endKey);
  if (equalBytes(req.rootHash, EMPTY_ROOT)) throw new InvalidRequest('the empty root has no range proofs');
  return fit(
    req.keyLimit,
    req.bytesLimit,
    (keyLimit) => db.rangeProof(req.rootHash, { start: req.startKey, end: req.endKey, keyLimit }),
    rangeProofResponseSize,
  );
}

/** A served change proof, or the range proof at the end root that replaces it (docs/proofs.md#serving). */
export type ServedChangeProof = { type: 'changeProof'; proof: ChangeProof } | { type: 'rangeProof'; proof: RangeProof };

/**
 * Answers a change proof request from `db` (docs/proofs.md#serving): a change proof when the start
 * root is in the history window, else a range proof at the end root; validated, clamped and
 * halved to fit as `serveRangeProof`.
 *
 * @example
 * const served = await serveChangeProof(db, decodeChangeProofRequest(frame));
 * await writeFrame(stream, encodeChangeProofResponse(served));
 */
export async function serveChangeProof(db: MerkleDatabase, req: ChangeProofRequest): Promise<ServedChangeProof> {
  checkRoot(req.startRootHash, 'start root');
  checkRoot(req.endRootHash, 'end root');
  checkCommon(req.keyLimit, req.bytesLimit, req.startKey, req.endKey);
  if (equalBytes(req.endRootHash, EMPTY_ROOT)) throw new InvalidRequest('the end root must not be empty');
  return fit<ServedChangeProof>(
    req.keyLimit,
    req.bytesLimit,
    async (keyLimit) => {
      const r = await db.changeProof(req.startRootHash, req.endRootHash, { start: req.startKey, end: req.endKey, keyLimit });
      return r.type === 'change' ? { type: 'changeProof', proof: r.proof } : { type: 'rangeProof', proof: r.proof };
    },
    (r) => (r.type === 'changeProof' ? changeProofSize(r.proof) : rangeProofResponseSize(r.proof)),
  );
}
