/**
 * The delta DAG of a client (docs/design.md, sync flow steps 3–4): which deltas are applied, which
 * are held back, and in what order the held ones may be applied. Pure bookkeeping: no I/O, no
 * trie; applying is the caller's `apply` callback, time is the caller's `nowMs`.
 *
 * - **Applied** is a causally closed set, described by its heads (maximal elements). It starts
 *   as `{genesis}` (the all-zero id, always applied) and after a change-proof catch-up is reset
 *   to the announcement's heads. Two causally closed sets are equal iff their heads are, so
 *   "the applied set is exactly the causal past of delta d" is `heads == d.parents`, and that is
 *   when d's `stateRoot` is checked (in a single writer's chain: always).
 * - **Held** deltas (verified, not yet applied) are never read as state. A held delta is *ready*
 *   when every parent is applied or is itself ready earlier in causal order; otherwise it waits,
 *   and `missingParents()` names what gap filling must fetch.
 * - The writer's history log gives a second cover rule: after catch-up to an announcement with
 *   `logSize = n`, every delta with `logIndex < n` is already reflected in the state.
 * - Bounds: at most `maxPending` held deltas and `maxPendingBytes` of their wire size. Over a
 *   bound, held deltas that do not connect to the applied set (some ancestor neither applied
 *   nor held) go first, then the rest; within each, the greatest (hlc, id) first, repeatedly;
 *   that may be the one just added. Causal order follows the HLC, so descendants go before their ancestors
 *   and what remains is closest to being applicable; an evicted delta is fetched again by gap
 *   filling or covered by catch-up.
 * - Memory: applied ids are remembered only within `appliedWindow` log positions below the
 *   applied log prefix (pruned when twice that many are held; heads always stay). An older
 *   delta is still recognised as applied by its `logIndex` (the log prefix rule above), which
 *   the caller's persisted position restores after a reload; a held delta naming a forgotten
 *   parent waits for it to be added again (gap filling), which re-records it as applied.
 * - Nothing waits forever: `expired(nowMs, timeoutMs)` lists deltas held too long (the age runs
 *   from the first add; re-gossip does not reset it) so the caller can gap-fill, catch up, drop.
 *
 * One file: add, apply, evict, cover and expire all keep the same invariants of one structure
 * (the applied set causally closed, the held set within its bounds), and `DeltaHeap` is its
 * eviction order, used nowhere else.
 */
import { compareBytes, equalBytes, toHex } from './bytes.ts';
import { errorClass, ProofsyncError } from './errors.ts';
import { compareHlc } from './hlc.ts';
import { deltaWireLength, type VerifiedDelta } from './delta.ts';
import { EMPTY_ROOT } from './types.ts';

export interface DagLimits {
  maxPending: number;
  maxPendingBytes: number;
  /** Log positions below the applied prefix whose ids are remembered (see the module comment). */
  appliedWindow: number;
}

export const DEFAULT_DAG_LIMITS: Readonly<DagLimits> = Object.freeze({
  maxPending: 10_000,
  maxPendingBytes: 64 * 1024 * 1024,
  appliedWindow: 4096,
});

/** What a catch-up established: the state of an announcement. */
export interface AppliedCover {
  /** The DAG heads of the announcement (empty: no delta yet, i.e. genesis). */
  heads: Uint8Array[];
  /** The announcement's log size: every delta with a smaller `logIndex` is reflected. */
  logSize: number;
}

export type AddResult =
  /** Already applied, or covered by the log (`logIndex` below the applied log prefix). */
  | { status: 'applied'; evicted: Uint8Array[] }
  /** Already held. */
  | { status: 'duplicate'; evicted: Uint8Array[] }
  /** Held; every parent is applied. */
  | { status: 'ready'; evicted: Uint8Array[] }
  /** Held; some parent is not applied. `missing`: parents neither applied nor held. */
  | { status: 'pending'; missing: Uint8Array[]; evicted: Uint8Array[] }
  /** Not held: over a bound, it was the first to go. */
  | { status: 'evicted'; evicted: Uint8Array[] };

export type ApplyReport =
  | {
      kind: 'applied';
      /** In the order applied. */
      applied: Uint8Array[];
      /** Subset whose `stateRoot` was checked and matched. */
      checked: Uint8Array[];
      /** Subset applied on a different causal past (concurrent branches): root not checkable. */
      unchecked: Uint8Array[];
    }
  | {
      kind: 'needs-catch-up';
      reason: 'root-mismatch';
      applied: Uint8Array[];
      checked: Uint8Array[];
      unchecked: Uint8Array[];
      /** The delta whose root did not match; its effects are in the caller's trie. */
      delta: Uint8Array;
      expected: Uint8Array;
      actual: Uint8Array;
      /** Held deltas discarded: the offender and its held descendants. */
      discarded: Uint8Array[];
    }
  | {
      kind: 'needs-catch-up';
      reason: 'diverged';
      applied: Uint8Array[];
      checked: Uint8Array[];
      unchecked: Uint8Array[];
    };

/** `applyReady` was called while a previous call was still running. */
export const ApplyInProgress = errorClass(ProofsyncError, 'ApplyInProgress');

interface Held {
  delta: VerifiedDelta;
  key: string;
  parentKeys: string[];
  bytes: number;
  sinceMs: number;
}

const GENESIS_KEY = toHex(EMPTY_ROOT);

function causalOrder(a: VerifiedDelta, b: VerifiedDelta): number {
  return compareHlc(a.hlc, b.hlc) || Math.sign(compareBytes(a.id, b.id));
}

/** A minimal binary heap ordered by `causalOrder`. */
class DeltaHeap {
  private readonly items: VerifiedDelta[] = [];
  get size(): number {
    return this.items.length;
  }
  push(d: VerifiedDelta): void {
    const a = this.items;
    a.push(d);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (causalOrder(a[p], a[i]) <= 0) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): VerifiedDelta | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && causalOrder(a[l], a[m]) < 0) m = l;
        if (r < a.length && causalOrder(a[r], a[m]) < 0) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Applied and held deltas of one database.
 * @example
 * const dag = new DeltaDag();
 * dag.add(verifiedDelta, clock());
 * const report = await dag.applyReady(async (d) => trie.apply(d.actions));
 * if (report.kind === 'needs-catch-up') startChangeProofSync();
 */
export class DeltaDag {
  private readonly limits: DagLimits;
  private readonly held = new Map<string, Held>();
  /** parent key → keys of held deltas naming it. */
  private readonly children = new Map<string, Set<string>>();
  /** Applied ids → their log index (-1: genesis and heads set by a catch-up: never pruned). */
  private readonly appliedIds = new Map<string, number>([[GENESIS_KEY, -1]]);
  private appliedHeads = new Map<string, Uint8Array>([[GENESIS_KEY, EMPTY_ROOT]]);
  /** Log entries [0, logFloor) are reflected in the applied state. */
  private logFloor = 0;
  private readonly appliedAboveFloor = new Set<number>();
  /** `prune` scans again once this many ids are remembered. */
  private pruneAt = 0;
  private heldBytes = 0;
  private applying = false;
  private diverged = false;

  constructor(options: Partial<DagLimits> & { applied?: AppliedCover } = {}) {
    this.limits = {
      maxPending: options.maxPending ?? DEFAULT_DAG_LIMITS.maxPending,
      maxPendingBytes: options.maxPendingBytes ?? DEFAULT_DAG_LIMITS.maxPendingBytes,
      appliedWindow: options.appliedWindow ?? DEFAULT_DAG_LIMITS.appliedWindow,
    };
    if (!Number.isSafeInteger(this.limits.appliedWindow) || this.limits.appliedWindow < 1) {
      throw new RangeError(`expected appliedWindow to be a positive integer, got ${this.limits.appliedWindow}`);
    }
    if (options.applied) this.resetApplied(options.applied);
  }

  /** Number of held (not applied) deltas. */
  get pendingCount(): number {
    return this.held.size;
  }

  /** Sum of the wire sizes of held deltas. */
  get pendingBytes(): number {
    return this.heldBytes;
  }

  /** Applied ids remembered (bounded by about twice `appliedWindow`, plus the heads). */
  get appliedIdCount(): number {
    return this.appliedIds.size;
  }

  /** True after a root mismatch, until `resetApplied` records a catch-up. */
  get needsCatchUp(): boolean {
    return this.diverged;
  }

  isApplied(id: Uint8Array): boolean {
    return this.appliedIds.has(toHex(id));
  }

  /** Held, not applied. */
  has(id: Uint8Array): boolean {
    return this.held.has(toHex(id));
  }

  /** Applied or held: a gap filler never needs to fetch it. */
  knows(id: Uint8Array): boolean {
    const k = toHex(id);
    return this.appliedIds.has(k) || this.held.has(k);
  }

  get(id: Uint8Array): VerifiedDelta | undefined {
    return this.held.get(toHex(id))?.delta;
  }

  /** The heads of the applied set, sorted byte-wise. */
  heads(): Uint8Array[] {
    return [...this.appliedHeads.values()].sort(compareBytes);
  }

  /**
   * Holds a verified delta (duplicates and already-applied ones cost nothing), then enforces the
   * bounds. `nowMs` starts its expiry clock.
   */
  add(delta: VerifiedDelta, nowMs: number): AddResult {
    const key = toHex(delta.id);
    if (this.appliedIds.has(key)) return { status: 'applied', evicted: [] };
    if (this.held.has(key)) return { status: 'duplicate', evicted: [] };
    if (delta.logIndex < this.logFloor) {
      // Reflected in the state already (the log prefix is applied): record it as applied so
      // that deltas naming it as a parent can proceed. The applied heads do not change.
      this.appliedIds.set(key, delta.logIndex);
      this.prune();
      return { status: 'applied', evicted: [] };
    }
    const parentKeys = delta.parents.map(toHex);
    const entry: Held = { delta, key, parentKeys, bytes: deltaWireLength(delta), sinceMs: nowMs };
    this.held.set(key, entry);
    this.heldBytes += entry.bytes;
    for (const p of parentKeys) {
      let set = this.children.get(p);
      if (!set) this.children.set(p, (set = new Set()));
      set.add(key);
    }
    const evicted = this.enforceBounds();
    if (!this.held.has(key)) return { status: 'evicted', evicted };
    const unapplied = delta.parents.filter((_, i) => !this.appliedIds.has(parentKeys[i]));
    if (unapplied.length === 0) return { status: 'ready', evicted };
    const missing = unapplied.filter((p) => !this.held.has(toHex(p)));
    return { status: 'pending', missing, evicted };
  }

  private enforceBounds(): Uint8Array[] {
    const evicted: Uint8Array[] = [];
    if (this.held.size <= this.limits.maxPending && this.heldBytes <= this.limits.maxPendingBytes) return evicted;
    // deltas that connect to the applied set go last: a flood of deltas on a chain that never
    // connects must not push out the next delta to apply
    const connected = this.connected();
    while (this.held.size > this.limits.maxPending || this.heldBytes > this.limits.maxPendingBytes) {
      let worst: Held | undefined;
      let worstConnected = true;
      for (const h of this.held.values()) {
        const c = connected.has(h.key);
        if (!worst || (worstConnected && !c) || (c === worstConnected && causalOrder(h.delta, worst.delta) > 0)) {
          worst = h;
          worstConnected = c;
        }
      }
      this.remove(worst!.key);
      evicted.push(worst!.delta.id);
    }
    return evicted;
  }

  /** Keys of held deltas whose every ancestor is applied or held (they connect to the applied set). */
  private connected(): Set<string> {
    const out = new Set<string>();
    const waitingOn = new Map<string, number>();
    const stack: string[] = [];
    for (const h of this.held.values()) {
      let n = 0;
      for (const p of h.parentKeys) if (!this.appliedIds.has(p)) n++;
      if (n === 0) stack.push(h.key);
      else waitingOn.set(h.key, n);
    }
    while (stack.length > 0) {
      const k = stack.pop()!;
      out.add(k);
      for (const c of this.children.get(k) ?? []) {
        const n = waitingOn.get(c)! - 1;
        waitingOn.set(c, n);
        if (n === 0) stack.push(c);
      }
    }
    return out;
  }

  private remove(key: string): Held | undefined {
    const h = this.held.get(key);
    if (!h) return undefined;
    this.held.delete(key);
    this.heldBytes -= h.bytes;
    for (const p of h.parentKeys) {
      const set = this.children.get(p);
      if (set) {
        set.delete(key);
        if (set.size === 0) this.children.delete(p);
      }
    }
    return h;
  }

  /**
   * Every held delta that can be applied now, in causal order: each appears after all of its
   * parents; among those available at a step, the smallest (hlc, id) goes first.
   */
  ready(): VerifiedDelta[] {
    const waitingOn = new Map<string, number>();
    const heap = new DeltaHeap();
    for (const h of this.held.values()) {
      let n = 0;
      for (const p of h.parentKeys) if (!this.appliedIds.has(p)) n++;
      if (n === 0) heap.push(h.delta);
      else waitingOn.set(h.key, n);
    }
    const out: VerifiedDelta[] = [];
    for (let d = heap.pop(); d !== undefined; d = heap.pop()) {
      out.push(d);
      for (const c of this.children.get(toHex(d.id)) ?? []) {
        const n = waitingOn.get(c)! - 1;
        waitingOn.set(c, n);
        if (n === 0) heap.push(this.held.get(c)!.delta);
      }
    }
    return out;
  }

  /** Parents named by held deltas that are neither applied nor held (genesis excluded), sorted. */
  missingParents(): Uint8Array[] {
    const out = new Map<string, Uint8Array>();
    for (const h of this.held.values()) {
      h.parentKeys.forEach((p, i) => {
        if (!this.appliedIds.has(p) && !this.held.has(p)) out.set(p, h.delta.parents[i]);
      });
    }
    return [...out.values()].sort(compareBytes);
  }

  /** Held deltas added at or before `nowMs - timeoutMs`, oldest first (then causal order). */
  expired(nowMs: number, timeoutMs: number): VerifiedDelta[] {
    return [...this.held.values()]
      .filter((h) => h.sinceMs + timeoutMs <= nowMs)
      .sort((a, b) => a.sinceMs - b.sinceMs || causalOrder(a.delta, b.delta))
      .map((h) => h.delta);
  }

  /** Every held delta (no order). */
  heldDeltas(): VerifiedDelta[] {
    return [...this.held.values()].map((h) => h.delta);
  }

  /** Removes these held deltas (unknown ids are ignored); returns the ids removed. */
  drop(ids: Iterable<Uint8Array>): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const id of ids) {
      const h = this.remove(toHex(id));
      if (h) out.push(h.delta.id);
    }
    return out;
  }

  /**
   * Drops held deltas that a state at `cover` already reflects: `logIndex < cover.logSize`, the
   * heads themselves, and held ancestors of the heads. Returns the ids dropped, sorted.
   */
  dropCoveredBy(cover: AppliedCover): Uint8Array[] {
    const doomed = new Set<string>();
    const stack = cover.heads.map(toHex);
    while (stack.length > 0) {
      const k = stack.pop()!;
      const h = this.held.get(k);
      if (!h || doomed.has(k)) continue;
      doomed.add(k);
      stack.push(...h.parentKeys);
    }
    for (const h of this.held.values()) if (h.delta.logIndex < cover.logSize) doomed.add(h.key);
    return this.drop([...doomed].map((k) => this.held.get(k)!.delta.id)).sort(compareBytes);
  }

  /**
   * Records a catch-up (change- or range-proof sync to an announcement): the applied set becomes
   * the causal past of `cover.heads`, the log prefix `[0, cover.logSize)` is reflected, covered
   * held deltas are dropped (returned), and a previous divergence is cleared.
   */
  resetApplied(cover: AppliedCover): Uint8Array[] {
    if (!Number.isSafeInteger(cover.logSize) || cover.logSize < 0) {
      throw new RangeError(`expected logSize to be a safe non-negative integer, got ${cover.logSize}`);
    }
    const heads = cover.heads.length === 0 ? [EMPTY_ROOT] : cover.heads;
    this.appliedHeads = new Map(heads.map((h) => [toHex(h), h]));
    for (const k of this.appliedHeads.keys()) this.appliedIds.set(k, -1);
    this.logFloor = cover.logSize;
    for (const i of this.appliedAboveFloor) if (i < this.logFloor) this.appliedAboveFloor.delete(i);
    this.advanceFloor();
    this.diverged = false;
    return this.dropCoveredBy(cover);
  }

  /**
   * Whether the applied set is exactly the delta's causal past (applied heads == its parents),
   * i.e. whether applying it now must reproduce its `stateRoot`.
   */
  appliedIsCausalPastOf(delta: { parents: Uint8Array[] }): boolean {
    if (delta.parents.length !== this.appliedHeads.size) return false;
    return delta.parents.every((p) => this.appliedHeads.has(toHex(p)));
  }

  /**
   * Records that a held delta was applied by the caller (for callers that apply without
   * `applyReady`, such as the writer itself). Its parents must all be applied.
   */
  markApplied(id: Uint8Array): void {
    const h = this.held.get(toHex(id));
    if (!h) throw new RangeError(`delta ${toHex(id)} is not held`);
    if (!h.parentKeys.every((p) => this.appliedIds.has(p))) {
      throw new RangeError(`delta ${toHex(id)} has parents that are not applied`);
    }
    this.remove(h.key);
    this.recordApplied(h);
  }

  private recordApplied(h: Held): void {
    this.appliedIds.set(h.key, h.delta.logIndex);
    for (const p of h.parentKeys) this.appliedHeads.delete(p);
    this.appliedHeads.set(h.key, h.delta.id);
    if (h.delta.logIndex >= this.logFloor) this.appliedAboveFloor.add(h.delta.logIndex);
    this.advanceFloor();
    this.prune();
  }

  /** Forgets applied ids more than `appliedWindow` positions below the applied log prefix. */
  private prune(): void {
    const window = this.limits.appliedWindow;
    if (this.appliedIds.size <= Math.max(2 * window, this.pruneAt)) return;
    const below = this.logFloor - window;
    for (const [k, i] of this.appliedIds) {
      if (i >= 0 && i < below && !this.appliedHeads.has(k)) this.appliedIds.delete(k);
    }
    // amortised: the next scan waits for another window of ids even if this one freed few
    this.pruneAt = this.appliedIds.size + window;
  }

  private advanceFloor(): void {
    while (this.appliedAboveFloor.delete(this.logFloor)) this.logFloor++;
  }

  /** Held descendants of `key` (through held deltas), including itself if held. */
  private heldDescendants(key: string): string[] {
    const seen = new Set<string>();
    const stack = [key];
    while (stack.length > 0) {
      const k = stack.pop()!;
      if (seen.has(k) || !this.held.has(k)) continue;
      seen.add(k);
      for (const c of this.children.get(k) ?? []) stack.push(c);
    }
    return [...seen];
  }

  /**
   * Applies every ready delta in causal order through `apply` (which returns the trie root
   * after applying), checking `stateRoot` whenever the applied set is exactly the delta's causal
   * past. On a mismatch it stops, discards the offender and its held descendants, and reports
   * that catch-up by change proof is needed; until `resetApplied`, further calls report
   * `diverged` without applying. Deltas added while it runs are picked up before it returns.
   * If `apply` throws, the delta stays held and the error propagates.
   */
  async applyReady(apply: (delta: VerifiedDelta) => Promise<Uint8Array>): Promise<ApplyReport> {
    if (this.applying) throw new ApplyInProgress('applyReady is already running for this DAG');
    const applied: Uint8Array[] = [];
    const checked: Uint8Array[] = [];
    const unchecked: Uint8Array[] = [];
    if (this.diverged) return { kind: 'needs-catch-up', reason: 'diverged', applied, checked, unchecked };
    this.applying = true;
    try {
      for (let batch = this.ready(); batch.length > 0; batch = this.ready()) {
        for (const d of batch) {
          const h = this.held.get(toHex(d.id));
          // It may have been dropped or covered while we awaited.
          if (!h || !h.parentKeys.every((p) => this.appliedIds.has(p))) continue;
          const check = this.appliedIsCausalPastOf(d);
          const root = await apply(d);
          if (check && !equalBytes(root, d.stateRoot)) {
            const discarded = this.drop(this.heldDescendants(h.key).map((k) => this.held.get(k)!.delta.id));
            this.diverged = true;
            return {
              kind: 'needs-catch-up',
              reason: 'root-mismatch',
              applied,
              checked,
              unchecked,
              delta: d.id,
              expected: d.stateRoot,
              actual: root,
              discarded: discarded.sort(compareBytes),
            };
          }
          if (this.held.get(h.key) === h) this.remove(h.key);
          this.recordApplied(h);
          applied.push(d.id);
          (check ? checked : unchecked).push(d.id);
        }
      }
      return { kind: 'applied', applied, checked, unchecked };
    } finally {
      this.applying = false;
    }
  }
}
