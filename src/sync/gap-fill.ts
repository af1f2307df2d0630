/**
 * Gap filling (docs/design.md, sync flow step 4): fetch the missing ancestors of held deltas from the
 * peer that sent them, breadth-first, in bounded rounds, so that a lying or slow peer can neither
 * fool us nor leave us stuck.
 *
 * - Breadth-first from the missing parents; a visited set makes cycles and repeats free; the
 *   genesis parent and anything we already hold (`knows`) are never requested.
 * - Every delta received is checked against the request by its *re-derived* id (a claimed id is
 *   ignored) and its writer signature is verified; anything else is an offence, reported so the
 *   caller can penalise the peer, and otherwise ignored.
 * - At most `maxPerRound` ids per request (Calimero's batch size, 3000) and `maxTotal` overall.
 * - Outcomes are typed results: `filled`, or `needs-catch-up` because the gap is too large, the
 *   peer lacks (or would not give) a delta, a deadline passed, or the caller aborted. In every
 *   case the verified deltas received so far are returned, so the caller can hold them.
 *
 * `GapFill` is the pure state machine (`nextRequest` / `receive`); `fillGaps` drives it over a
 * `DeltaSource`.
 */
import { toHex } from '../core/bytes.ts';
import { deltaId, DELTA_SIGNING_CONTEXT, verifySignature, type Delta, type VerifiedDelta } from '../core/delta.ts';
import { EMPTY_ROOT } from '../core/types.ts';

/** Where deltas come from: usually the peer that gossiped the delta with missing parents. */
export interface DeltaSource {
  /** Deltas for (some of) these ids, in any order. Their ids and signatures are checked here. */
  fetch(ids: Uint8Array[], options: { signal?: AbortSignal }): Promise<Delta[]>;
}

export interface GapFillOptions {
  /** The writer's Ed25519 public key (32 bytes). */
  writerPublicKey: Uint8Array;
  /** Whether a delta is already applied or held locally (e.g. `DeltaDag.knows`). */
  knows: (id: Uint8Array) => boolean;
  /** Ids per request; default 3000. */
  maxPerRound?: number;
  /** Ids requested in all; default 10,000. */
  maxTotal?: number;
  /**
   * Whether an id lies on a chain given up on before (client/live/missing-chains.ts): it is never
   * requested, and a fill that reaches one stops with `abandoned-chain`.
   */
  abandoned?: (id: Uint8Array) => boolean;
}

export const DEFAULT_MAX_PER_ROUND = 3000;
export const DEFAULT_MAX_TOTAL = 10_000;

export type Offence =
  /** A delta whose re-derived id was not asked for in this round (forged id, extra, or repeat). */
  | { kind: 'unrequested'; id: Uint8Array }
  /** A requested delta whose signature does not verify. */
  | { kind: 'bad-signature'; id: Uint8Array }
  /** A structurally invalid delta object (could not be encoded). */
  | { kind: 'malformed' }
  /** More items than ids requested; the rest were not examined. */
  | { kind: 'oversized-response'; count: number; requested: number };

export type GapFillResult =
  | { kind: 'filled'; deltas: VerifiedDelta[]; rounds: number; requested: number; offences: Offence[] }
  | {
      kind: 'needs-catch-up';
      reason: GapStopReason;
      /** Verified deltas received before stopping. */
      deltas: VerifiedDelta[];
      /** Ids still wanted when it stopped. */
      missing: Uint8Array[];
      /** Every id received or still wanted, with log-index bounds (see `GapFill.walked`). */
      walked: WalkedId[];
      rounds: number;
      requested: number;
      offences: Offence[];
      cause?: unknown;
    };

export type GapStopReason = 'gap-too-large' | 'peer-lacks-deltas' | 'timeout' | 'aborted' | 'source-failed' | 'abandoned-chain';

/** An id a fill asked for or meant to, with an exclusive upper bound on its log index when known. */
export interface WalkedId {
  id: Uint8Array;
  below?: number;
}

/**
 * The pure state machine: ask `nextRequest()` for the ids of the next round, hand the reply to
 * `receive()`, repeat until `result` is set.
 */
export class GapFill {
  private readonly writerPublicKey: Uint8Array;
  private readonly knows: (id: Uint8Array) => boolean;
  private readonly abandoned: ((id: Uint8Array) => boolean) | undefined;
  /** A parent on a chain given up on was reached. */
  private hitAbandoned = false;
  /** Hex id → exclusive bound on its log index (the naming child's), for ids queued from a delta. */
  private readonly bounds = new Map<string, number>();
  private readonly maxPerRound: number;
  private readonly maxTotal: number;
  /** Every id ever queued or requested: the visited set. */
  private readonly visited = new Set<string>();
  private queue: Uint8Array[] = [];
  private outstanding = new Map<string, Uint8Array>();
  private readonly deltas: VerifiedDelta[] = [];
  private readonly offences: Offence[] = [];
  private rounds = 0;
  private requested = 0;
  result: GapFillResult | undefined;

  constructor(missing: Uint8Array[], options: GapFillOptions) {
    this.writerPublicKey = options.writerPublicKey;
    this.knows = options.knows;
    this.abandoned = options.abandoned;
    this.maxPerRound = options.maxPerRound ?? DEFAULT_MAX_PER_ROUND;
    this.maxTotal = options.maxTotal ?? DEFAULT_MAX_TOTAL;
    if (!Number.isSafeInteger(this.maxPerRound) || this.maxPerRound < 1) {
      throw new RangeError(`expected maxPerRound to be a positive integer, got ${this.maxPerRound}`);
    }
    if (!Number.isSafeInteger(this.maxTotal) || this.maxTotal < 0) {
      throw new RangeError(`expected maxTotal to be a non-negative integer, got ${this.maxTotal}`);
    }
    for (const id of missing) this.enqueue(id);
  }

  private enqueue(id: Uint8Array, below?: number): void {
    if (id.length !== 32) return;
    const k = toHex(id);
    if (this.visited.has(k)) return;
    this.visited.add(k);
    if (k === GENESIS_KEY || this.knows(id)) return;
    if (this.abandoned?.(id)) {
      this.hitAbandoned = true;
      return;
    }
    if (below !== undefined) this.bounds.set(k, below);
    this.queue.push(id);
  }

  /**
   * Every id this fill received or still wanted (each with a log-index bound when known): what
   * a caller that gives up on the chain remembers (client/live/missing-chains.ts).
   */
  walked(): WalkedId[] {
    const out: WalkedId[] = this.deltas.map((d) => ({ id: d.id, below: d.logIndex + 1 }));
    for (const id of this.missing()) out.push({ id, below: this.bounds.get(toHex(id)) });
    return out;
  }

  /** Ids queued for a later round. */
  get queued(): number {
    return this.queue.length;
  }

  /** The ids still wanted: outstanding, then queued. */
  missing(): Uint8Array[] {
    return [...this.outstanding.values(), ...this.queue];
  }

  /** The next round's ids, or `undefined` when finished (`result` is then set). */
  nextRequest(): Uint8Array[] | undefined {
    if (this.result) return undefined;
    if (this.outstanding.size > 0) throw new Error('nextRequest called with a round outstanding');
    if (this.hitAbandoned) {
      this.stop('abandoned-chain');
      return undefined;
    }
    if (this.queue.length === 0) {
      this.result = {
        kind: 'filled',
        deltas: this.deltas,
        rounds: this.rounds,
        requested: this.requested,
        offences: this.offences,
      };
      return undefined;
    }
    // Everything queued must be fetched eventually; refuse now rather than after maxTotal work.
    if (this.requested + this.queue.length > this.maxTotal) {
      this.stop('gap-too-large');
      return undefined;
    }
    const batch = this.queue.slice(0, this.maxPerRound);
    this.queue = this.queue.slice(batch.length);
    for (const id of batch) this.outstanding.set(toHex(id), id);
    this.requested += batch.length;
    this.rounds++;
    return batch;
  }

  /**
   * Takes the reply to the outstanding round. Valid deltas are kept and their unknown parents
   * queued (breadth-first); a requested id left unanswered ends the fill (`peer-lacks-deltas`).
   */
  receive(response: readonly Delta[]): void {
    if (this.result) return;
    const requestedCount = this.outstanding.size;
    let items = response;
    if (response.length > requestedCount) {
      this.offences.push({ kind: 'oversized-response', count: response.length, requested: requestedCount });
      items = response.slice(0, requestedCount);
    }
    const parents: { id: Uint8Array; below: number }[] = [];
    for (const d of items) {
      let id: Uint8Array;
      try {
        id = deltaId(d); // the claimed d.id is ignored
      } catch {
        this.offences.push({ kind: 'malformed' });
        continue;
      }
      const k = toHex(id);
      if (!this.outstanding.has(k)) {
        this.offences.push({ kind: 'unrequested', id });
        continue;
      }
      if (!verifySignature(DELTA_SIGNING_CONTEXT, id, d.signature, this.writerPublicKey)) {
        this.offences.push({ kind: 'bad-signature', id });
        continue;
      }
      this.outstanding.delete(k);
      this.deltas.push({ ...d, id } as VerifiedDelta);
      for (const p of d.parents) parents.push({ id: p, below: d.logIndex });
    }
    if (this.outstanding.size > 0) {
      this.stop('peer-lacks-deltas');
      return;
    }
    for (const p of parents) this.enqueue(p.id, p.below);
  }

  /** Ends the fill with `needs-catch-up` (used by the driver for timeouts and aborts). */
  stop(reason: GapStopReason, cause?: unknown): void {
    if (this.result) return;
    this.result = {
      kind: 'needs-catch-up',
      reason,
      deltas: this.deltas,
      missing: this.missing(),
      walked: this.walked(),
      rounds: this.rounds,
      requested: this.requested,
      offences: this.offences,
      ...(cause === undefined ? {} : { cause }),
    };
  }
}

const GENESIS_KEY = toHex(EMPTY_ROOT);

export interface FillGapsOptions extends GapFillOptions {
  source: DeltaSource;
  /** The caller's cancellation: the result is `aborted`. */
  signal?: AbortSignal;
  /** Per-request deadline in ms (a `TimeoutError` abort): the result is `timeout`. */
  requestTimeoutMs?: number;
  /** Overall deadline, checked between rounds against `now()`: the result is `timeout`. */
  deadlineMs?: number;
  /** Clock for `deadlineMs`; default `Date.now`. */
  now?: () => number;
}

/**
 * Fetches the missing ancestors of held deltas from `source` (module comment).
 * @example
 * const r = await fillGaps(dag.missingParents(), { source, writerPublicKey, knows: (id) => dag.knows(id) });
 * for (const d of r.deltas) dag.add(d, Date.now());
 * if (r.kind === 'needs-catch-up') startChangeProofSync();
 */
export async function fillGaps(missing: Uint8Array[], options: FillGapsOptions): Promise<GapFillResult> {
  const fill = new GapFill(missing, options);
  const now = options.now ?? Date.now;
  for (;;) {
    if (fill.queued > 0) {
      if (options.signal?.aborted) {
        fill.stop('aborted', options.signal.reason);
        break;
      }
      if (options.deadlineMs !== undefined && now() >= options.deadlineMs) {
        fill.stop('timeout');
        break;
      }
    }
    const ids = fill.nextRequest();
    if (ids === undefined) break;
    const signals: AbortSignal[] = [];
    if (options.signal) signals.push(options.signal);
    if (options.requestTimeoutMs !== undefined) signals.push(AbortSignal.timeout(options.requestTimeoutMs));
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    let response: Delta[];
    try {
      response = await options.source.fetch(ids, { signal });
    } catch (err) {
      if (options.signal?.aborted) fill.stop('aborted', err);
      else if (isTimeout(err) || signal?.aborted) fill.stop('timeout', err);
      else fill.stop('source-failed', err);
      break;
    }
    if (!Array.isArray(response)) {
      fill.stop('source-failed', new TypeError('the delta source returned a non-array'));
      break;
    }
    fill.receive(response);
  }
  return fill.result!;
}

function isTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TimeoutError';
}
