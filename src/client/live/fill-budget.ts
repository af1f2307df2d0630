/**
 * How many delta ids each peer may have us request, per window, in gap fills that led nowhere
 * (a chain too long to fill, ancestors nobody has, a chain given up on before). A peer over its
 * budget is not asked to fill gaps until its window ends: one that keeps gossiping fresh deep
 * chains costs one fill's worth of requests a window, not one per chain. Fills that succeed cost
 * nothing. Memory is bounded (`maxPeers`, least recently charged first).
 */

interface Spent {
  since: number;
  ids: number;
}

/**
 * @example
 * const budget = new PeerFillBudget({ maxIds: 1000, windowMs: 60_000 });
 * if (!budget.exhausted(peer, now)) { const r = await fill(peer); if (failed(r)) budget.spend(peer, r.requested, now); }
 */
export class PeerFillBudget {
  readonly #maxIds: number;
  readonly #windowMs: number;
  readonly #maxPeers: number;
  readonly #spent = new Map<string, Spent>();

  constructor(o: { maxIds: number; windowMs?: number; maxPeers?: number }) {
    this.#maxIds = o.maxIds;
    this.#windowMs = o.windowMs ?? 60_000;
    this.#maxPeers = o.maxPeers ?? 256;
    if (!(this.#maxIds >= 0)) throw new RangeError(`expected a non-negative maxIds, got ${this.#maxIds}`);
    if (!(this.#windowMs > 0)) throw new RangeError(`expected a positive windowMs, got ${this.#windowMs}`);
    if (!Number.isSafeInteger(this.#maxPeers) || this.#maxPeers < 1) throw new RangeError(`expected a positive integer maxPeers, got ${this.#maxPeers}`);
  }

  #current(peer: string, nowMs: number): Spent | undefined {
    const s = this.#spent.get(peer);
    if (s && nowMs - s.since >= this.#windowMs) {
      this.#spent.delete(peer);
      return undefined;
    }
    return s;
  }

  /** Ids requested from `peer` in a fill that led nowhere. */
  spend(peer: string, ids: number, nowMs: number): void {
    const s = this.#current(peer, nowMs) ?? { since: nowMs, ids: 0 };
    s.ids += ids;
    this.#spent.delete(peer);
    this.#spent.set(peer, s);
    while (this.#spent.size > this.#maxPeers) this.#spent.delete(this.#spent.keys().next().value!);
  }

  /** Whether `peer` used up its budget in the current window. */
  exhausted(peer: string, nowMs: number): boolean {
    return (this.#current(peer, nowMs)?.ids ?? 0) >= this.#maxIds;
  }
}
