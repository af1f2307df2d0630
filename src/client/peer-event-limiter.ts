/**
 * At most one `peer` event per peer and reason per interval. What a peer does wrong on gossip
 * (forged deltas, announcements of another database) can come thousands of times a second; the
 * page needs to hear that it happens and how often, not one event each. An event let through
 * says how many of its kind were held back since the previous one.
 *
 * Memory is bounded: at most `maxKeys` (peer, reason) pairs are tracked; the least recently
 * seen goes first (a flood of made-up reasons or peers cannot grow it).
 */

export interface PeerEventLimiterOptions {
  /** Milliseconds between two events of one peer and reason (default 10,000). */
  intervalMs?: number;
  /** (peer, reason) pairs remembered at most (default 1,024). */
  maxKeys?: number;
}

export interface Admission {
  /** Whether to emit this event now. */
  emit: boolean;
  /** Events of this peer and reason held back since the last one emitted (when `emit`). */
  suppressed: number;
}

interface Slot {
  lastMs: number;
  suppressed: number;
}

/**
 * @example
 * const limiter = new PeerEventLimiter({ intervalMs: 10_000 });
 * const a = limiter.admit(peer, 'gossip: bad-signature', Date.now());
 * if (a.emit) emit({ peer, status: 'penalised', reason: `gossip: bad-signature (${a.suppressed + 1} since the last event)` });
 */
export class PeerEventLimiter {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  /** Insertion order is recency order: a key is re-inserted when seen. */
  readonly #slots = new Map<string, Slot>();

  constructor(o: PeerEventLimiterOptions = {}) {
    this.#intervalMs = o.intervalMs ?? 10_000;
    this.#maxKeys = o.maxKeys ?? 1024;
    if (!(this.#intervalMs >= 0)) throw new RangeError(`expected a non-negative intervalMs, got ${this.#intervalMs}`);
    if (!Number.isSafeInteger(this.#maxKeys) || this.#maxKeys < 1) throw new RangeError(`expected a positive integer maxKeys, got ${this.#maxKeys}`);
  }

  /** One occurrence of `reason` caused by `peer` at `nowMs`. */
  admit(peer: string, reason: string, nowMs: number): Admission {
    const key = `${peer}\u0000${reason}`;
    const slot = this.#slots.get(key);
    if (slot) this.#slots.delete(key);
    if (slot && nowMs - slot.lastMs < this.#intervalMs) {
      slot.suppressed++;
      this.#slots.set(key, slot);
      return { emit: false, suppressed: slot.suppressed };
    }
    const suppressed = slot?.suppressed ?? 0;
    this.#slots.set(key, { lastMs: nowMs, suppressed: 0 });
    while (this.#slots.size > this.#maxKeys) this.#slots.delete(this.#slots.keys().next().value!);
    return { emit: true, suppressed };
  }

  /** Pairs tracked now. */
  get size(): number {
    return this.#slots.size;
  }
}
