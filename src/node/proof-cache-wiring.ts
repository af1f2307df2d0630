/**
 * The full node's proof cache (proof-cache.ts) with its counters and its root predicate: answers
 * are kept at the checkpoint roots the node's announcements name (the newest two), and never
 * while the node misbehaves (a tampered answer must not outlive the switch, nor a kept genuine
 * one hide it).
 */
import type { NodeMetrics } from './metrics.ts';
import { announcedCheckpoints, DEFAULT_PROOF_CACHE_BYTES, ProofCache } from './proof-cache.ts';
import type { ServedState } from './protocols.ts';

/** `FullNodeOptions.proofCache`: the byte bound, and (for benchmarks) caching at every root. */
export interface ProofCacheOptions {
  /** Bytes of answers kept (default 64 MiB, `--proof-cache-bytes`); 0 disables the cache. */
  maxBytes?: number;
  /**
   * Keep answers at every root, not only at announced checkpoints (`--proof-cache-any-root`):
   * for benchmarks of a node whose writer names no checkpoints. A live writer's roots change
   * every commit, so in production this only fills the cache with answers nobody asks again.
   */
  anyRoot?: boolean;
}

/** The cache and predicate `serveProtocols` takes, or undefined when disabled (`maxBytes` 0). */
export function proofCacheOf(
  options: ProofCacheOptions | undefined,
  metrics: NodeMetrics,
  node: { announcement: () => { checkpoint?: { root: Uint8Array } } | undefined; misbehaving: () => boolean },
): ServedState['proofCache'] {
  const maxBytes = options?.maxBytes ?? DEFAULT_PROOF_CACHE_BYTES;
  if (maxBytes === 0) return undefined;
  const cache = new ProofCache({
    maxBytes,
    onLookup: (outcome) => (outcome === 'hit' ? metrics.proofCacheHits : metrics.proofCacheMisses).inc(),
    onEvict: () => metrics.proofCacheEvictions.inc(),
    onBytes: (bytes) => metrics.proofCacheBytes.set(bytes),
  });
  const checkpoint = announcedCheckpoints(node.announcement);
  return {
    cache,
    isCheckpointRoot: (root) => !node.misbehaving() && (options?.anyRoot === true || checkpoint(root)),
  };
}
