/**
 * The page's `progress` event (events.ts `ProgressEvent`) from the state-sync engine's progress
 * (src/sync/state/engine.ts `StateSyncProgress`): the engine counts what it did; the page hears
 * it with this tab's role and the target's `seq`. Before the engine runs (no progress yet) the
 * phase is `connecting` and every count 0.
 */
import type { ClientRole, ProgressEvent } from '../events.ts';
import type { StateSyncProgress } from '../../sync/state/engine.ts';

export function progressEvent(p: StateSyncProgress | undefined, target: Uint8Array, role: ClientRole, seq: number | undefined): ProgressEvent {
  return {
    phase: p?.phase ?? 'connecting',
    role,
    target,
    seq,
    keyValues: p?.keyValuesReceived ?? 0,
    bytes: p?.bytesReceived ?? 0,
    requests: p?.requests ?? 0,
    rangesDone: p?.rangesDone ?? 0,
    fraction: p?.fractionDone ?? 0,
    segments: p?.segments,
    peersUsed: p?.peersUsed ?? 0,
    peersBanned: p?.peersBanned ?? 0,
    proofsRejected: p?.proofsRejected ?? 0,
    failures: p?.failures ?? 0,
    lastFailure: p?.lastFailure,
    hedges: p?.hedges ?? 0,
    targetUpdates: p?.targetUpdates ?? 0,
  };
}
