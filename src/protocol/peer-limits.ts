/**
 * Per-peer admission for served protocols (docs/design.md "Wire protocols": the server limits
 * concurrency and rate per peer). A peer may hold at most `maxConcurrent` streams at once and
 * open streams at a sustained `perSecond` rate with bursts of `burst` (a token bucket).
 * The clock is injected so tests are deterministic. Pure bookkeeping: no I/O, no libp2p.
 */

export interface RateLimit {
  /** Bucket capacity: how many streams a peer may open back to back. */
  burst: number;
  /** Tokens added per second (0: never refills). */
  perSecond: number;
}

export interface PeerLimitsOptions {
  /** Streams a single peer may have in flight at once. Default 8. */
  maxConcurrent?: number;
  /** Token bucket per peer; absent means no rate limit. */
  rate?: RateLimit;
  /** Milliseconds clock; default `Date.now`. */
  now?: () => number;
  /** Entries kept for idle peers before pruning them. Default 10,000. */
  maxTrackedPeers?: number;
}

/** Why a stream was refused: `TooManyStreams` (concurrency) or `RateLimited` (bucket empty). */
export type Admission =
  | { ok: true; release: () => void }
  | { ok: false; reason: 'TooManyStreams' | 'RateLimited'; retryAfterMs?: number };

interface PeerState {
  active: number;
  tokens: number;
  updatedAt: number;
}

/**
 * Tracks streams and tokens per peer key (a peer id string).
 *
 * @example
 * const limits = new PeerLimits({ maxConcurrent: 4, rate: { burst: 20, perSecond: 10 } });
 * const a = limits.admit(peerId.toString());
 * if (!a.ok) refuse(a.reason); else try { serve() } finally { a.release() }
 */
export class PeerLimits {
  readonly maxConcurrent: number;
  readonly rate: RateLimit | undefined;
  private readonly now: () => number;
  private readonly maxTrackedPeers: number;
  private readonly peers = new Map<string, PeerState>();

  constructor(options: PeerLimitsOptions = {}) {
    this.maxConcurrent = options.maxConcurrent ?? 8;
    if (!Number.isInteger(this.maxConcurrent) || this.maxConcurrent < 1) {
      throw new RangeError(`expected maxConcurrent >= 1, got ${this.maxConcurrent}`);
    }
    this.rate = options.rate;
    if (this.rate && (!(this.rate.burst >= 1) || !(this.rate.perSecond >= 0))) {
      throw new RangeError(`expected rate.burst >= 1 and rate.perSecond >= 0, got ${this.rate.burst}, ${this.rate.perSecond}`);
    }
    this.now = options.now ?? Date.now;
    this.maxTrackedPeers = options.maxTrackedPeers ?? 10_000;
  }

  /** Streams currently admitted for `peer`. */
  active(peer: string): number {
    return this.peers.get(peer)?.active ?? 0;
  }

  /** Admits one stream for `peer` or says why not. Call `release` exactly once when done. */
  admit(peer: string): Admission {
    const now = this.now();
    let state = this.peers.get(peer);
    if (!state) {
      if (this.peers.size >= this.maxTrackedPeers) this.prune(now);
      state = { active: 0, tokens: this.rate?.burst ?? 0, updatedAt: now };
      this.peers.set(peer, state);
    }
    this.refill(state, now);
    if (state.active >= this.maxConcurrent) return { ok: false, reason: 'TooManyStreams' };
    if (this.rate) {
      if (state.tokens < 1) {
        const retryAfterMs = this.rate.perSecond > 0 ? Math.ceil(((1 - state.tokens) / this.rate.perSecond) * 1000) : undefined;
        return { ok: false, reason: 'RateLimited', retryAfterMs };
      }
      state.tokens -= 1;
    }
    state.active++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        state.active--;
      },
    };
  }

  private refill(state: PeerState, now: number): void {
    if (!this.rate) return;
    const elapsed = Math.max(0, now - state.updatedAt);
    state.tokens = Math.min(this.rate.burst, state.tokens + (elapsed / 1000) * this.rate.perSecond);
    state.updatedAt = now;
  }

  /** Forgets peers with nothing in flight and a full bucket: they are indistinguishable from new ones. */
  private prune(now: number): void {
    for (const [peer, state] of this.peers) {
      this.refill(state, now);
      if (state.active === 0 && (!this.rate || state.tokens >= this.rate.burst)) this.peers.delete(peer);
    }
  }
}
