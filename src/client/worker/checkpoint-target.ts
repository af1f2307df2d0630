/**
 * Where a sync starts (docs/sync.md#checkpoints): a client that has never completed a sync goes
 * first to the newest checkpoint the writer's announcement names, by the canonical plan
 * (sync/state/plan.ts), so its requests are the ones every other fresh client of the epoch
 * sends (a node answers them from its cache, a static mirror holds them as files); it then
 * catches up from the checkpoint to the head by change proofs. A client that has synced before
 * goes to the head at once: from its own root, change proofs are cheaper than any range proof.
 *
 * "Never completed a sync": the local trie is empty with no stored progress (fresh), or some
 * stored segment was never fetched (a first sync cut off by a reload; it resumes at the newest
 * checkpoint, the segments it fetched at an older one catch up by change proofs).
 */
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { equalBytes } from '../../core/bytes.ts';
import type { KVStore } from '../../core/store.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { loadProgress } from '../../sync/state/stored-progress.ts';

/**
 * The checkpoint root to range-sync to first, or undefined to go to `head.stateRoot` at once.
 *
 * @example
 * const checkpoint = await checkpointTarget(store, ann);
 * await syncState({ store, target: checkpoint ?? ann.stateRoot, canonicalRoot: checkpoint, ... });
 */
export async function checkpointTarget(store: KVStore, head: Pick<VerifiedAnnouncement, 'checkpoint' | 'stateRoot'>): Promise<Uint8Array | undefined> {
  const checkpoint = head.checkpoint;
  if (checkpoint === undefined || equalBytes(checkpoint.root, EMPTY_ROOT)) return undefined;
  const progress = await loadProgress(store);
  const unfetched = progress.segments.some((s) => s.root === undefined);
  if (!unfetched) {
    if (progress.segments.length > 0) return undefined;
    const trie = await MerkleTrie.open(store);
    if (!equalBytes(trie.root, EMPTY_ROOT)) return undefined;
  }
  return checkpoint.root;
}
