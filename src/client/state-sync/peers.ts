/**
 * Peer scoring for the state sync (spec/merkledb.md §5: "we score peers, ban those that send
 * invalid proofs, and spread work over peers"). Pure bookkeeping over an injected time `now`
 * (milliseconds); the engine owns one `PeerBook` per sync.
 *
 * - Choice: the usable peer with the smallest expected finish time, `ewma(ms per request) ×
 *   (requests in flight + 1)`. A peer with no sample yet counts as fastest, so every peer is
 *   tried; latency and throughput both enter through the measured time per response.
 * - Failures (timeouts, errors, refusals) back a peer off for 10 ms·1.5^n, capped at 1 s
 *   (upstream's retry schedule, applied per peer); a success clears it.
 * - Each invalid proof is a strike; at `banAfter` strikes the peer is banned for this sync.
 */

export interface PeerBookOptions {
  /** Invalid proofs before a peer is banned (default 3). */
  banAfter?: number;
  /** Most requests in flight to one peer (default: unlimited). */
  maxInFlightPerPeer?: number;
  /** Weight of a new sample in the moving averages (default 0.3). */
  alpha?: number;
}

export interface PeerStats {
  id: string;
  inFlight: number;
  /** Moving average of milliseconds per response (undefined until the first). */
  msPerRequest: number | undefined;
  /** Moving average of bytes per millisecond (undefined until the first). */
  bytesPerMs: number | undefined;
  successes: number;
  failures: number;
  consecutiveFailures: number;
  invalid: number;
  banned: boolean;
  /** No requests to this peer before this time. */
  backoffUntil: number;
}

/** Upstream's retry delay: 10 ms·1.5^attempt, capped at 1 s. */
export function backoffDelay(attempt: number): number {
  if (attempt <= 0) return 0;
  return Math.min(1000, 10 * 1.5 ** (attempt - 1));
}

export class PeerBook {
  readonly #peers = new Map<string, PeerStats>();
  readonly #banAfter: number;
  readonly #maxPerPeer: number;
  readonly #alpha: number;

  constructor(ids: Iterable<string>, options: PeerBookOptions = {}) {
    this.#banAfter = options.banAfter ?? 3;
    this.#maxPerPeer = options.maxInFlightPerPeer ?? Infinity;
    this.#alpha = options.alpha ?? 0.3;
    if (!Number.isSafeInteger(this.#banAfter) || this.#banAfter < 1) throw new RangeError(`expected banAfter to be a positive integer, got ${this.#banAfter}`);
    for (const id of ids) this.add(id);
  }

  add(id: string): void {
    if (this.#peers.has(id)) return;
    this.#peers.set(id, {
      id,
      inFlight: 0,
      msPerRequest: undefined,
      bytesPerMs: undefined,
      successes: 0,
      failures: 0,
      consecutiveFailures: 0,
      invalid: 0,
      banned: false,
      backoffUntil: 0,
    });
  }

  get(id: string): PeerStats | undefined {
    const p = this.#peers.get(id);
    return p && { ...p };
  }

  all(): PeerStats[] {
    return [...this.#peers.values()].map((p) => ({ ...p }));
  }

  /** Peers not banned. */
  get active(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (!p.banned) n++;
    return n;
  }

  /** The best peer to ask now, or undefined when none is usable now. */
  choose(now: number): string | undefined {
    let best: PeerStats | undefined;
    let bestScore = Infinity;
    for (const p of this.#peers.values()) {
      if (p.banned || p.backoffUntil > now || p.inFlight >= this.#maxPerPeer) continue;
      const score = (p.msPerRequest ?? 0) * (p.inFlight + 1) + p.inFlight * 1e-6;
      if (!best || score < bestScore) {
        best = p;
        bestScore = score;
      }
    }
    return best?.id;
  }

  /** When some peer that is not banned comes out of backoff (undefined: none is waiting). */
  nextAvailable(now: number): number | undefined {
    let at: number | undefined;
    for (const p of this.#peers.values()) {
      if (p.banned || p.backoffUntil <= now) continue;
      if (at === undefined || p.backoffUntil < at) at = p.backoffUntil;
    }
    return at;
  }

  started(id: string): void {
    const p = this.#must(id);
    p.inFlight++;
  }

  /** A request ended without an answer we judge (cancelled). */
  released(id: string): void {
    const p = this.#must(id);
    p.inFlight = Math.max(0, p.inFlight - 1);
  }

  /** A valid response of `bytes` that took `ms`. */
  succeeded(id: string, ms: number, bytes: number): void {
    const p = this.#must(id);
    p.inFlight = Math.max(0, p.inFlight - 1);
    p.successes++;
    p.consecutiveFailures = 0;
    p.backoffUntil = 0;
    const a = this.#alpha;
    const t = Math.max(0, ms);
    p.msPerRequest = p.msPerRequest === undefined ? t : (1 - a) * p.msPerRequest + a * t;
    const rate = bytes / Math.max(1, t);
    p.bytesPerMs = p.bytesPerMs === undefined ? rate : (1 - a) * p.bytesPerMs + a * rate;
  }

  /** The request failed (error or timeout): back the peer off. */
  failed(id: string, now: number, ms?: number): void {
    const p = this.#must(id);
    p.inFlight = Math.max(0, p.inFlight - 1);
    p.failures++;
    p.consecutiveFailures++;
    p.backoffUntil = now + backoffDelay(p.consecutiveFailures);
    if (ms !== undefined && p.msPerRequest !== undefined) p.msPerRequest = (1 - this.#alpha) * p.msPerRequest + this.#alpha * ms;
  }

  /** The peer sent an invalid proof; returns true when this bans it. */
  penalise(id: string, now: number): boolean {
    const p = this.#must(id);
    p.inFlight = Math.max(0, p.inFlight - 1);
    p.invalid++;
    p.consecutiveFailures++;
    p.backoffUntil = now + backoffDelay(p.consecutiveFailures);
    if (!p.banned && p.invalid >= this.#banAfter) {
      p.banned = true;
      return true;
    }
    return false;
  }

  #must(id: string): PeerStats {
    const p = this.#peers.get(id);
    if (!p) throw new RangeError(`unknown peer ${id}`);
    return p;
  }
}
