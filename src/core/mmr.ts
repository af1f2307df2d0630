/**
 * The Merkle Mountain Range that authenticates the operation log (docs/mmr.md).
 *
 * Hashing is commonware's generic MMR (`commonware-storage`): post-order positions, leaf and
 * node digests prefixed with their u64 big-endian position, peaks folded forward and the root
 * committing to the leaf count. Our roots equal theirs for the same elements (the vectors of
 * docs/mmr.md#hashing are checked in `mmr.test.ts`).
 *
 * Everything here is pure and in memory: an {@link Mmr} that can start from the pinned nodes of
 * a pruned prefix, an {@link MmrFrontier} (its peaks only: what a syncing client needs), range
 * proofs over contiguous leaves, and their verification, which also yields the peaks at both
 * ends of the range, so a client never hashes an operation twice (measured cost of a 251-byte
 * operation: 5 SHA-256 blocks for its leaf, ~2 for its share of the parents).
 *
 * One file: the `Mmr`, the `MmrFrontier`, range proofs and their verification share the
 * position arithmetic and the hashing of docs/mmr.md, and a proof is made and checked by the
 * same walk over the peaks (`walkPeaks`).
 */
import { sha256 } from './sha256.ts';
import { equalBytes } from './bytes.ts';
import { ProofError, reasonError } from './errors.ts';

/** A 32-byte SHA-256 digest. */
export type Digest = Uint8Array;

/** Why an MMR proof (or a set of pinned nodes) was rejected. */
export const INVALID_MMR_PROOF_REASONS = [
  'EmptyRange',
  'RangeOutOfBounds',
  'InvalidLeafCount',
  'InvalidDigestLength',
  'MissingDigest',
  'ExtraDigest',
  'RootMismatch',
  'PinnedCountMismatch',
  'PinnedNodeMismatch',
] as const;
export type InvalidMmrProofReason = (typeof INVALID_MMR_PROOF_REASONS)[number];

/**
 * An MMR proof or pinned-node set failed verification; `reason` says which rule it broke
 * (docs/mmr.md, verification and pinned nodes).
 *
 * @example
 * try {
 *   verifyMmrRangeProof(root, leafCount, start, ops, proof);
 * } catch (err) {
 *   if (err instanceof InvalidMmrProof && err.reason === 'RootMismatch') banPeer(peer);
 * }
 */
export const InvalidMmrProof = reasonError(ProofError, 'InvalidMmrProof', 'invalid MMR proof', INVALID_MMR_PROOF_REASONS);
export type InvalidMmrProof = InstanceType<typeof InvalidMmrProof>;

/**
 * A range proof: the digests of the maximal subtrees that hold no leaf of the range, in
 * left-to-right order of the leaves they cover. Concretely, walking the peaks left to right,
 * a peak with no leaf in the range contributes its own digest; a peak that holds some leaf of
 * the range is descended (left child before right child) and every child subtree disjoint from
 * the range contributes its digest. The leaf count is not part of the proof: the verifier
 * supplies it, and it is bound by the root.
 *
 * A consequence used for pinned nodes: for a range starting at `lower`, the first
 * `popcount(lower)` digests are exactly the peaks of the MMR over leaves `[0, lower)`.
 */
export interface MmrRangeProof {
  digests: Digest[];
}

/** A peak of an MMR: its position, height and the leaves `[leafStart, leafStart + 2^height)`. */
export interface MmrPeak {
  pos: number;
  height: number;
  leafStart: number;
}

// ---------------------------------------------------------------------------------------------
// Positions (docs/mmr.md#positions). Positions stay below 2^53, so plain numbers are exact.

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`expected ${what} to be a non-negative safe integer, got ${n}`);
}

/** Number of set bits of a non-negative safe integer. */
export function popcount(n: number): number {
  let c = 0;
  let hi = Math.floor(n / 2 ** 32);
  let lo = n >>> 0;
  while (lo) {
    lo &= lo - 1;
    c++;
  }
  while (hi) {
    hi &= hi - 1;
    c++;
  }
  return c;
}

/** Position of leaf `i`: `2*i - popcount(i)`. */
export function leafPosition(i: number): number {
  checkCount(i, 'leaf index');
  return 2 * i - popcount(i);
}

/** Number of nodes of an MMR with `n` leaves: `2*n - popcount(n)`. */
export function mmrSize(leafCount: number): number {
  checkCount(leafCount, 'leaf count');
  return 2 * leafCount - popcount(leafCount);
}

/** The peaks of an MMR with `leafCount` leaves, left (tallest) to right. */
export function peaksOf(leafCount: number): MmrPeak[] {
  checkCount(leafCount, 'leaf count');
  const peaks: MmrPeak[] = [];
  let offset = 0; // nodes before the current perfect tree
  let leafStart = 0;
  for (let h = 53; h >= 0; h--) {
    const leaves = 2 ** h;
    if (Math.floor(leafCount / leaves) % 2 === 1) {
      const nodes = 2 * leaves - 1;
      peaks.push({ pos: offset + nodes - 1, height: h, leafStart });
      offset += nodes;
      leafStart += leaves;
    }
  }
  return peaks;
}

// ---------------------------------------------------------------------------------------------
// Hashing (docs/mmr.md#hashing). The preimages are built in one reused buffer (sha256 is synchronous
// and keeps nothing): hashing allocates only the digest.

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, n);
  return out;
}

function writeU64(out: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / 2 ** 32);
  const lo = n >>> 0;
  out[at] = hi >>> 24;
  out[at + 1] = hi >>> 16;
  out[at + 2] = hi >>> 8;
  out[at + 3] = hi;
  out[at + 4] = lo >>> 24;
  out[at + 5] = lo >>> 16;
  out[at + 6] = lo >>> 8;
  out[at + 7] = lo;
}

let scratch = new Uint8Array(1024);

/** `SHA-256(u64be(pos) || element)`. */
export function hashLeaf(pos: number, element: Uint8Array): Digest {
  const n = 8 + element.length;
  if (scratch.length < n) scratch = new Uint8Array(2 * n);
  writeU64(scratch, 0, pos);
  scratch.set(element, 8);
  return sha256(scratch.subarray(0, n));
}

/** `SHA-256(u64be(pos) || left || right)`. */
export function hashNode(pos: number, left: Digest, right: Digest): Digest {
  writeU64(scratch, 0, pos);
  scratch.set(left, 8);
  scratch.set(right, 40);
  return sha256(scratch.subarray(0, 72));
}

/** The root over `leafCount` leaves from its peaks, left to right (forward folding). */
export function rootFromPeaks(leafCount: number, peaks: readonly Digest[]): Digest {
  if (peaks.length === 0) return sha256(u64be(leafCount));
  let fold = peaks[0];
  for (let k = 1; k < peaks.length; k++) {
    scratch.set(fold, 0);
    scratch.set(peaks[k], 32);
    fold = sha256(scratch.subarray(0, 64));
  }
  writeU64(scratch, 0, leafCount);
  scratch.set(fold, 8);
  return sha256(scratch.subarray(0, 40));
}

function checkDigest(d: Uint8Array, what: string): void {
  if (!(d instanceof Uint8Array)) throw new TypeError(`expected ${what} to be a Uint8Array`);
  if (d.length !== 32) throw new RangeError(`expected 32-byte ${what}, got ${d.length}`);
}

// ---------------------------------------------------------------------------------------------
// The in-memory MMR.

/**
 * An append-only in-memory MMR. It may start from the pinned nodes of a pruned prefix
 * ({@link Mmr.fromPinned}); nodes of that prefix other than its peaks are then unknown.
 *
 * @example
 * const mmr = new Mmr();
 * mmr.append(new TextEncoder().encode('op 0'));
 * mmr.root(); // 32-byte root committing to 1 leaf
 */
export class Mmr {
  #leafCount = 0;
  /** Size of the pruned prefix: the position of `#nodes[0]`. */
  #base = 0;
  /** Leaf count of the pruned prefix. */
  #prunedLeaves = 0;
  readonly #nodes: Digest[] = [];
  /** Peaks of the pruned prefix, by position. */
  readonly #pinned = new Map<number, Digest>();

  /**
   * An MMR over `lower` leaves of which only the peaks are known (the pinned nodes, left to
   * right, as returned by {@link pinnedNodes}); appending continues at leaf `lower`.
   *
   * @example
   * const tail = Mmr.fromPinned(full.leafCount, pinnedNodes(full, full.leafCount));
   * tail.root(); // equals full.root()
   */
  static fromPinned(lower: number, pinned: readonly Digest[]): Mmr {
    checkCount(lower, 'lower bound');
    const peaks = peaksOf(lower);
    if (pinned.length !== peaks.length) {
      throw new RangeError(`expected ${peaks.length} pinned nodes for lower bound ${lower}, got ${pinned.length}`);
    }
    pinned.forEach((d, i) => checkDigest(d, `pinned node ${i}`));
    const m = new Mmr();
    m.#leafCount = lower;
    m.#prunedLeaves = lower;
    m.#base = mmrSize(lower);
    peaks.forEach((p, i) => m.#pinned.set(p.pos, pinned[i].slice()));
    return m;
  }

  /** Number of leaves appended (including the pruned prefix). */
  get leafCount(): number {
    return this.#leafCount;
  }

  /** Number of nodes (including the pruned prefix). */
  get size(): number {
    return this.#base + this.#nodes.length;
  }

  /** The leaf count of the pruned prefix this MMR started from (0 if none). */
  get prunedLeaves(): number {
    return this.#prunedLeaves;
  }

  /** The digest stored at `pos`; throws `RangeError` for a position beyond the MMR or pruned. */
  node(pos: number): Digest {
    checkCount(pos, 'position');
    if (pos >= this.size) throw new RangeError(`position ${pos} is beyond the MMR (size ${this.size})`);
    if (pos >= this.#base) return this.#nodes[pos - this.#base];
    const pinned = this.#pinned.get(pos);
    if (pinned === undefined) throw new RangeError(`position ${pos} is pruned`);
    return pinned;
  }

  /** Appends one element as the next leaf; returns the leaf's position. */
  append(element: Uint8Array): number {
    const leafPos = this.size;
    this.appendNodes(this.nodesForAppend(element));
    return leafPos;
  }

  /**
   * The nodes appending `element` adds, in position order (the leaf, then one parent per
   * merge), without adding them: a writer stages an append, then {@link appendNodes} once it
   * is on disk, hashing once.
   */
  nodesForAppend(element: Uint8Array): Digest[] {
    if (!(element instanceof Uint8Array)) throw new TypeError('expected element to be a Uint8Array');
    let pos = this.size;
    const nodes = [hashLeaf(pos, element)];
    // One merge per trailing one bit of i: the new node's left sibling is complete.
    for (let t = this.#leafCount, h = 0; t % 2 === 1; t = (t - 1) / 2, h++) {
      pos++;
      nodes.push(hashNode(pos, this.node(pos - 2 ** (h + 1)), nodes[nodes.length - 1]));
    }
    return nodes;
  }

  /** Adds the nodes {@link nodesForAppend} computed for the next leaf. */
  appendNodes(nodes: readonly Digest[]): void {
    const merges = trailingOnes(this.#leafCount);
    if (nodes.length !== merges + 1) throw new RangeError(`expected ${merges + 1} nodes for leaf ${this.#leafCount}, got ${nodes.length}`);
    nodes.forEach((d, i) => checkDigest(d, `node ${i}`));
    for (const d of nodes) this.#nodes.push(d);
    this.#leafCount++;
  }

  /** The peak digests of the MMR over its first `leafCount` leaves (default: all). */
  peakDigests(leafCount: number = this.#leafCount): Digest[] {
    this.#checkHistorical(leafCount);
    return peaksOf(leafCount).map((p) => this.node(p.pos));
  }

  /** The root over the first `leafCount` leaves (default: all), docs/mmr.md#hashing. */
  root(leafCount: number = this.#leafCount): Digest {
    return rootFromPeaks(leafCount, this.peakDigests(leafCount));
  }

  #checkHistorical(leafCount: number): void {
    checkCount(leafCount, 'leaf count');
    if (leafCount > this.#leafCount) {
      throw new RangeError(`leaf count ${leafCount} is beyond the MMR (${this.#leafCount} leaves)`);
    }
  }
}

function trailingOnes(n: number): number {
  let c = 0;
  for (let t = n; t % 2 === 1; t = (t - 1) / 2) c++;
  return c;
}

// ---------------------------------------------------------------------------------------------
// The frontier: peaks only.

/**
 * The peaks of an MMR, appendable (docs/mmr.md): what a log sync needs to rebuild the
 * root of everything it applied, in constant memory (a million operations: 20 digests, not two
 * million nodes).
 *
 * @example
 * const f = MmrFrontier.fromPeaks(lower, pinned); // pinned nodes at `lower`
 * for (const op of ops) f.append(op);
 * equalBytes(f.root(), target.root);
 */
export class MmrFrontier {
  #leafCount: number;
  /** Left (tallest) to right. */
  #peaks: Digest[];

  private constructor(leafCount: number, peaks: Digest[]) {
    this.#leafCount = leafCount;
    this.#peaks = peaks;
  }

  /** The frontier over `leafCount` leaves whose peaks are `peaks` (the pinned nodes there). */
  static fromPeaks(leafCount: number, peaks: readonly Digest[]): MmrFrontier {
    checkCount(leafCount, 'leaf count');
    const n = popcount(leafCount);
    if (peaks.length !== n) throw new RangeError(`expected ${n} peaks for ${leafCount} leaves, got ${peaks.length}`);
    for (const p of peaks) if (!(p instanceof Uint8Array) || p.length !== 32) throw new RangeError('expected 32-byte peaks');
    return new MmrFrontier(leafCount, peaks.map((p) => p.slice()));
  }

  get leafCount(): number {
    return this.#leafCount;
  }

  peaks(): Digest[] {
    return this.#peaks.slice();
  }

  /** Whether these are the peaks (left to right). */
  hasPeaks(peaks: readonly Digest[]): boolean {
    return peaks.length === this.#peaks.length && peaks.every((d, i) => equalBytes(d, this.#peaks[i]));
  }

  append(element: Uint8Array): void {
    const i = this.#leafCount;
    let pos = leafPosition(i);
    let node = hashLeaf(pos, element);
    // one merge per trailing one bit of i, as in Mmr.append
    for (let t = i; t % 2 === 1; t = (t - 1) / 2) {
      pos++;
      node = hashNode(pos, this.#peaks.pop()!, node);
    }
    this.#peaks.push(node);
    this.#leafCount = i + 1;
  }

  /**
   * Moves to `leafCount` leaves whose peaks a verified range proof gave
   * ({@link MmrRangeWitness.after}), without hashing. Call it only with the `after` of a range
   * whose `before` {@link hasPeaks} matched: then it is exactly what appending the range's
   * elements would give.
   */
  advance(leafCount: number, peaks: readonly Digest[]): void {
    const next = MmrFrontier.fromPeaks(leafCount, peaks);
    if (leafCount < this.#leafCount) throw new RangeError(`cannot move the frontier back from ${this.#leafCount} to ${leafCount}`);
    this.#leafCount = next.#leafCount;
    this.#peaks = next.#peaks;
  }

  root(): Digest {
    return rootFromPeaks(this.#leafCount, this.#peaks);
  }
}

// ---------------------------------------------------------------------------------------------
// Range proofs (docs/mmr.md#range-proofs).

/**
 * What a verified range proof for `[start, end)` establishes besides membership: the peaks of
 * the MMR over `[0, start)` (the first `popcount(start)` digests of the proof) and over
 * `[0, end)` (nodes the verification computed anyway). A client that applied `[0, start)` and
 * holds peaks equal to `before` continues at `after` without hashing the range again.
 */
export interface MmrRangeWitness {
  /** The peaks of the MMR over `[0, start)`, left to right. */
  before: Digest[];
  /** The peaks of the MMR over `[0, end)`, left to right. */
  after: Digest[];
}

/**
 * The subtree walk shared by proving and verifying. `visit` is called for the maximal subtrees
 * disjoint from `[start, end)` in left-to-right order; `leaf` for each leaf of the range.
 */
function walkPeaks(
  leafCount: number,
  start: number,
  end: number,
  disjoint: (pos: number) => Digest,
  leaf: (pos: number, index: number) => Digest,
  seen?: (pos: number, digest: Digest) => void,
): Digest[] {
  const walk = (pos: number, height: number, leafStart: number): Digest => {
    const span = 2 ** height;
    let d: Digest;
    if (leafStart + span <= start || leafStart >= end) d = disjoint(pos);
    else if (height === 0) d = leaf(pos, leafStart);
    else {
      const half = span / 2;
      const left = walk(pos - span, height - 1, leafStart);
      const right = walk(pos - 1, height - 1, leafStart + half);
      d = hashNode(pos, left, right);
    }
    seen?.(pos, d);
    return d;
  };
  return peaksOf(leafCount).map((p) => walk(p.pos, p.height, p.leafStart));
}

/**
 * A proof that leaves `[start, end)` belong to `mmr` at `leafCount` leaves (default: all).
 * A historical leaf count is allowed: positions are stable, so an append-only MMR can prove
 * against any of its earlier roots.
 *
 * @example
 * const proof = mmrRangeProof(mmr, 2, 5);
 * verifyMmrRangeProof(mmr.root(), mmr.leafCount, 2, ops.slice(2, 5), proof);
 */
export function rangeProof(mmr: Mmr, start: number, end: number, leafCount: number = mmr.leafCount): MmrRangeProof {
  checkCount(start, 'start');
  checkCount(end, 'end');
  checkCount(leafCount, 'leaf count');
  if (start >= end) throw new RangeError(`expected a non-empty range, got [${start}, ${end})`);
  if (end > leafCount) throw new RangeError(`range end ${end} is beyond the leaf count ${leafCount}`);
  if (leafCount > mmr.leafCount) throw new RangeError(`leaf count ${leafCount} is beyond the MMR (${mmr.leafCount} leaves)`);
  const digests: Digest[] = [];
  walkPeaks(
    leafCount,
    start,
    end,
    (pos) => {
      const d = mmr.node(pos);
      digests.push(d);
      return d;
    },
    (pos) => mmr.node(pos),
  );
  return { digests };
}

/**
 * Checks that `elements` are leaves `start..start+elements.length-1` of the MMR with `root`
 * and `leafCount` leaves. Throws {@link InvalidMmrProof} otherwise: an empty range, a range
 * past `leafCount`, a digest that is not 32 bytes, a missing or unused digest, or a root that
 * does not match (which also catches a wrong `leafCount`, since the root commits to it).
 * Each element is hashed once. Returns the peaks at both ends of the range
 * ({@link MmrRangeWitness}), which the root binds once it matched; `onNode` sees every node
 * digest the verification computed or read from the proof, by position (a node that keeps
 * the whole MMR takes the range's new nodes from there instead of hashing again).
 *
 * @example
 * verifyMmrRangeProof(root, 11, 3, [op3, op4], proof); // throws InvalidMmrProof if not
 */
export function verifyRangeProof(
  root: Digest,
  leafCount: number,
  start: number,
  elements: readonly Uint8Array[],
  proof: MmrRangeProof,
  onNode?: (pos: number, digest: Digest) => void,
): MmrRangeWitness {
  checkDigest(root, 'root');
  if (!Number.isSafeInteger(leafCount) || leafCount < 0) {
    throw new InvalidMmrProof('InvalidLeafCount', `leaf count ${leafCount} is not a non-negative integer`);
  }
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new InvalidMmrProof('RangeOutOfBounds', `start ${start} is not a non-negative integer`);
  }
  if (elements.length === 0) throw new InvalidMmrProof('EmptyRange', 'a range proof must prove at least one element');
  const end = start + elements.length;
  if (end > leafCount) {
    throw new InvalidMmrProof('RangeOutOfBounds', `range [${start}, ${end}) is beyond the leaf count ${leafCount}`, {
      start,
      end,
      leafCount,
    });
  }
  const digests = proof?.digests;
  if (!Array.isArray(digests)) throw new InvalidMmrProof('MissingDigest', 'proof has no digest list');
  let next = 0;
  // the peaks over [0, end): nodes the walk visits (a peak before `start` is a disjoint subtree
  // whose parent holds `start`; one that holds a leaf of the range is computed)
  const endPeaks = peaksOf(end);
  const after: (Digest | undefined)[] = new Array(endPeaks.length);
  let k = 0;
  const peaks = walkPeaks(
    leafCount,
    start,
    end,
    () => {
      if (next >= digests.length) throw new InvalidMmrProof('MissingDigest', `proof has ${digests.length} digests, needs more`);
      const d = digests[next];
      if (!(d instanceof Uint8Array) || d.length !== 32) {
        throw new InvalidMmrProof('InvalidDigestLength', `digest ${next} is not 32 bytes`);
      }
      next++;
      return d;
    },
    (pos, index) => {
      const e = elements[index - start];
      if (!(e instanceof Uint8Array)) throw new TypeError(`expected element ${index - start} to be a Uint8Array`);
      return hashLeaf(pos, e);
    },
    (pos, d) => {
      // visited in post-order, so the peaks over [0, end) come left to right
      if (k < endPeaks.length && endPeaks[k].pos === pos) after[k++] = d;
      onNode?.(pos, d);
    },
  );
  if (next !== digests.length) {
    throw new InvalidMmrProof('ExtraDigest', `proof has ${digests.length} digests, only ${next} are used`);
  }
  if (!equalBytes(rootFromPeaks(leafCount, peaks), root)) {
    throw new InvalidMmrProof('RootMismatch', 'the rebuilt root does not match', { leafCount, start, end });
  }
  if (k !== endPeaks.length) throw new Error(`internal: the walk met ${k} of the ${endPeaks.length} peaks at ${end}`);
  return { before: digests.slice(0, popcount(start)), after: after as Digest[] };
}

// ---------------------------------------------------------------------------------------------
// Pinned nodes (docs/mmr.md#pinned-nodes).

/**
 * The pinned nodes at `lower`: the peaks of the MMR over leaves `[0, lower)`, left to right.
 * With them, {@link Mmr.fromPinned} continues the MMR from leaf `lower`.
 *
 * @example
 * const pinned = pinnedNodes(mmr, 1024);
 * const tail = Mmr.fromPinned(1024, pinned); // appends from leaf 1024 on
 */
export function pinnedNodes(mmr: Mmr, lower: number): Digest[] {
  return mmr.peakDigests(lower);
}

/**
 * Verifies a batch starting at `lower` together with the pinned nodes at `lower`: the range
 * proof must verify against `root`, and the pinned nodes must equal its first
 * `popcount(lower)` digests (the peaks over `[0, lower)` that the proof already binds to the
 * root). Throws {@link InvalidMmrProof}.
 *
 * @example
 * verifyPinnedNodes(target.root, target.upper, target.lower, ops, proof, pinned);
 * const mmr = Mmr.fromPinned(target.lower, pinned);
 */
export function verifyPinnedNodes(
  root: Digest,
  leafCount: number,
  lower: number,
  elements: readonly Uint8Array[],
  proof: MmrRangeProof,
  pinned: readonly Digest[],
): MmrRangeWitness {
  const witness = verifyRangeProof(root, leafCount, lower, elements, proof);
  const count = popcount(lower);
  if (!Array.isArray(pinned) || pinned.length !== count) {
    throw new InvalidMmrProof('PinnedCountMismatch', `expected ${count} pinned nodes at ${lower}, got ${pinned?.length}`);
  }
  for (let i = 0; i < count; i++) {
    if (!equalBytes(pinned[i], proof.digests[i])) {
      throw new InvalidMmrProof('PinnedNodeMismatch', `pinned node ${i} at ${lower} is not bound by the root`);
    }
  }
  return witness;
}

/**
 * The root after each prefix of `elements`: entry `k` is the root over the first `k` elements,
 * so the result has `elements.length + 1` entries (entry 0 is the empty root).
 *
 * @example
 * mmrRoots([a, b])[2]; // the root over a, b
 */
export function mmrRoots(elements: Iterable<Uint8Array>): Digest[] {
  const mmr = new Mmr();
  const roots = [mmr.root()];
  for (const e of elements) {
    mmr.append(e);
    roots.push(mmr.root());
  }
  return roots;
}
