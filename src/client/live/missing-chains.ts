/**
 * Chains of deltas the live follower gave up on (docs/design.md sync flow step 4): the ids a gap fill
 * walked, or found missing, before it stopped because the gap was larger than the fill limit or
 * no peer had the next ancestor. A writer-signed delta whose parent is among them hangs on the
 * same chain (an orphaned branch, or a second database signed with the same writer key: delta
 * bodies do not name their database), so it is dropped at once and joins the memory, instead of
 * the whole chain being walked again a second later.
 *
 * The held deltas on top of such a chain are remembered too (`hangs`). If the chain was the
 * database's own history after all (a burst of lost gossip larger than the fill limit), the
 * catch-up by change proof that follows moves the local state past all of it, and `covered`
 * forgets it; an announcement of this database naming a remembered head clears the memory.
 *
 * Entries carry an exclusive upper bound on their log index when one is known (a fetched
 * delta's own index + 1, or the index of the child that named a missing id): once the local
 * state stands at a log size at or above it (`covered`), the entry names history the state
 * already reflects and is forgotten. Memory is bounded (`maxIds`, least recently touched first).
 */
import { toHex } from '../../core/bytes.ts';

export interface MissingChainEntry {
  id: Uint8Array;
  /** Exclusive upper bound on the id's log index, when known. */
  below?: number;
}

/** 32-byte ids as hex plus a small record: ~150 bytes each, so the default bound is ~2.5 MB. */
export const DEFAULT_MAX_MISSING_IDS = 16_384;

/**
 * @example
 * const chains = new MissingChains();
 * chains.abandon(fill.walked);
 * if (chains.hangs(delta)) drop(delta); // and no gap fill
 */
export class MissingChains {
  readonly #max: number;
  /** hex id → log bound (Infinity: unknown); insertion order is recency order. */
  readonly #ids = new Map<string, number>();

  constructor(o: { maxIds?: number } = {}) {
    this.#max = o.maxIds ?? DEFAULT_MAX_MISSING_IDS;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw new RangeError(`expected a positive integer maxIds, got ${this.#max}`);
  }

  get size(): number {
    return this.#ids.size;
  }

  /** Whether `id` is on a chain given up on. */
  has(id: Uint8Array): boolean {
    return this.#ids.has(toHex(id));
  }

  /** Remembers these ids as a chain given up on. */
  abandon(entries: Iterable<MissingChainEntry>): void {
    for (const e of entries) this.#put(toHex(e.id), e.below ?? Infinity);
  }

  /**
   * Whether `delta` names a parent on a chain given up on; if so it is on that chain too and is
   * remembered (the chain grows with every delta an attacker adds to it).
   */
  hangs(delta: { id: Uint8Array; parents: readonly Uint8Array[]; logIndex: number }): boolean {
    const hit = delta.parents.some((p) => this.#ids.has(toHex(p)));
    if (hit) this.#put(toHex(delta.id), delta.logIndex + 1);
    return hit;
  }

  /** The local state reflects the log prefix `[0, logSize)`: entries known to lie in it are forgotten. */
  covered(logSize: number): void {
    for (const [k, below] of this.#ids) if (below <= logSize) this.#ids.delete(k);
  }

  /** Forgets everything (an announcement of this database named a head remembered here). */
  clear(): void {
    this.#ids.clear();
  }

  #put(k: string, below: number): void {
    const old = this.#ids.get(k);
    this.#ids.delete(k);
    this.#ids.set(k, old === undefined ? below : Math.min(old, below));
    while (this.#ids.size > this.#max) this.#ids.delete(this.#ids.keys().next().value!);
  }
}
