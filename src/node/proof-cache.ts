/**
 * Encoded range-proof answers at checkpoint roots, shared by every peer of the node: the fresh
 * clients of one checkpoint send byte-identical requests (the canonical plan, sync/state/plan.ts),
 * so after the first client the answers cost a map lookup instead of a trie walk, a LevelDB
 * read and an encoding.
 *
 * - Keyed by `requestKey` of the decoded request (the SHA-256 of its canonical encoding; the
 *   node clamps its limits to the serving caps first, protocols.ts); the
 *   entry also keeps those encoded request bytes and a lookup compares them, so an answer is
 *   only ever served for the request it was built for, even under a hash collision.
 * - Bounded in bytes: every entry counts its answer, its request and a fixed overhead; the least
 *   recently used entries leave first; an answer larger than the whole bound is not kept.
 * - Only answers at checkpoint roots enter (the node's `isCheckpointRoot` predicate): an answer
 *   at any other root is asked for by one client, and keeping it would only evict shared ones.
 *   So a peer asking many distinct requests evicts shared answers only with requests at a
 *   checkpoint root, each a built proof (its per-peer rate limit and the proof queue pace it):
 *   at the default 100 requests/s per peer and ~200 KB per 2,048-key answer, one peer can push
 *   ~20 MB/s of its own answers through a 64 MiB cache, which hot answers survive only while
 *   they are asked for more often; the counters show it (misses rising, hits falling).
 * - Concurrent misses of one request share one build (`getOrBuild`): sixteen clients that start
 *   together build each answer once. A failed build is not cached; the next request tries again.
 */

/** Default byte bound of the node's proof cache (`--proof-cache-bytes`). */
export const DEFAULT_PROOF_CACHE_BYTES = 64 * 1024 * 1024;

/** Bytes counted per entry beyond its answer and request: the map entry, the key string, the objects. */
export const ENTRY_OVERHEAD_BYTES = 256;

/** What a cache lookup did, for the node's counters. */
export type ProofCacheOutcome = 'hit' | 'miss';

interface Entry {
  request: Uint8Array;
  answer: Uint8Array;
  size: number;
}

/** Observers of a `ProofCache` (the node's Prometheus metrics). */
export interface ProofCacheEvents {
  /** After a lookup in `getOrBuild`: `hit` served from the cache (or from a build in flight). */
  onLookup?(outcome: ProofCacheOutcome): void;
  /** After an entry left to make room. */
  onEvict?(): void;
  /** After the bytes held changed. */
  onBytes?(bytes: number): void;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A byte-bounded LRU map from encoded requests to encoded answers.
 *
 * @example
 * const cache = new ProofCache({ maxBytes: 64 * 1024 * 1024 });
 * const answer = await cache.getOrBuild(requestKey(req), encodeRangeProofRequest(req), () => build(req));
 */
export class ProofCache {
  readonly maxBytes: number;
  readonly #entries = new Map<string, Entry>();
  readonly #building = new Map<string, { request: Uint8Array; answer: Promise<Uint8Array> }>();
  readonly #events: ProofCacheEvents;
  #bytes = 0;

  constructor(options: { maxBytes?: number } & ProofCacheEvents = {}) {
    const maxBytes = options.maxBytes ?? DEFAULT_PROOF_CACHE_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`expected a byte bound >= 0, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    this.#events = options;
  }

  /** Bytes held (answers, requests and the per-entry overhead); never above `maxBytes`. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The answer kept for `request` under `key` (now the most recently used), or undefined. */
  get(key: string, request: Uint8Array): Uint8Array | undefined {
    const e = this.#entries.get(key);
    if (!e || !equal(e.request, request)) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e.answer;
  }

  /**
   * Keeps `answer` for `request` under `key`, evicting the least recently used entries until it
   * fits; an answer that cannot fit even in an empty cache is not kept. The arrays are kept as
   * they are (a view into a larger buffer is copied): callers must not change them afterwards.
   */
  set(key: string, request: Uint8Array, answer: Uint8Array): void {
    // a view into a larger buffer would hold more memory than it counts: keep an exact copy
    if (answer.byteLength !== answer.buffer.byteLength) answer = answer.slice();
    if (request.byteLength !== request.buffer.byteLength) request = request.slice();
    const size = answer.length + request.length + key.length + ENTRY_OVERHEAD_BYTES;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.size;
    }
    if (size > this.maxBytes) {
      if (old) this.#events.onBytes?.(this.#bytes);
      return;
    }
    for (const [k, e] of this.#entries) {
      if (this.#bytes + size <= this.maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.size;
      this.#events.onEvict?.();
    }
    this.#entries.set(key, { request, answer, size });
    this.#bytes += size;
    this.#events.onBytes?.(this.#bytes);
  }

  /**
   * The kept answer for `request`, else the one `build` makes (then kept). Concurrent calls for
   * the same request share one build; a build that fails is not kept (a caller that waited on
   * it builds its own).
   */
  async getOrBuild(key: string, request: Uint8Array, build: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const kept = this.get(key, request);
    if (kept) {
      this.#events.onLookup?.('hit');
      return kept;
    }
    const pending = this.#building.get(key);
    if (pending && equal(pending.request, request)) {
      try {
        const shared = await pending.answer;
        this.#events.onLookup?.('hit');
        return shared;
      } catch {
        // the first asker's build failed (say its peer went away while it queued): build our own
      }
    }
    this.#events.onLookup?.('miss');
    const answer = build();
    if (this.#building.has(key)) return answer; // another build of this key runs: not shared, not kept
    this.#building.set(key, { request, answer });
    try {
      const bytes = await answer;
      this.set(key, request, bytes);
      return bytes;
    } finally {
      this.#building.delete(key);
    }
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#events.onBytes?.(0);
  }
}

/**
 * A predicate accepting the checkpoint roots named by the node's announcements: the newest one's
 * `checkpoint.root` and the `keep - 1` named before it (a client that started on the previous
 * checkpoint finishes there). `announcement` returns the newest decoded announcement, or
 * undefined; it is read on every call, so the predicate follows the writer.
 *
 * @example
 * const isCheckpointRoot = announcedCheckpoints(() => writer?.announcement);
 */
export function announcedCheckpoints(announcement: () => { checkpoint?: { root: Uint8Array } } | undefined, keep = 2): (root: Uint8Array) => boolean {
  const roots: Uint8Array[] = [];
  return (root) => {
    const newest = announcement()?.checkpoint?.root;
    if (newest && !roots.some((r) => equal(r, newest))) {
      roots.unshift(newest);
      roots.length = Math.min(roots.length, keep);
    }
    return roots.some((r) => equal(r, root));
  };
}
