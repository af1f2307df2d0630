/**
 * The requests the state-sync engine asks for (docs/sync.md): one per work item in
 * flight. A request covers exactly its item `[start, end)`; its proof request's inclusive end
 * bound is `end` without the trailing 0x00 (ranges.ts).
 */
import type { ChangeProofRequest, RangeProofRequest } from '../../core/types.ts';

interface Common {
  id: number;
  /** The work item's range. */
  start: Uint8Array;
  end: Uint8Array | undefined;
  /** The root the answer must prove (the target when the request was made). */
  root: Uint8Array;
}

export type StateRequest =
  /** The item was never fetched: a range proof at `root`; `canonical` when by the canonical plan (plan.ts). */
  | (Common & { kind: 'range'; peer: string; request: RangeProofRequest; canonical?: true })
  /** The item is at `request.startRootHash`: a change proof to `root` (or a range proof at it). */
  | (Common & { kind: 'change'; peer: string; request: ChangeProofRequest })
  /** The target is the empty trie: no proof exists or is needed; delete the local keys. */
  | (Common & { kind: 'clear'; peer: undefined });
