/**
 * Gap fills of the live follower: one fill fetches the missing parents of held deltas, and the
 * announced heads not yet heard of, over `/delta` (gap-fill.ts), trying the peer that sent the
 * delta first and then the others. When to fill, how long to wait after a failure and when to
 * catch up instead is the follow policy's (src/sync/follow/policy.ts); this file does the I/O
 * and says how a fill ended.
 *
 * A chain a fill gave up on (more missing ancestors than `maxGapFill`, or none to be had) is
 * remembered (missing-chains.ts): its deltas are dropped, and deltas that later hang on it are
 * dropped on arrival, so an orphaned branch or a second database signed with the same key is
 * walked once, not after every catch-up. A peer whose fills led nowhere a whole fill's worth in
 * a minute gets short fills only (fill-budget.ts).
 */
import { toHex } from '../../core/bytes.ts';
import type { DeltaDag } from '../../core/dag.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import type { CatchUpReason, FillOutcome } from '../../sync/follow/policy.ts';
import { fillGaps, type DeltaSource, type WalkedId } from '../../sync/gap-fill.ts';
import { PeerFillBudget } from './fill-budget.ts';
import { MissingChains } from './missing-chains.ts';
import type { GapFillEvent, LiveTuning } from './types.ts';

const FILL_BUDGET_WINDOW_MS = 60_000;
/** Ids one fill may request from a peer over its budget (see `PeerFillBudget`). */
const SHORT_FILL = 16;

/** What a gap fill needs of the follower that runs it. */
export interface GapFillContext {
  /** The current DAG (a reset replaces it). */
  dag(): DeltaDag;
  tuning: Required<LiveTuning>;
  writerPublicKey: Uint8Array;
  /** Peers to fill gaps from, `hint` (the peer that sent the delta) first. */
  sources(hint: string | undefined): { id: string; source: DeltaSource }[];
  now(): number;
  /** Whether to go on (live, not closed). */
  live(): boolean;
  /** Holds a fetched delta (verified by the fill), `from` the peer that sent it. */
  hold(d: VerifiedDelta, from: string): void;
  /** Drops held deltas from the DAG and the pending store; counted as abandoned. */
  dropAbandoned(ids: Uint8Array[]): void;
  /** The held deltas changed: a `pending` event. */
  pendingChanged(): void;
  emit(e: GapFillEvent): void;
  penalise?(peer: string, offences: number): void;
  blame?(peer: string, reason: string): void;
}

export class GapFiller {
  readonly #c: GapFillContext;
  /** Chains gap filling gave up on: deltas on them are dropped, not walked again. */
  #chains: MissingChains;
  /**
   * Ids each peer had us request in fills that led nowhere: past `maxGapFill` in a minute, its
   * fills are short (`SHORT_FILL`), so a peer gossiping fresh deep chains costs about one
   * fill's worth a minute, not one per chain.
   */
  readonly #budget: PeerFillBudget;
  /** Announced heads we neither hold nor applied, to fetch. */
  readonly #wanted = new Map<string, Uint8Array>();

  constructor(context: GapFillContext) {
    this.#c = context;
    this.#chains = new MissingChains({ maxIds: context.tuning.maxMissingIds });
    this.#budget = new PeerFillBudget({ maxIds: context.tuning.maxGapFill, windowMs: FILL_BUDGET_WINDOW_MS });
  }

  /** The chains given up on (missing-chains.ts). */
  get chains(): MissingChains {
    return this.#chains;
  }

  /** Forgets the chains given up on and the wanted heads (the host cleared the store). */
  reset(): void {
    this.#chains = new MissingChains({ maxIds: this.#c.tuning.maxMissingIds });
    this.#wanted.clear();
  }

  /** Announced heads to fetch unless gossip brings them first. */
  want(heads: readonly Uint8Array[]): void {
    for (const h of heads) this.#wanted.set(toHex(h), h);
  }

  /** A wanted head arrived. */
  arrived(id: Uint8Array): void {
    this.#wanted.delete(toHex(id));
  }

  /**
   * The state moved to a new position (`moved`): heads wanted before may lie behind it (their
   * ancestors are not in the applied set, so a fill would walk back to genesis), and the host
   * offers the newest announcement again. Heads now known are no longer wanted.
   */
  atPosition(moved: boolean, logSize: number): void {
    // chains given up on that lie within the state's log prefix were its own history: forget them
    this.#chains.covered(logSize);
    if (moved) this.#wanted.clear();
    const dag = this.#c.dag();
    for (const [k, h] of this.#wanted) if (dag.knows(h)) this.#wanted.delete(k);
  }

  /** One gap fill: what is missing now, from one peer after another until one fills it. */
  async fill(hint: string | undefined): Promise<FillOutcome> {
    const c = this.#c;
    const { tuning } = c;
    if (!c.live()) return { outcome: 'nothing-missing' };
    this.dropAbandoned();
    const dag = c.dag();
    const missing = [...dag.missingParents(), ...[...this.#wanted.values()].filter((h) => !dag.knows(h))];
    this.#wanted.clear();
    if (missing.length === 0) return { outcome: 'nothing-missing' };
    const sources = c.sources(hint);
    if (sources.length === 0) {
      c.emit({ phase: 'failed', peer: undefined, missing: missing.length, fetched: 0, rounds: 0, reason: 'no-source', offences: 0 });
      return { outcome: 'failed', reason: 'no-source', now: c.now() };
    }
    let last: CatchUpReason = 'no-source';
    let abandoned = false;
    /** Ids walked by fills that found the chain too long, or its ancestors nowhere. */
    const walked: WalkedId[] = [];
    const blamed = hint ?? sources[0].id;
    for (const { id, source } of sources) {
      // this peer's fills led nowhere a whole fill's worth this minute: it gets short fills
      // only (enough to reach a remembered chain, or to fill a small gap of its own)
      const maxTotal = this.#budget.exhausted(id, c.now()) ? Math.min(SHORT_FILL, tuning.maxGapFill) : tuning.maxGapFill;
      c.emit({ phase: 'started', peer: id, missing: missing.length, fetched: 0, rounds: 0, offences: 0 });
      const r = await fillGaps(missing, {
        source,
        writerPublicKey: c.writerPublicKey,
        knows: (x) => c.dag().knows(x),
        abandoned: (x) => this.#chains.has(x),
        maxPerRound: tuning.maxPerRound,
        maxTotal,
        requestTimeoutMs: tuning.requestTimeoutMs,
      });
      if (r.offences.length > 0) c.penalise?.(id, r.offences.length);
      if (r.kind === 'filled') {
        // parents first, so each is held (and ready) before its children
        for (const d of [...r.deltas].reverse()) c.hold(d, id);
        c.emit({ phase: 'finished', peer: id, missing: missing.length, fetched: r.deltas.length, rounds: r.rounds, offences: r.offences.length });
        return { outcome: 'filled' };
      }
      c.emit({ phase: 'failed', peer: id, missing: missing.length, fetched: r.deltas.length, rounds: r.rounds, reason: r.reason, offences: r.offences.length });
      if (r.reason === 'abandoned-chain' || r.reason === 'gap-too-large' || r.reason === 'peer-lacks-deltas') this.#budget.spend(id, r.requested, c.now());
      if (r.reason === 'abandoned-chain') {
        // it reached a chain given up on before: what it walked is on that chain too
        walked.push(...r.walked);
        abandoned = true;
        break;
      }
      if (r.reason === 'gap-too-large' || r.reason === 'peer-lacks-deltas') walked.push(...r.walked);
      // a timeout or a failed source says nothing about the chain: keep what arrived
      else for (const d of [...r.deltas].reverse()) c.hold(d, id);
      last = r.reason;
      // another peer cannot make a gap smaller
      if (r.reason === 'gap-too-large') break;
    }
    if (walked.length > 0) {
      // remembered, so that the chain is not walked again; the deltas held on it are dropped
      this.#abandon(walked);
      c.blame?.(blamed, abandoned ? 'delta on a chain given up on' : `delta on a chain ${last === 'gap-too-large' ? `of more than ${tuning.maxGapFill} missing ancestors` : 'whose ancestors no peer has'}`);
    }
    if (abandoned) return { outcome: 'abandoned' };
    return { outcome: 'failed', reason: last, now: c.now() };
  }

  /** Remembers a walked chain (ids without a bound get their held children's) and drops what hangs on it. */
  #abandon(walked: WalkedId[]): void {
    const childIndex = new Map<string, number>();
    for (const d of this.#c.dag().heldDeltas()) {
      for (const p of d.parents) {
        const k = toHex(p);
        childIndex.set(k, Math.min(childIndex.get(k) ?? Infinity, d.logIndex));
      }
    }
    this.#chains.abandon(walked.map((w) => ({ id: w.id, below: w.below ?? childIndex.get(toHex(w.id)) })));
    this.dropAbandoned();
  }

  /** Drops held deltas that hang on a chain given up on (and so, in turn, their children). */
  dropAbandoned(): void {
    for (;;) {
      const doomed = this.#c.dag().heldDeltas().filter((d) => this.#chains.hangs(d));
      if (doomed.length === 0) break;
      this.#c.dropAbandoned(doomed.map((d) => d.id));
    }
    this.#c.pendingChanged();
  }
}
