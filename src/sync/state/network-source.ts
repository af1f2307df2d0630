/**
 * The state sync's `StateSource` over libp2p: `/proofsync/1/range` and `/proofsync/1/change`
 * against one peer (docs/proofs.md). Used by the replica node and the browser worker.
 * Every answer is verified by the sync; this adapter only moves and decodes bytes.
 */
import { fetchChangeProof, fetchRangeProof, type Peer } from '../../protocol/client.ts';
import type { Dialer } from '../../protocol/stream.ts';
import { changeProofSize, rangeProofResponseSize } from '../../protocol/codec.ts';
import type { ChangeProofRequest, RangeProofRequest } from '../../core/types.ts';
import type { StateResponse, StateSource } from './source.ts';

export interface NetworkSourceOptions {
  /** Deadline per request, dial included (default 30 s). */
  timeoutMs?: number;
}

/** The encoded size of an answer (exact, computed without encoding): the sync's `sizeOf`. */
export function responseSize(r: StateResponse): number {
  return r.type === 'range' ? rangeProofResponseSize(r.proof) : changeProofSize(r.proof);
}

export function networkStateSource(node: Dialer, id: string, peer: Peer, o: NetworkSourceOptions = {}): StateSource {
  const timeoutMs = o.timeoutMs ?? 30_000;
  return {
    id,
    async rangeProof(request: RangeProofRequest, { signal }: { signal?: AbortSignal }): Promise<StateResponse> {
      const proof = await fetchRangeProof(node, peer, request, { timeoutMs, signal });
      return { type: 'range', proof };
    },
    async changeProof(request: ChangeProofRequest, { signal }: { signal?: AbortSignal }): Promise<StateResponse> {
      const r = await fetchChangeProof(node, peer, request, { timeoutMs, signal });
      return r.type === 'changeProof' ? { type: 'change', proof: r.proof } : { type: 'range', proof: r.proof };
    },
  };
}
