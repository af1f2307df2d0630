/**
 * A MerkleDB-style database: the trie plus a window of revision history, enough to serve range
 * proofs at any root in the window and change proofs between any two of them (docs/proofs.md).
 *
 * Each commit stores, in the same atomic batch as the trie, a history record of its value
 * changes `(key, before, after)` under 'h' ++ u64be(seq); the newest `historySize` records are
 * kept (default 300, as AvalancheGo). A view at an older root is the current trie with the
 * later changes reverted, so no old nodes need to be kept.
 *
 * Checkpoints (docs/sync.md#checkpoints): roots named by `retainCheckpoint` stay servable beyond
 * the window. The newest `checkpointsKept` of them (default 2) hold the window open back to the
 * oldest one, since a view at a root is built by reverting every later commit; at most
 * `maxCheckpointRevisions` revisions (default 4096) are kept for them beyond the window, past
 * which the oldest checkpoint is let go (a writer that names a checkpoint every N <= 2048
 * commits never gets there). The retained roots are stored under 'k', so a restart keeps them.
 */
import { compareBytes, equalBytes, inKeyRange, toHex } from './bytes.ts';
import * as E from './errors.ts';
import { changeProof, rangeProof } from './proof.ts';
import type { BatchOp, KVStore } from './store.ts';
import { MerkleTrie, type TrieView } from './trie.ts';
import { RwLock } from './rwlock.ts';
import { EMPTY_ROOT, type ChangeProof, type KeyChange, type KeyValue, type RangeProof } from './types.ts';

/** One key's value before and after a commit, as the history keeps it. */
export interface ValueChange {
  /** The key. */
  key: Uint8Array;
  /** The value before the commit; undefined when the key was absent. */
  before: Uint8Array | undefined;
  /** The value after the commit; undefined when the commit deleted the key. */
  after: Uint8Array | undefined;
}

/** One commit in the history window: its sequence number, the root it made, its value changes. */
export interface Revision {
  /** The commit's sequence number. */
  seq: number;
  /** The root after the commit. */
  root: Uint8Array;
  /** The keys the commit changed, sorted by key. */
  changes: ValueChange[];
}

const H = 0x68; // 'h'
/** The retained checkpoint roots, oldest first, concatenated. */
const CHECKPOINTS_KEY = Uint8Array.of(0x6b); // 'k'
const histKey = (seq: number) => {
  const k = new Uint8Array(9);
  k[0] = H;
  new DataView(k.buffer).setBigUint64(1, BigInt(seq));
  return k;
};

export function encodeRevision(r: Revision): Uint8Array {
  const parts: number[] = [];
  const u32 = (n: number) => parts.push(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
  const bytes = (b: Uint8Array | undefined) => {
    if (b === undefined) return u32(0xffffffff);
    u32(b.length);
    for (const x of b) parts.push(x);
  };
  bytes(r.root);
  u32(r.changes.length);
  for (const c of r.changes) {
    bytes(c.key);
    bytes(c.before);
    bytes(c.after);
  }
  return Uint8Array.from(parts);
}

export function decodeRevision(seq: number, b: Uint8Array): Revision {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const bytes = (): Uint8Array | undefined => {
    const n = dv.getUint32(o);
    o += 4;
    if (n === 0xffffffff) return undefined;
    const out = b.slice(o, o + n);
    o += n;
    return out;
  };
  const root = bytes()!;
  const count = dv.getUint32(o);
  o += 4;
  const changes: ValueChange[] = [];
  for (let i = 0; i < count; i++) changes.push({ key: bytes()!, before: bytes(), after: bytes() });
  return { seq, root, changes };
}

export interface DatabaseOptions {
  /** How many commits of value changes to keep (docs/proofs.md#serving: at least 300). */
  historySize?: number;
  /** How many of the newest checkpoints stay servable beyond the window (default 2). */
  checkpointsKept?: number;
  /** The most revisions kept beyond the window for checkpoints (default 4096). */
  maxCheckpointRevisions?: number;
  /** Called when a checkpoint is let go early (past `maxCheckpointRevisions`): a node counts it. */
  onCheckpointDropped?: (root: Uint8Array) => void;
  /** `TrieOptions.elideLeaves` of the trie (default true). */
  elideLeaves?: boolean;
}

/** Default `DatabaseOptions.checkpointsKept`. */
export const DEFAULT_CHECKPOINTS_KEPT = 2;
/** Default `DatabaseOptions.maxCheckpointRevisions`. */
export const DEFAULT_MAX_CHECKPOINT_REVISIONS = 4096;

export interface ProofLimits {
  start?: Uint8Array | undefined;
  end?: Uint8Array | undefined;
  keyLimit: number;
}

/**
 * A Merkle trie with a window of revision history: it serves range proofs at any root in the
 * window and change proofs between any two of them (docs/proofs.md). The full node's
 * state; also what a Node program uses to build and prove a database in memory.
 *
 * @example
 * const enc = new TextEncoder();
 * const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 300 });
 * const root = await db.commit([{ key: enc.encode('a'), value: enc.encode('1') }]);
 * const proof = await db.rangeProof(root, { keyLimit: 1024 });
 * verifyRangeProof(proof, { root, keyLimit: 1024 });
 */
export class MerkleDatabase {
  /** The trie holding the newest state. */
  readonly trie: MerkleTrie;
  /** How many commits of value changes the history window keeps. */
  readonly historySize: number;
  /** Oldest first. revisions[0] may be a base with no changes (the state the window starts at). */
  private revisions: Revision[];
  private seq: number;
  /** Retained checkpoint roots (all in `revisions`), oldest first. */
  private pinned: Uint8Array[];
  private readonly checkpointsKept: number;
  private readonly maxCheckpointRevisions: number;
  private readonly onCheckpointDropped: ((root: Uint8Array) => void) | undefined;
  /** Proofs read across awaits; commits must not interleave with them. */
  private readonly lock = new RwLock();

  private constructor(trie: MerkleTrie, revisions: Revision[], historySize: number, pinned: Uint8Array[], options: DatabaseOptions) {
    this.trie = trie;
    this.revisions = revisions;
    this.historySize = historySize;
    this.seq = revisions.length ? revisions[revisions.length - 1].seq : 0;
    this.checkpointsKept = options.checkpointsKept ?? DEFAULT_CHECKPOINTS_KEPT;
    this.maxCheckpointRevisions = options.maxCheckpointRevisions ?? DEFAULT_MAX_CHECKPOINT_REVISIONS;
    this.onCheckpointDropped = options.onCheckpointDropped;
    for (const [name, v] of [['checkpointsKept', this.checkpointsKept], ['maxCheckpointRevisions', this.maxCheckpointRevisions]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`expected ${name} to be a non-negative integer, got ${v}`);
    }
    this.pinned = this.checkpointsKept === 0 ? [] : pinned.filter((r) => this.indexOf(r) >= 0).slice(-this.checkpointsKept);
  }

  /** Opens the database held in `store` (an empty store is an empty database). */
  static async open(store: KVStore, options: DatabaseOptions = {}): Promise<MerkleDatabase> {
    const trie = await MerkleTrie.open(store, { elideLeaves: options.elideLeaves });
    const revisions: Revision[] = [];
    for await (const [k, v] of store.iterate({ gte: histKey(0), lt: new Uint8Array([H + 1]) })) {
      revisions.push(decodeRevision(Number(new DataView(k.buffer, k.byteOffset).getBigUint64(1)), v));
    }
    if (revisions.length === 0 || !equalBytes(revisions[revisions.length - 1].root, trie.root)) {
      // A store without history for its root (fresh, bulk-loaded, or written by a state sync
      // through the trie alone): the old records cannot lead to this root, so they go, and the
      // current root starts the window.
      const seq = revisions.length ? revisions[revisions.length - 1].seq + 1 : 0;
      const ops: BatchOp[] = revisions.map((r) => ({ type: 'del', key: histKey(r.seq) }));
      revisions.length = 0;
      revisions.push({ seq, root: trie.root, changes: [] });
      ops.push({ type: 'put', key: histKey(seq), value: encodeRevision(revisions[0]) });
      ops.push({ type: 'del', key: CHECKPOINTS_KEY });
      await store.write(ops);
    }
    const stored = await store.get(CHECKPOINTS_KEY);
    const pinned: Uint8Array[] = [];
    if (stored && stored.length % 32 === 0) for (let o = 0; o < stored.length; o += 32) pinned.push(stored.slice(o, o + 32));
    return new MerkleDatabase(trie, revisions, options.historySize ?? 300, pinned, options);
  }

  /** The root of the newest state (`EMPTY_ROOT` when empty). */
  get root(): Uint8Array {
    return this.trie.root;
  }

  /** Sequence number of the newest commit. */
  get revision(): number {
    return this.seq;
  }

  /** The newest value under `key`, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.trie.get(key);
  }

  /** The newest key-values with `start <= key <= end`, in key order, at most `limit`. */
  entries(start?: Uint8Array, end?: Uint8Array, limit?: number): AsyncIterable<KeyValue> {
    return this.trie.entries(start, end, limit);
  }

  /** Roots in the history window, oldest first. */
  roots(): Uint8Array[] {
    return this.revisions.map((r) => r.root);
  }

  /** Whether `root` is in the history window (proofs can be served at it). */
  hasRoot(root: Uint8Array): boolean {
    return this.indexOf(root) >= 0;
  }

  /**
   * Keeps `root` (a root in the window) servable beyond the history window, as the newest
   * checkpoint; the oldest of more than `checkpointsKept` is let go. Returns false (and keeps
   * nothing) when `root` is not in the window. Idempotent.
   *
   * @example
   * const root = await db.commit(changes);
   * await db.retainCheckpoint(root); // range proofs at `root` outlive the 300-commit window
   */
  retainCheckpoint(root: Uint8Array): Promise<boolean> {
    return this.lock.write(async () => {
      if (this.checkpointsKept === 0 || this.indexOf(root) < 0) return false;
      if (this.pinned.some((r) => equalBytes(r, root))) return true;
      this.pinned = this.pinned.concat([root.slice()]).slice(-this.checkpointsKept);
      await this.trie.store.write([this.checkpointsOp()]);
      return true;
    });
  }

  /**
   * Whether `root` is a retained checkpoint root: range proofs at it stay servable beyond the
   * window (until `checkpointsKept` newer checkpoints are named), so an answer at it may be
   * cached as long as the node serves it.
   */
  isCheckpoint(root: Uint8Array): boolean {
    return this.pinned.some((r) => equalBytes(r, root));
  }

  /** The retained checkpoint roots, oldest first. */
  checkpoints(): Uint8Array[] {
    return this.pinned.map((r) => r.slice());
  }

  private checkpointsOp(): BatchOp {
    if (this.pinned.length === 0) return { type: 'del', key: CHECKPOINTS_KEY };
    const value = new Uint8Array(32 * this.pinned.length);
    this.pinned.forEach((r, i) => value.set(r, 32 * i));
    return { type: 'put', key: CHECKPOINTS_KEY, value };
  }

  /**
   * How many of the oldest revisions to drop once one more is added: those past the window,
   * except back to the oldest retained checkpoint (within `maxCheckpointRevisions`); unpins the
   * checkpoints that fall out.
   */
  private pruneCount(): { drop: number; unpinned: boolean } {
    const size = this.revisions.length + 1;
    const windowDrop = Math.max(0, size - (this.historySize + 1));
    let unpinned = false;
    for (;;) {
      if (this.pinned.length === 0) return { drop: windowDrop, unpinned };
      const keepFrom = this.indexOf(this.pinned[0]);
      const drop = Math.min(windowDrop, keepFrom);
      if (windowDrop - drop <= this.maxCheckpointRevisions) return { drop, unpinned };
      this.onCheckpointDropped?.(this.pinned[0]);
      this.pinned = this.pinned.slice(1);
      unpinned = true;
    }
  }

  private indexOf(root: Uint8Array): number {
    for (let i = this.revisions.length - 1; i >= 0; i--) if (equalBytes(this.revisions[i].root, root)) return i;
    return -1;
  }

  /**
   * Commits puts and deletes atomically (with `extra` store ops, if given) and returns the
   * new root. Changes are applied in order; a later change to the same key wins. `extra` may be
   * a function of the new root and sequence number (a signed delta carries the root it commits
   * to, and is written in the same batch): it runs once the root is known, before the write.
   */
  commit(changes: KeyChange[], extra: BatchOp[] | ((root: Uint8Array, seq: number) => BatchOp[]) = []): Promise<Uint8Array> {
    return this.lock.write(() => this.commitLocked(changes, extra));
  }

  private async commitLocked(changes: KeyChange[], extra: BatchOp[] | ((root: Uint8Array, seq: number) => BatchOp[])): Promise<Uint8Array> {
    const view = this.trie.view();
    const effective = new Map<string, ValueChange>();
    // The values before the commit, read in parallel (awaited one key at a time, they are most of a commit's cost).
    const befores = await view.getMany(changes.map((c) => c.key));
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i];
      const id = toHex(c.key);
      const prev = effective.get(id);
      const before = prev ? prev.before : befores[i];
      effective.set(id, { key: c.key, before, after: c.value });
      if (c.value === undefined) await view.delete(c.key);
      else await view.put(c.key, c.value);
    }
    const list = [...effective.values()].filter((c) => !sameValue(c.before, c.after)).sort((a, b) => compareBytes(a.key, b.key));
    const seq = this.seq + 1;
    const rev: Revision = { seq, root: view.root, changes: list };
    const ops: BatchOp[] = [{ type: 'put', key: histKey(seq), value: encodeRevision(rev) }];
    const { drop, unpinned } = this.pruneCount();
    for (let i = 0; i < drop; i++) ops.push({ type: 'del', key: histKey(this.revisions[i].seq) });
    if (unpinned) ops.push(this.checkpointsOp());
    const more = typeof extra === 'function' ? extra(rev.root, seq) : extra;
    const root = await this.trie.commitView(view, ops.concat(more));
    this.revisions = this.revisions.slice(Math.max(0, drop)).concat(rev);
    this.seq = seq;
    return root;
  }

  /** Replaces the whole state by sorted key-values; only for an empty database. */
  bulkLoad(sorted: KeyValue[]): Promise<Uint8Array> {
    return this.lock.write(() => this.bulkLoadLocked(sorted));
  }

  private async bulkLoadLocked(sorted: KeyValue[]): Promise<Uint8Array> {
    const root = await this.trie.bulkLoad(sorted);
    const seq = this.seq + 1;
    const rev: Revision = { seq, root, changes: [] };
    // History before a bulk load cannot produce change proofs across it.
    const ops: BatchOp[] = this.revisions.map((r) => ({ type: 'del', key: histKey(r.seq) }));
    ops.push({ type: 'del', key: CHECKPOINTS_KEY });
    await this.trie.store.write([...ops, { type: 'put', key: histKey(seq), value: encodeRevision(rev) }]);
    this.revisions = [rev];
    this.pinned = [];
    this.seq = seq;
    return root;
  }

  /**
   * The value changes from `from` to `to` (both in the window), sorted by key, within
   * [start, end], at most `limit`. Undefined if either root is outside the window.
   */
  changesBetween(from: Uint8Array, to: Uint8Array, start?: Uint8Array, end?: Uint8Array, limit = Infinity): KeyChange[] | undefined {
    const i = this.indexOf(from);
    const j = this.indexOf(to);
    if (i < 0 || j < 0) return undefined;
    const merged = new Map<string, ValueChange>();
    const forward = i <= j;
    const lo = Math.min(i, j);
    const hi = Math.max(i, j);
    for (let r = lo + 1; r <= hi; r++) {
      const rev = this.revisions[forward ? r : hi + lo + 1 - r];
      for (const c of rev.changes) {
        if (!inKeyRange(c.key, start, end)) continue;
        const id = toHex(c.key);
        const before = forward ? c.before : c.after;
        const after = forward ? c.after : c.before;
        const prev = merged.get(id);
        merged.set(id, { key: c.key, before: prev ? prev.before : before, after });
      }
    }
    const out: KeyChange[] = [];
    const sorted = [...merged.values()].filter((c) => !sameValue(c.before, c.after)).sort((a, b) => compareBytes(a.key, b.key));
    for (const c of sorted) {
      if (out.length >= limit) break;
      out.push({ key: c.key, value: c.after });
    }
    return out;
  }

  /** A read-only view of the state at `root` (a root in the window). */
  async viewAt(root: Uint8Array): Promise<TrieView> {
    const view = this.trie.view();
    if (equalBytes(root, this.trie.root)) return view;
    const back = this.changesBetween(this.trie.root, root);
    if (!back) throw new E.RootNotFound(`root ${toHex(root)} is not in the history window`, { root: toHex(root) });
    await view.apply(back);
    if (!equalBytes(view.root, root)) throw new Error('history does not reproduce the requested root');
    return view;
  }

  /**
   * Runs `fn` with commits held off: a consistent read of the state and history across awaits
   * (the proof methods use it; callers building several reads on one root can too).
   */
  reading<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.read(fn);
  }

  /** Range proof at `root` (docs/proofs.md#verification). */
  rangeProof(root: Uint8Array, o: ProofLimits): Promise<RangeProof> {
    if (equalBytes(root, EMPTY_ROOT)) throw new E.InvalidRequest('the empty root has no range proofs');
    return this.lock.read(async () => rangeProof(await this.viewAt(root), o.start, o.end, o.keyLimit));
  }

  /**
   * Change proof from `from` to `to`; when `from` is outside the window but `to` is in it, a
   * range proof at `to` (docs/proofs.md#serving).
   */
  changeProof(
    from: Uint8Array,
    to: Uint8Array,
    o: ProofLimits,
  ): Promise<
    | {
        /** A change proof from `from`. */
        type: 'change';
        /** The proof. */
        proof: ChangeProof;
      }
    | {
        /** `from` is outside the window: a range proof at `to` instead. */
        type: 'range';
        /** The proof. */
        proof: RangeProof;
      }
  > {
    return this.lock.read(() => this.changeProofLocked(from, to, o));
  }

  private async changeProofLocked(from: Uint8Array, to: Uint8Array, o: ProofLimits): Promise<{ type: 'change'; proof: ChangeProof } | { type: 'range'; proof: RangeProof }> {
    if (!this.hasRoot(to)) throw new E.RootNotFound(`end root ${toHex(to)} is not in the history window`, { root: toHex(to) });
    const changes = this.changesBetween(from, to, o.start, o.end, o.keyLimit);
    if (!changes) return { type: 'range', proof: await rangeProof(await this.viewAt(to), o.start, o.end, o.keyLimit) };
    return { type: 'change', proof: await changeProof(await this.viewAt(to), changes, o.start, o.end) };
  }
}

function sameValue(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && equalBytes(a, b);
}
