/**
 * The idle warm-up of the trie node cache: while no delta is ready, the apply loop reads the
 * trie's upper levels, then every other node record while the cache has room, one small chunk
 * at a time, so that random updates find their paths in memory. It runs inside the apply loop,
 * so no commit races the cache fill, and a delta arriving meanwhile waits for one small read.
 * (A 1M-key trie: ~70k nodes in its top five levels, which every random update walks; its ~270k
 * deeper records are needed by one random put in four: see `LiveTuning.nodeCacheBytes`.)
 */
import type { MerkleTrie } from '../../core/trie.ts';

/** Chunks of the upper levels: one per three-token prefix (16^3). */
const UPPER_CHUNKS = 4096;
/** Node records per chunk of the scan that follows (a few pages). */
const SCAN_CHUNK = 1024;

export class CacheWarmUp {
  /** Next chunk (first three key tokens) of the upper levels; `UPPER_CHUNKS`: done. */
  #next = 0;
  /** Then the scan of every node record: where it goes on (undefined: from the start; null: done). */
  #after: Uint8Array | undefined | null = undefined;

  /** Every node record is cached, or the cache is full. */
  get done(): boolean {
    return this.#after === null;
  }

  /** From the start (another trie). */
  restart(): void {
    this.#next = 0;
    this.#after = undefined;
  }

  /** Reads one chunk into `trie`'s node cache; true when this chunk finished the warm-up. */
  async step(trie: MerkleTrie): Promise<boolean> {
    if (this.#after === null) return false;
    if (this.#next >= UPPER_CHUNKS) {
      this.#after = (await trie.warmNodes(this.#after, SCAN_CHUNK)) ?? null;
      return this.#after === null;
    }
    const chunk = this.#next++;
    // two-byte keys are four-token paths: the walk to each reads every node above it. A chunk
    // is 16 siblings under one three-token path (about one page of node records), not a 256th
    // of the trie.
    const keys = Array.from({ length: 16 }, (_, j) => Uint8Array.of(chunk >> 4, ((chunk & 15) << 4) | j));
    await trie.view().prefetch(keys);
    return false;
  }
}
