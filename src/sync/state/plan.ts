/**
 * The canonical request plan (docs/sync.md#canonical-plan): for a checkpoint root, the range
 * requests every fresh client sends, byte for byte. A node can then answer each once and serve
 * the encoded answer to every later asker (its proof cache), and a static file server can hold
 * the answers as files named by `requestKey`. Pure: no store, no clock, no local state.
 *
 * - The key space is cut into `CANONICAL_PARTS` fixed parts by the top 6 bits of the first key
 *   byte. As every range of the sync (ranges.ts), a part is half-open with a boundary end (a key
 *   ending in 0x00): part i is `[b(i), b(i+1))` with `b(0)` the empty key, `b(i) = (i<<2) ++ 00`
 *   and the last part unbounded, so its request is `startKey = (i<<2) ++ 00` (none for part 0),
 *   `endKey = (i+1)<<2` as one byte (none for the last part). Part i thus holds the keys whose
 *   first byte's top 6 bits are i, except that the one-byte key `i<<2` belongs to part i − 1.
 * - Every request asks for `CANONICAL_KEY_LIMIT` keys within `CANONICAL_BYTES_LIMIT` bytes.
 * - A truncated answer is continued from a point computed from the answer alone
 *   (`canonicalResume`: the next key the proof shows the remote trie to hold, rounded down to a
 *   boundary), never from the local trie, and parts are never split further: so the chain of
 *   requests for a part depends only on the root.
 */
import { sha256 } from '../../core/sha256.ts';
import { compareBytes, toHex } from '../../core/bytes.ts';
import { nextKeyInProof } from '../../core/next-key.ts';
import type { RangeProof, RangeProofRequest } from '../../core/types.ts';
import { encodeRangeProofRequest } from '../../protocol/codec.ts';
import { boundaryBefore, compareEnd, EMPTY_KEY, normaliseRanges, requestEnd, successor, type KeyRange } from './ranges.ts';

/** Fixed parts of the key space (by the top 6 bits of the first key byte). */
export const CANONICAL_PARTS = 64;
/** Keys per canonical request: the most a server gives (docs/proofs.md#serving). */
export const CANONICAL_KEY_LIMIT = 2048;
/** Bytes per canonical answer: the server's maximum (docs/proofs.md#serving). */
export const CANONICAL_BYTES_LIMIT = 2_093_056;

/** A canonical part (or a part cut to a synced range): half-open, `end` undefined = unbounded. */
export interface CanonicalPart {
  start: Uint8Array;
  end: Uint8Array | undefined;
}

/** The boundary where part `i` starts (`i` in 0..CANONICAL_PARTS; the last is undefined). */
function partStart(i: number): Uint8Array | undefined {
  if (i === 0) return EMPTY_KEY;
  if (i >= CANONICAL_PARTS) return undefined;
  return Uint8Array.of(i << 2, 0);
}

/**
 * The canonical parts, in key order; with `ranges` (the client's synced ranges, half-open with
 * boundary ends, as `fromInclusive` gives them), each part cut to them (empty pieces dropped).
 *
 * @example
 * canonicalParts().length; // 64
 * canonicalParts([fromInclusive(prefixRange(fromHex('10')))]); // [{ start: 10, end: 11 00 }]: within part 4
 */
export function canonicalParts(ranges?: readonly KeyRange[]): CanonicalPart[] {
  const parts: CanonicalPart[] = [];
  for (let i = 0; i < CANONICAL_PARTS; i++) parts.push({ start: partStart(i)!.slice(), end: partStart(i + 1)?.slice() });
  if (ranges === undefined) return parts;
  const scope = normaliseRanges(ranges.map((r) => ({ start: r.start, end: r.end })));
  const out: CanonicalPart[] = [];
  for (const p of parts) {
    for (const r of scope) {
      const start = compareBytes(p.start, r.start) >= 0 ? p.start : r.start;
      const end = compareEnd(p.end, r.end) <= 0 ? p.end : r.end;
      if (end === undefined || compareBytes(start, end) < 0) out.push({ start: start.slice(), end: end?.slice() });
    }
  }
  return out;
}

/**
 * The request for `[start, end)` at `root` (`end` a boundary, or undefined): what the engine
 * sends for a canonical part and what a static snapshot stores the answer to.
 *
 * @example
 * const [first] = canonicalParts();
 * const req = canonicalRangeRequest(checkpointRoot, first.start, first.end); // startKey undefined, endKey 04
 */
export function canonicalRangeRequest(root: Uint8Array, start: Uint8Array, end: Uint8Array | undefined): RangeProofRequest {
  if (!(root instanceof Uint8Array) || root.length !== 32) throw new TypeError(`expected a 32-byte root, got ${root?.length}`);
  return {
    rootHash: root.slice(),
    startKey: start.length ? start.slice() : undefined,
    endKey: requestEnd(end)?.slice(),
    keyLimit: CANONICAL_KEY_LIMIT,
    bytesLimit: CANONICAL_BYTES_LIMIT,
  };
}

/**
 * The next request after `proof` answered `request` (a canonical request), or undefined when
 * the answer covers the rest of the request's range. Computed from the proof alone, so every
 * client that got this answer asks the same next question. Call only with a verified proof.
 *
 * An answer that holds a part's last key is still followed by one request, which comes back
 * empty: the part ends at the boundary `e 00` (e = (i+1)<<2, one byte), so the one-byte key `e`
 * is the part's, and the end proof (the path to the last key) shows the subtree under e's
 * nibbles by its child id alone, which does not say whether `e` itself holds a value or only
 * longer keys lie there. Only a proof of `e` (the next part's start proof) could rule it out,
 * which would tie one part's chain to another's answer. Measured: 127 requests for 20,000
 * random 32-byte keys (one answer per part, 63 empty; the last part is unbounded).
 *
 * @example
 * for (let req: RangeProofRequest | undefined = canonicalRangeRequest(root, part.start, part.end); req; ) {
 *   const proof = await fetchVerified(req);
 *   req = canonicalResume(req, proof);
 * }
 */
export function canonicalResume(request: RangeProofRequest, proof: RangeProof): RangeProofRequest | undefined {
  const kvs = proof.keyValues;
  if (kvs.length === 0) return undefined; // nothing in [start, end]: the range is proven empty
  const last = kvs[kvs.length - 1].key;
  const end = request.endKey === undefined ? undefined : successor(request.endKey);
  const next = nextKeyInProof(last, end, proof.endProof);
  if (next === undefined) return undefined;
  const resume = boundaryBefore(next, last);
  if (end !== undefined && compareBytes(resume, end) >= 0) return undefined;
  return canonicalRangeRequest(request.rootHash, resume, end);
}

/**
 * Lowercase hex SHA-256 of the request's wire encoding (`encodeRangeProofRequest`): the key a
 * node caches the answer under and the file name of the answer in a static snapshot.
 *
 * @example
 * const url = `${base}/${toHex(checkpointRoot)}/${requestKey(req)}`;
 */
export function requestKey(request: RangeProofRequest): string {
  return toHex(sha256(encodeRangeProofRequest(request)));
}
