/**
 * Checking one answer against the local state (docs/proofs.md#verification; commit
 * semantics and next key: docs/sync.md). This is the part of the sync that must read local state, kept out
 * of the pure engine: the driver runs it on a fresh `TrieView` and passes the outcome to the
 * engine as an event; if the engine then asks for the write, the driver commits that same view.
 *
 * - A range request must be answered with a range proof at its root (a change proof is the
 *   peer's error, `UnexpectedResponse`). A change request may be answered with either; a range
 *   proof then verifies at the request's end root.
 * - Committing a range proof puts its key-values and deletes every local key in
 *   `[start, largest returned key]` (or the whole request range when none was returned) that
 *   the proof does not hold. A change proof's puts and deletes apply as they are.
 * - Where the remaining work starts comes from `nextKey` over the received end proof and the
 *   local trie after the changes, rounded down to a range boundary; for a canonical request,
 *   from the answer alone (`canonicalResume`), so the next request is the plan's.
 */
import { compareBytes } from '../../core/bytes.ts';
import { UnexpectedResponse } from '../../core/errors.ts';
import { nextKey } from '../../core/next-key.ts';
import { verifyChangeProof, verifyRangeProof } from '../../core/proof.ts';
import type { ProvenSubtrees, TrieView } from '../../core/trie.ts';
import type { KeyChange, KeyValue, ProofNode, RangeProof } from '../../core/types.ts';
import { boundaryBefore, requestEnd } from './ranges.ts';
import { canonicalResume } from './plan.ts';
import type { StateRequest } from './requests.ts';
import type { StateResponse } from './source.ts';

/** A verified answer, ready to write. */
export interface VerifiedResponse {
  valid: true;
  /** The local puts and deletes (already applied to the view it was checked on). */
  changes: KeyChange[];
  /** Where the item's remaining work starts; undefined when the whole item is done. */
  resume: Uint8Array | undefined;
  /** The local root once `changes` are written. */
  rootAfter: Uint8Array;
  /** Key-values or key changes received. */
  received: number;
  /** How the answer came: a change request may be answered with a range proof. */
  answeredWith: 'range' | 'change' | 'none';
}

export interface RejectedResponse {
  valid: false;
  error: Error;
}

export type ResponseOutcome = VerifiedResponse | RejectedResponse;

async function collect(view: TrieView, start: Uint8Array | undefined, end: Uint8Array | undefined): Promise<KeyValue[]> {
  const out: KeyValue[] = [];
  for await (const kv of view.entries(start, end)) out.push(kv);
  return out;
}

/**
 * Local deletes that make `[start, upTo]` (unbounded without `upTo`) hold exactly `kvs`, and
 * how many local keys the range held.
 */
async function rangeCommit(view: TrieView, start: Uint8Array, upTo: Uint8Array | undefined, kvs: KeyValue[]): Promise<{ changes: KeyChange[]; localKeys: number }> {
  const changes: KeyChange[] = [];
  let i = 0;
  let localKeys = 0;
  for await (const local of view.entries(start, upTo)) {
    localKeys++;
    while (i < kvs.length && compareBytes(kvs[i].key, local.key) < 0) i++;
    if (i < kvs.length && compareBytes(kvs[i].key, local.key) === 0) continue;
    changes.push({ key: local.key, value: undefined });
  }
  for (const kv of kvs) changes.push({ key: kv.key, value: kv.value });
  return { changes, localKeys };
}

/**
 * Verifies a range proof and applies it to `view`. Where the local trie holds nothing in the
 * range (every first fetch), the prover's subtrees are grafted as they are, so the commit hashes
 * only the boundary (the proof's rebuild already computed every node wholly inside the range).
 */
/**
 * The part of checking an answer that needs no local state: a range proof's verification (the
 * hashing, most of the cost). The driver runs it as soon as an answer arrives, so it overlaps
 * the store write of the answer before; `verifyResponse` then uses the result.
 */
export function preverify(request: StateRequest, response: StateResponse): ProvenSubtrees | Error | undefined {
  if (request.kind === 'clear' || response.type !== 'range') return undefined;
  const { startKey, endKey, keyLimit } = request.request;
  try {
    return verifyRangeProof(response.proof, { root: request.root, start: startKey, end: endKey, keyLimit }, true);
  } catch (err) {
    return err as Error;
  }
}

async function verifiedRange(
  request: StateRequest,
  proof: RangeProof,
  view: TrieView,
  startKey: Uint8Array | undefined,
  endKey: Uint8Array | undefined,
  keyLimit: number,
  pre: ProvenSubtrees | Error | undefined,
) {
  if (pre instanceof Error) throw pre;
  const proven = pre ?? verifyRangeProof(proof, { root: request.root, start: startKey, end: endKey, keyLimit }, true);
  const kvs = proof.keyValues;
  // A canonical answer is continued where the proof alone says (plan.ts); the proof also shows
  // the remote trie holds nothing between the last key and there, so local keys there go too.
  const canonical = request.kind === 'range' && request.canonical === true;
  const resume = canonical ? canonicalResume(request.request, proof)?.startKey : undefined;
  const upTo = canonical ? (resume ? requestEnd(resume) : endKey) : kvs.length ? kvs[kvs.length - 1].key : endKey;
  const { changes, localKeys } = await rangeCommit(view, request.start, upTo, kvs);
  if (localKeys === 0) await view.graft(proven);
  else await view.apply(changes);
  return { changes, last: kvs.length ? kvs[kvs.length - 1].key : undefined, canonical, resume };
}

/**
 * Verifies `response` to `request` against the local state in `view`, applies the resulting
 * changes to `view` and says where the remaining work starts. Throws the `ProofError` (or
 * `UnexpectedResponse`) that makes the answer invalid; other errors are local failures.
 */
export async function verifyResponse(
  request: StateRequest,
  response: StateResponse | undefined,
  view: TrieView,
  pre?: ProvenSubtrees | Error,
): Promise<VerifiedResponse> {
  let changes: KeyChange[];
  let last: Uint8Array | undefined;
  let endProof: ProofNode[] = [];
  let answeredWith: VerifiedResponse['answeredWith'] = 'none';
  let canonicalAt: { resume: Uint8Array | undefined } | undefined;
  if (request.kind === 'clear') {
    changes = (await collect(view, request.start, requestEnd(request.end))).map((kv) => ({ key: kv.key, value: undefined }));
    await view.apply(changes);
  } else {
    if (!response) throw new UnexpectedResponse('no answer to a proof request');
    const { startKey, endKey, keyLimit } = request.request;
    if (response.type === 'change') {
      if (request.kind === 'range') throw new UnexpectedResponse('a range proof request was answered with a change proof', { requestId: request.id });
      const proof = response.proof;
      // applies the changes to `view` (dropped by the driver if this throws)
      await verifyChangeProof(proof, { root: request.root, start: startKey, end: endKey, keyLimit, applyTo: view });
      changes = proof.keyChanges;
      last = changes.length ? changes[changes.length - 1].key : undefined;
      endProof = proof.endProof;
    } else {
      const r = await verifiedRange(request, response.proof, view, startKey, endKey, keyLimit, pre);
      changes = r.changes;
      last = r.last;
      endProof = response.proof.endProof;
      if (r.canonical) canonicalAt = { resume: r.resume };
    }
    answeredWith = response.type;
  }
  let resume: Uint8Array | undefined;
  if (canonicalAt) resume = canonicalAt.resume;
  else if (last !== undefined) {
    const next = await nextKey(last, request.end, endProof, (path) => view.proofPath(path));
    if (next !== undefined) resume = boundaryBefore(next, last);
  }
  let received = 0;
  if (response?.type === 'range') received = response.proof.keyValues.length;
  else if (response?.type === 'change') received = response.proof.keyChanges.length;
  return { valid: true, changes, resume, rootAfter: view.root, received, answeredWith };
}
