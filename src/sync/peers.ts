/**
 * Peer scoring for the state and log syncs (docs/sync.md#peers: peers are scored, banned
 * for invalid proofs, and given work by speed). Pure bookkeeping over an injected time `now`
 * (milliseconds); the engine owns one `PeerBook` per sync.
 *
 * Every outcome of a request updates its peer's record: an answer (its time), a failure or
 * timeout (its elapsed time), an invalid answer (a strike). A peer that never answers must rank
 * as the slowest, not the fastest: a hostile peer listed first that answers 10x slower than the
 * deadline otherwise holds every slot for the whole deadline, again and again.
 *
 * - Choice: the usable peer with the smallest expected finish time, `latency × (requests in
 *   flight + 1)`. `latency` comes from measured throughput: the book's moving average of answer
 *   bytes over the peer's moving average of bytes per millisecond (a failure is a sample of 0
 *   bytes over its time), so a peer that served big answers fast is not held slower than one
 *   that served small ones; before a peer's first answer it is its moving average of times per
 *   request. Either is raised to the age of its oldest unanswered request (a peer silent for
 *   5 s is at least that slow). A peer never tried, with nothing in flight, counts 0: every
 *   peer is probed once. A peer twice as fast thus holds about twice the requests: a fast node
 *   gets more work, and every node that answers keeps some.
 * - Share of slots: with `share` slots to spread (the sync's concurrency), a peer holds at most
 *   `ceil(share / peers not banned)` of them, except the measured fastest peer, which may take
 *   the rest: one slow peer cannot hold more than its share, and the fast one is not held back.
 * - Failures (errors, refusals, timeouts) back a peer off for 10 ms·1.5^n (n consecutive
 *   failures), capped at `maxBackoffMs`, and after a timeout at least for the time it took: a
 *   peer that made us wait a deadline is not asked again within the next one, unless it is the
 *   only peer left. A success clears it.
 * - Hedging: a request to a peer that is not the fastest, unanswered after `hedgeAfter()` (a
 *   multiple of the fastest measured latency), is sent to a peer known to be faster too.
 * - Each invalid answer (a proof that does not verify, a malformed, oversized or wrong-typed
 *   answer) is a strike; at `banAfter` strikes the peer is banned for this sync.
 * - A peer that does not serve the protocol at all, or went away (`retire`), is not asked again
 *   until it is added anew (it reconnected); it is not banned, since it did nothing wrong.
 */

export interface PeerBookOptions {
  /** Invalid answers before a peer is banned (default 3). */
  banAfter?: number;
  /** Most requests in flight to one peer (default: unlimited). */
  maxInFlightPerPeer?: number;
  /** Slots spread over the peers (the sync's concurrency); default: unlimited (no share cap). */
  share?: number;
  /** Weight of a new sample in the moving averages (default 0.3). */
  alpha?: number;
  /** Longest back-off after consecutive failures (default 30,000 ms, the default deadline). */
  maxBackoffMs?: number;
  /** A request is hedged after this multiple of the fastest measured latency (default 2). */
  hedgeFactor?: number;
  /** ... and never sooner than this (default 50 ms). */
  minHedgeMs?: number;
}

export interface PeerStats {
  id: string;
  inFlight: number;
  /** Moving average of milliseconds per request, answered or not (undefined until the first outcome). */
  msPerRequest: number | undefined;
  /** Moving average of bytes per millisecond (undefined until the first). */
  bytesPerMs: number | undefined;
  successes: number;
  failures: number;
  /** Failures that were timeouts (or hedged requests the other peer answered first). */
  timeouts: number;
  consecutiveFailures: number;
  invalid: number;
  banned: boolean;
  /** No requests to this peer before this time. */
  backoffUntil: number;
  /** The peer does not serve the protocol or went away: not asked again until re-added (not a fault, so not `banned`). */
  retired: boolean;
}

/** Upstream's retry delay: 10 ms·1.5^attempt, capped at 1 s. */
export function backoffDelay(attempt: number): number {
  return peerBackoff(attempt, 1000);
}

/** A peer's back-off after `attempt` consecutive failures: 10 ms·1.5^attempt, capped at `cap`. */
export function peerBackoff(attempt: number, cap: number): number {
  if (attempt <= 0) return 0;
  return Math.min(cap, 10 * 1.5 ** (attempt - 1));
}

interface Record extends PeerStats {
  /** Start times of the requests in flight. */
  starts: number[];
}

/** Banned for invalid answers, or retired for not serving the protocol: not asked again. */
const gone = (p: Record): boolean => p.banned || p.retired;

export class PeerBook {
  readonly #peers = new Map<string, Record>();
  readonly #banAfter: number;
  readonly #maxPerPeer: number;
  readonly #share: number;
  readonly #alpha: number;
  readonly #maxBackoff: number;
  readonly #hedgeFactor: number;
  readonly #minHedge: number;

  constructor(ids: Iterable<string>, options: PeerBookOptions = {}) {
    this.#banAfter = options.banAfter ?? 3;
    this.#maxPerPeer = options.maxInFlightPerPeer ?? Infinity;
    this.#share = options.share ?? Infinity;
    this.#alpha = options.alpha ?? 0.3;
    this.#maxBackoff = options.maxBackoffMs ?? 30_000;
    this.#hedgeFactor = options.hedgeFactor ?? 2;
    this.#minHedge = options.minHedgeMs ?? 50;
    if (!Number.isSafeInteger(this.#banAfter) || this.#banAfter < 1) throw new RangeError(`expected banAfter to be a positive integer, got ${this.#banAfter}`);
    for (const id of ids) this.add(id);
  }

  /** Moving average of the bytes of an answer, over all peers (0 until the first). */
  #meanBytes = 0;

  /** Adds a peer; one retired (it went away) and now back is asked again, its record kept. */
  add(id: string): void {
    const known = this.#peers.get(id);
    if (known) {
      known.retired = false;
      return;
    }
    this.#peers.set(id, {
      id,
      inFlight: 0,
      msPerRequest: undefined,
      bytesPerMs: undefined,
      successes: 0,
      failures: 0,
      timeouts: 0,
      consecutiveFailures: 0,
      invalid: 0,
      banned: false,
      backoffUntil: 0,
      starts: [],
      retired: false,
    });
  }

  get(id: string): PeerStats | undefined {
    const p = this.#peers.get(id);
    return p && snapshot(p);
  }

  all(): PeerStats[] {
    return [...this.#peers.values()].map(snapshot);
  }

  /** Peers not banned. */
  get active(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (!gone(p)) n++;
    return n;
  }

  /**
   * The expected time of one more request to `p` at `now`: its average, raised to the age of
   * its oldest unanswered request; 0 for a peer never tried with nothing in flight.
   */
  #latency(p: Record, now: number): number {
    const oldest = p.starts.length ? now - Math.min(...p.starts) : 0;
    return Math.max(this.#measured(p) ?? 0, oldest);
  }

  /**
   * The measured time of one request to `p`: an answer of the average size at its throughput,
   * or (no throughput yet) its average time per request; undefined before any outcome.
   */
  #measured(p: Record): number | undefined {
    if (p.bytesPerMs !== undefined && p.bytesPerMs > 0 && this.#meanBytes > 0) return this.#meanBytes / p.bytesPerMs;
    return p.msPerRequest;
  }

  /** Expected milliseconds of one request to `id` from its measured throughput (undefined: not measured). */
  expectedMs(id: string): number | undefined {
    const p = this.#peers.get(id);
    return p && this.#measured(p);
  }

  /**
   * The fastest measured peer not banned (ties: the first listed): of those with no failure in a
   * row, or with `usableAt`, of those out of back-off then, failed lately or not.
   */
  #fastest(usableAt?: number): Record | undefined {
    let best: Record | undefined;
    let bestMs = Infinity;
    for (const p of this.#peers.values()) {
      const ms = this.#measured(p);
      if (gone(p) || ms === undefined || (usableAt === undefined ? p.consecutiveFailures > 0 : p.backoffUntil > usableAt)) continue;
      if (!best || ms < bestMs) {
        best = p;
        bestMs = ms;
      }
    }
    return best;
  }


  /** Most requests `p` may hold: its share of the slots, unless it is the fastest measured peer. */
  #cap(p: Record, fastest: Record | undefined): number {
    if (p === fastest || !Number.isFinite(this.#share)) return this.#maxPerPeer;
    return Math.min(this.#maxPerPeer, Math.max(1, Math.ceil(this.#share / Math.max(1, this.active))));
  }

  /** The best peer to ask now (other than `exclude`), or undefined when none is usable now. */
  choose(now: number, exclude?: string): string | undefined {
    const fastest = this.#fastest();
    let best: Record | undefined;
    let bestScore = Infinity;
    for (const p of this.#peers.values()) {
      if (p.id === exclude || gone(p) || p.backoffUntil > now || p.inFlight >= this.#cap(p, fastest)) continue;
      const score = this.#latency(p, now) * (p.inFlight + 1) + p.inFlight * 1e-6;
      if (!best || score < bestScore) {
        best = p;
        bestScore = score;
      }
    }
    return best?.id;
  }

  /**
   * How long a request to `peer` may go unanswered before it is hedged: `hedgeFactor` × the
   * fastest measured latency (at least `minHedgeMs`); undefined when `peer` is the fastest or
   * no peer has been measured yet (nothing is known to be faster).
   */
  hedgeAfter(peer: string, now?: number): number | undefined {
    // a peer whose last request failed is not the fastest, but once out of back-off it may take a
    // hedge: else a sync whose hedge failed had nobody to hedge its last silent request to
    const fastest = this.#fastest() ?? (now === undefined ? undefined : this.#fastest(now));
    if (!fastest || fastest.id === peer) return undefined;
    return Math.max(this.#minHedge, this.#hedgeFactor * this.#measured(fastest)!);
  }

  /**
   * The peer to send a hedge of a request to `peer` that has waited `ageMs`: a usable peer
   * whose measured latency is below that age (known to be faster), or undefined.
   */
  hedgeTo(peer: string, now: number, ageMs: number): string | undefined {
    const fastest = this.#fastest();
    let best: Record | undefined;
    let bestScore = Infinity;
    for (const p of this.#peers.values()) {
      if (p.id === peer || gone(p) || p.backoffUntil > now || this.#measured(p) === undefined || p.inFlight >= this.#cap(p, fastest)) continue;
      const latency = this.#latency(p, now);
      if (latency >= ageMs) continue;
      const score = latency * (p.inFlight + 1);
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
      if (gone(p) || p.backoffUntil <= now) continue;
      if (at === undefined || p.backoffUntil < at) at = p.backoffUntil;
    }
    return at;
  }

  /** A request to `id` was sent at `now` (without `now`, its age is not tracked). */
  started(id: string, now?: number): void {
    const p = this.#must(id);
    p.inFlight++;
    if (now !== undefined) p.starts.push(now);
  }

  /** A request ended without an answer we judge (cancelled). */
  released(id: string, startedAt?: number): void {
    this.#end(this.#must(id), startedAt);
  }

  /** A valid response of `bytes` that took `ms`. */
  succeeded(id: string, ms: number, bytes: number, startedAt?: number): void {
    const p = this.#must(id);
    this.#end(p, startedAt);
    p.successes++;
    p.consecutiveFailures = 0;
    p.backoffUntil = 0;
    const t = Math.max(0, ms);
    this.#sample(p, t);
    const size = Math.max(0, bytes);
    const rate = size / Math.max(1, t);
    p.bytesPerMs = p.bytesPerMs === undefined ? rate : (1 - this.#alpha) * p.bytesPerMs + this.#alpha * rate;
    this.#meanBytes = this.#meanBytes === 0 ? size : (1 - this.#alpha) * this.#meanBytes + this.#alpha * size;
  }

  /**
   * `id` does not serve the protocol, or went away (its request, sent at `startedAt`, ended, if
   * one did): it is not chosen again until `add`ed anew.
   */
  retire(id: string, startedAt?: number): void {
    const p = this.#must(id);
    this.#end(p, startedAt);
    p.retired = true;
  }

  /** `id` went away (its requests were released first): retired until it is `add`ed anew. */
  left(id: string): void {
    const p = this.#peers.get(id);
    if (p) p.retired = true;
  }

  /**
   * The request failed after `ms` (an error, or with `timedOut` a deadline or a hedge answered
   * first by another peer): its time is a sample, and the peer is backed off, at least for `ms`
   * when it timed out.
   */
  failed(id: string, now: number, ms?: number, o: { timedOut?: boolean; startedAt?: number } = {}): void {
    const p = this.#must(id);
    this.#end(p, o.startedAt);
    p.failures++;
    p.consecutiveFailures++;
    if (o.timedOut) p.timeouts++;
    let delay = peerBackoff(p.consecutiveFailures, this.#maxBackoff);
    if (ms !== undefined) {
      this.#sample(p, Math.max(0, ms));
      // a sample of no bytes over that time: a failing peer's throughput falls
      if (p.bytesPerMs !== undefined) p.bytesPerMs *= 1 - this.#alpha;
      // (a lone peer is not: waiting on it longer gains nothing)
      if (o.timedOut && this.active > 1) delay = Math.max(delay, Math.min(ms, this.#maxBackoff));
    }
    p.backoffUntil = now + delay;
  }

  /** The peer sent an invalid answer; returns true when this bans it. */
  penalise(id: string, now: number, startedAt?: number): boolean {
    const p = this.#must(id);
    this.#end(p, startedAt);
    p.invalid++;
    p.consecutiveFailures++;
    p.backoffUntil = now + peerBackoff(p.consecutiveFailures, this.#maxBackoff);
    if (!p.banned && p.invalid >= this.#banAfter) {
      p.banned = true;
      return true;
    }
    return false;
  }

  #sample(p: Record, ms: number): void {
    p.msPerRequest = p.msPerRequest === undefined ? ms : (1 - this.#alpha) * p.msPerRequest + this.#alpha * ms;
  }

  #end(p: Record, startedAt: number | undefined): void {
    p.inFlight = Math.max(0, p.inFlight - 1);
    if (p.starts.length === 0) return;
    const k = startedAt === undefined ? -1 : p.starts.indexOf(startedAt);
    // unknown start: drop the oldest, so a peer is never held slower than what it owes
    p.starts.splice(k >= 0 ? k : p.starts.indexOf(Math.min(...p.starts)), 1);
  }

  #must(id: string): Record {
    const p = this.#peers.get(id);
    if (!p) throw new RangeError(`unknown peer ${id}`);
    return p;
  }
}

function snapshot(p: Record): PeerStats {
  const { starts: _, ...rest } = p;
  return { ...rest };
}
