/**
 * Where log operations come from (commonware `source.rs`): one call per batch, answered with
 * the operations, an MMR range proof and, for the first batch at the lower bound, the pinned
 * nodes. `feedback`, when present, is how the engine tells the source (and through it the
 * network layer) whether the answer verified, so a lying peer can be penalised.
 */
import type { MmrRangeProof } from '../../core/mmr.ts';

export interface LogFetchRequest {
  /** Root the proof must verify against (absent: the source's log at `leafCount`). */
  root?: Uint8Array;
  /** Log size at `root`; the proof is for this many leaves. */
  leafCount: number;
  start: number;
  /** At most this many operations, at least one. */
  maxOps: number;
  /** Also return the pinned nodes at `start` (the peaks over `[0, start)`). */
  withPinned: boolean;
  signal?: AbortSignal;
}

export interface LogFetchResponse {
  ops: Uint8Array[];
  proof: MmrRangeProof;
  pinned?: Uint8Array[];
  /** Called once with whether the response verified; absent if the source does not listen. */
  feedback?: (valid: boolean) => void;
}

export interface LogSource {
  fetch(request: LogFetchRequest): Promise<LogFetchResponse>;
}
