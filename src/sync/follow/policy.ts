/**
 * The follow policy of live deltas (docs/design.md "The sync flow" steps 3–4) as a pure state
 * machine: when a follower applies, when it fills a gap over `/delta` (after a grace period
 * that lets gossip reorder, with a growing wait after failures), when it gives up and catches
 * up by change proof, and which mode it is in. No DAG, store, network, clock or timer in here:
 * the driver (the browser's `LiveFollower`, the node's `Replica`) feeds it events with the time,
 * carries out the actions in order, and feeds back how each ended.
 *
 * Modes: `syncing` (a state sync runs: deltas are held, never applied, no gap filling), `live`
 * (applying), `catching-up` (a change-proof sync to the newest announcement runs).
 *
 * @example
 * const policy = new FollowPolicy({ graceMs: 250, retryMs: 1000, maxRetryMs: 10_000 });
 * for (const a of policy.step({ type: 'at-root', reason: 'synced', now: Date.now() })) run(a);
 * // run(a): 'apply' starts the apply loop, whose end is fed back as { type: 'apply-ended' }, ...
 */
import { equalBytes } from '../../core/bytes.ts';
import { EMPTY_ROOT } from '../../core/types.ts';

/** Whether the follower is state syncing, applying deltas live, or catching up by change proof. */
export type FollowMode = 'syncing' | 'live' | 'catching-up';

/** Why a catch-up by change proof was asked for. */
export type CatchUpReason =
  | 'root-mismatch'
  | 'gap-too-large'
  | 'peer-lacks-deltas'
  | 'timeout'
  | 'source-failed'
  | 'aborted'
  | 'no-source'
  | 'pending-expired'
  | 'state-changed';

export interface FollowPolicyConfig {
  /**
   * How long missing parents, and an announcement's unknown heads, may take to arrive by gossip
   * before they are fetched. 0 still waits for a timer, so gossip already on its way (a delta
   * whose announcement overtook it) arrives first; undefined: fetched at once, for a driver
   * that looks for gaps on its own schedule.
   */
  graceMs?: number;
  /** The wait before the next gap fill after a failed one; it doubles per failure. 0: none. */
  retryMs: number;
  /** The longest such wait. */
  maxRetryMs: number;
}

/** How a gap fill ended. */
export type FillOutcome =
  /** Every missing delta arrived: apply, then look for more. */
  | { outcome: 'filled' }
  /** The chain was given up on (it does not connect): the state is fine, look for more. */
  | { outcome: 'abandoned' }
  /** Nothing was missing, or the follower left meanwhile. */
  | { outcome: 'nothing-missing' }
  /** No peer to ask just now: the driver looks again on its own schedule (no catch-up). */
  | { outcome: 'waiting' }
  /** No peer could fill it: wait before the next fill, catch up. */
  | { outcome: 'failed'; reason: CatchUpReason; now: number };

export type FollowEvent =
  /** The state stands at a signed root (a sync reached its target, a stored position holds). */
  | { type: 'at-root'; reason: 'synced' | 'restored'; now: number }
  /** The driver stops applying before it runs a sync. */
  | { type: 'leave'; mode: 'syncing' | 'catching-up'; reason?: CatchUpReason }
  /** The local state was forgotten: back to syncing. */
  | { type: 'reset' }
  /** A held delta is ready to apply. */
  | { type: 'ready' }
  /** Something is missing (a held delta's parents, an announcement's heads); `from` sent it. */
  | { type: 'missing'; from: string | undefined; now: number }
  /** A timer the policy set went off. */
  | { type: 'timer'; timer: 'grace' | 'retry'; hint: string | undefined; now: number }
  /** A delta did not reproduce its `stateRoot` (or the DAG diverged). */
  | { type: 'root-mismatch' }
  /** The apply loop ended; `failed`: a store write failed (the driver reports it). */
  | { type: 'apply-ended'; failed?: boolean }
  | ({ type: 'fill-ended' } & FillOutcome)
  /** A held delta waited for its parents longer than the driver allows. */
  | { type: 'expired' }
  /** An announcement whose heads are applied names another root: the state changed outside the DAG. */
  | { type: 'state-changed' }
  | { type: 'close' };

export type FollowAction =
  /** The mode changed (or was confirmed, with a reason): tell the world. */
  | { type: 'mode'; mode: FollowMode; reason?: CatchUpReason | 'synced' | 'restored' }
  /** Start the apply loop; feed `apply-ended` when it ends. */
  | { type: 'apply' }
  /** Start one gap fill, `hint` the first peer to ask; feed `fill-ended` when it ends. */
  | { type: 'fill'; hint: string | undefined }
  /** Feed `{ type: 'timer', timer, hint }` after `ms`. */
  | { type: 'timer'; timer: 'grace' | 'retry'; ms: number; hint: string | undefined }
  /** Run a change-proof sync to the newest announcement, then feed `at-root`. */
  | { type: 'catch-up'; reason: CatchUpReason };

export interface FollowState {
  mode: FollowMode;
  closed: boolean;
  /** The apply loop runs. */
  applying: boolean;
  /** A gap fill runs. */
  filling: boolean;
  /** The grace timer is set (one at a time). */
  graceSet: boolean;
  /** The peer to ask first when the grace timer goes off. */
  graceHint: string | undefined;
  /** No gap fill starts before this time (after failures). */
  nextFillAt: number;
  /** The wait after the next failure. */
  retryMs: number;
  /** Catch-ups asked for. */
  catchUps: number;
}

/** The named cases of an announcement offered to a live follower (`classifyAnnouncement`). */
export type AnnouncementCase =
  /** Older than the position, or its `seq` was seen: ignore it. */
  | 'stale'
  /** The announcement of the state the follower stands at: take its `seq`. */
  | 'ours'
  /** Heads the follower neither holds nor applied: fetch them if gossip does not bring them. */
  | 'heads-unknown'
  /** Its heads are applied but its root is not ours: the state changed outside the DAG. */
  | 'state-changed'
  /** Its heads are known (held or applied): they are on their way. */
  | 'heads-known';

export interface AnnouncementFacts {
  stateRoot: Uint8Array;
  /** The writer's DAG heads; none: the genesis parent. */
  heads: readonly Uint8Array[];
  logSize: number;
  seq: number;
}

/** Where the follower stands. */
export interface FollowPosition {
  root: Uint8Array;
  logSize: number;
  seq?: number;
}

/** What the follower knows of a delta id. */
export interface DeltaKnowledge {
  /** Held or applied. */
  knows(id: Uint8Array): boolean;
  isApplied(id: Uint8Array): boolean;
}

/** Which case an announcement is, for a follower standing at `at` (see `AnnouncementCase`). */
export function classifyAnnouncement(ann: AnnouncementFacts, at: FollowPosition, dag: DeltaKnowledge): AnnouncementCase {
  if (ann.logSize < at.logSize || ann.seq <= (at.seq ?? -1)) return 'stale';
  if (equalBytes(ann.stateRoot, at.root) && ann.logSize === at.logSize) return 'ours';
  if (ann.heads.some((h) => !dag.knows(h))) return 'heads-unknown';
  const heads = ann.heads.length ? ann.heads : [EMPTY_ROOT];
  if (heads.every((h) => dag.isApplied(h)) && ann.logSize === at.logSize) return 'state-changed';
  return 'heads-known';
}

/**
 * The policy. Feed each event to `step` and carry out the actions it returns, in order; `state`
 * is a copy, for status reports and tests.
 */
export class FollowPolicy {
  readonly #config: FollowPolicyConfig;
  readonly #s: FollowState;

  constructor(config: FollowPolicyConfig) {
    for (const [k, v] of Object.entries(config)) {
      if (v === undefined && k === 'graceMs') continue;
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`expected ${k} to be a non-negative number, got ${v}`);
    }
    this.#config = { ...config };
    this.#s = { mode: 'syncing', closed: false, applying: false, filling: false, graceSet: false, graceHint: undefined, nextFillAt: 0, retryMs: config.retryMs, catchUps: 0 };
  }

  get state(): Readonly<FollowState> {
    return { ...this.#s };
  }

  get mode(): FollowMode {
    return this.#s.mode;
  }

  get closed(): boolean {
    return this.#s.closed;
  }

  step(e: FollowEvent): FollowAction[] {
    const s = this.#s;
    switch (e.type) {
      case 'at-root':
        if (s.closed) return [];
        s.mode = 'live';
        return [{ type: 'mode', mode: 'live', reason: e.reason }, ...this.#apply(), ...this.#fill(undefined, e.now)];
      case 'leave':
        if (s.mode === e.mode) return [];
        s.mode = e.mode;
        return [{ type: 'mode', mode: e.mode, reason: e.reason }];
      case 'reset':
        s.mode = 'syncing';
        return [{ type: 'mode', mode: 'syncing' }];
      case 'ready':
        return s.mode === 'live' ? this.#apply() : [];
      case 'missing':
        if (s.mode !== 'live' || s.closed || s.graceSet) return [];
        if (this.#config.graceMs === undefined) return this.#fill(e.from, e.now);
        s.graceSet = true;
        s.graceHint = e.from;
        return [{ type: 'timer', timer: 'grace', ms: this.#config.graceMs, hint: e.from }];
      case 'timer':
        if (e.timer === 'grace') {
          const hint = s.graceHint;
          s.graceSet = false;
          s.graceHint = undefined;
          return this.#fill(hint, e.now);
        }
        return this.#fill(e.hint, e.now);
      case 'root-mismatch':
        return this.#catchUp('root-mismatch');
      case 'apply-ended':
        s.applying = false;
        // a failed write left the store at its last durable position: the driver restarts a sync
        if (e.failed) s.mode = 'syncing';
        return [];
      case 'fill-ended':
        return this.#fillEnded(e);
      case 'expired':
        return s.closed ? [] : this.#catchUp('pending-expired');
      case 'state-changed':
        return this.#catchUp('state-changed');
      case 'close':
        s.closed = true;
        return [];
    }
  }

  #apply(): FollowAction[] {
    const s = this.#s;
    if (s.applying || s.mode !== 'live' || s.closed) return [];
    s.applying = true;
    return [{ type: 'apply' }];
  }

  #fill(hint: string | undefined, now: number): FollowAction[] {
    const s = this.#s;
    if (s.filling || s.mode !== 'live' || s.closed) return [];
    const wait = s.nextFillAt - now;
    if (wait > 0) return [{ type: 'timer', timer: 'retry', ms: wait, hint }];
    s.filling = true;
    return [{ type: 'fill', hint }];
  }

  #fillEnded(e: FillOutcome): FollowAction[] {
    const s = this.#s;
    const goOn = s.mode === 'live' && !s.closed;
    switch (e.outcome) {
      case 'filled':
        s.retryMs = this.#config.retryMs;
        // the filled deltas are ready; anything still missing is fetched next, at once
        if (!goOn) break;
        return [...this.#apply(), { type: 'fill', hint: undefined }];
      case 'abandoned':
        // no catch-up: the state is where it was, only that chain does not connect to it
        if (!goOn) break;
        return [{ type: 'fill', hint: undefined }];
      case 'nothing-missing':
      case 'waiting':
        break;
      case 'failed':
        s.filling = false;
        // stopping, not a fault of the chain or the peers
        if (e.reason === 'aborted') return [];
        s.nextFillAt = e.now + s.retryMs;
        s.retryMs = Math.min(this.#config.maxRetryMs, s.retryMs * 2);
        return this.#catchUp(e.reason);
    }
    s.filling = false;
    return [];
  }

  #catchUp(reason: CatchUpReason): FollowAction[] {
    const s = this.#s;
    if (s.mode !== 'live') return [];
    s.catchUps++;
    s.mode = 'catching-up';
    return [
      { type: 'mode', mode: 'catching-up', reason },
      { type: 'catch-up', reason },
    ];
  }
}
