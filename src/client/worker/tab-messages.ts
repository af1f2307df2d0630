/**
 * What tabs of one database tell each other on its BroadcastChannel (engine-host.ts): one tab
 * holds the sync lock and syncs (`syncer`); the others (`reader`) read the same store and hear
 * the syncer's progress, synced states and live updates from it, as if they synced themselves.
 */
import { equalBytes } from '../../core/bytes.ts';
import type { DeltaUpdate, ProgressEvent, SyncedEvent, WireEvent } from '../events.ts';

export type TabMessage =
  /** A new reader: the syncer answers with where the sync stands. */
  | { type: 'hello' }
  | { type: 'progress'; detail: ProgressEvent }
  | { type: 'synced'; detail: SyncedEvent }
  /** Deltas the syncing tab applied (live updates), in order: readers' subscriptions hear them too. */
  | { type: 'updates'; detail: DeltaUpdate[] };

/** One thing a reader does with a message: take `synced` as its state (when set), then emit `event` to its page. */
export interface ReaderStep {
  synced?: SyncedEvent;
  event: WireEvent;
}

/** What a reader makes of the syncer's message, in order, from its synced state `prev`. */
export function readerSteps(m: Exclude<TabMessage, { type: 'hello' }>, prev: SyncedEvent | undefined): ReaderStep[] {
  if (m.type === 'progress') return [{ event: { type: 'progress', detail: { ...m.detail, role: 'reader' } } }];
  if (m.type === 'synced') return [{ synced: m.detail, event: { type: 'synced', detail: m.detail } }];
  const steps: ReaderStep[] = [];
  for (const u of m.detail) {
    // a partial sync's own root is not in the update: it stays the last one heard (full sync: the root)
    const localRoot = prev && !equalBytes(prev.localRoot, prev.root) ? prev.localRoot : u.root;
    const synced: SyncedEvent = { root: u.root, seq: u.seq ?? prev?.seq ?? -1, localRoot };
    steps.push({ synced, event: { type: 'update', detail: u } });
    prev = synced;
  }
  return steps;
}
