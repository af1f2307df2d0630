/**
 * Where state proofs come from (commonware's `source.rs`): one peer or server that answers
 * range and change proof requests (docs/proofs.md). The libp2p client implements it over
 * `/proofsync/1/range` and `/proofsync/1/change`; tests use `MemoryStateSource` and scripted
 * doubles. Nothing a source returns is trusted: the sync verifies every answer.
 */
import type { ChangeProof, ChangeProofRequest, RangeProof, RangeProofRequest } from '../../core/types.ts';

/** A proof as answered. A change request may be answered with a range proof at its end root. */
export type StateResponse = { type: 'range'; proof: RangeProof } | { type: 'change'; proof: ChangeProof };

export interface StateSource {
  /** Stable peer id; the sync scores and bans by it. */
  readonly id: string;
  rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal }): Promise<StateResponse>;
  changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal }): Promise<StateResponse>;
}

/** A cheap size estimate of a response in bytes, close to its protobuf encoding (docs/wire.md#proof-messages). */
export function estimateResponseSize(response: StateResponse): number {
  const p = response.proof;
  let n = 0;
  for (const node of [...p.startProof, ...p.endProof]) {
    n += 4 + ((node.key.length + 1) >> 1) + (node.valueOrHash ? 2 + node.valueOrHash.length : 0) + node.children.size * 36;
  }
  if (response.type === 'range') for (const kv of response.proof.keyValues) n += 4 + kv.key.length + kv.value.length;
  else for (const c of response.proof.keyChanges) n += 4 + c.key.length + (c.value ? 2 + c.value.length : 0);
  return n;
}
