/**
 * Range, change and single-key proofs: generation over a `TrieView` and verification exactly
 * as docs/proofs.md#verification, in that order, with one error class per rule.
 *
 * Verification rebuilds the partial trie the proof describes with the one-pass builder: the
 * in-range key-values (local state + changes) as values, and from every proof node its value
 * digest (outside the range) and its children that lie wholly outside the range, as opaque ids.
 * If the recomputed root equals the expected one, the in-range state is exactly the prover's.
 *
 * One file: the three proof kinds are made and verified here as docs/proofs.md describes them,
 * and their verifications share the shape checks and the final rebuild (`checkShape`,
 * `checkPath`, `finish`).
 */
import { compareBytes, equalBytes, inKeyRange, toHex } from './bytes.ts';
import { buildRoot, childPath, compareItems, type BuildItem, type BuiltNode, MalformedItems } from './builder.ts';
import * as E from './errors.ts';
import { valueDigest } from './hash.ts';
import { hasPrefix, isWholeByte, keyToPath, packPath } from './path.ts';
import { encodeBuilt, type TrieNode } from './node-record.ts';
import type { ProvenSubtrees, TrieView } from './trie-view.ts';
import type { ChangeProof, KeyChange, KeyValue, Path, ProofNode, RangeProof } from './types.ts';

const lt = (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) < 0;

// ---------------------------------------------------------------------------------------------
// Generation

/** Leading nodes that the start proof shares with the end proof are left out (docs/proofs.md#verification). */
function trimStartProof(startProof: ProofNode[], endProof: ProofNode[]): ProofNode[] {
  let i = 0;
  while (i < startProof.length && i < endProof.length && equalBytes(startProof[i].key, endProof[i].key)) i++;
  return startProof.slice(i);
}

/**
 * A range proof of the first `keyLimit` key-values of `view` with `start <= key <= end`.
 *
 * @example
 * const proof = await rangeProof(trie.view(), undefined, undefined, 2048);
 * verifyRangeProof(proof, { root: trie.root, keyLimit: 2048 });
 */
export async function rangeProof(view: TrieView, start: Uint8Array | undefined, end: Uint8Array | undefined, keyLimit: number): Promise<RangeProof> {
  const keyValues = await view.range(start, end, keyLimit);
  const endKey = keyValues.length ? keyValues[keyValues.length - 1].key : end;
  const endProof = endKey ? await view.proofPath(keyToPath(endKey)) : [];
  const startProof = start ? trimStartProof(await view.proofPath(keyToPath(start)), endProof) : [];
  return { startProof, endProof, keyValues };
}

/**
 * A change proof: `keyChanges` are the (sorted, in-range, already truncated) differences
 * between the older root and the root of `view`; the proofs are taken in `view` (docs/proofs.md#verification).
 *
 * @example
 * const changes = db.changesBetween(oldRoot, db.root, start, end, 1024)!;
 * const proof = await changeProof(await db.viewAt(db.root), changes, start, end);
 */
export async function changeProof(view: TrieView, keyChanges: KeyChange[], start: Uint8Array | undefined, end: Uint8Array | undefined): Promise<ChangeProof> {
  const endKey = keyChanges.length ? keyChanges[keyChanges.length - 1].key : end;
  const endProof = endKey ? await view.proofPath(keyToPath(endKey)) : [];
  const startProof = start ? trimStartProof(await view.proofPath(keyToPath(start)), endProof) : [];
  return { startProof, endProof, keyChanges };
}

/**
 * Proof of one key's value or absence: the path of nodes from the root toward it, with the
 * value (undefined when the key is absent).
 *
 * @example
 * const { value, proof } = await keyProof(trie.view(), key);
 * verifyKeyProof(trie.root, key, value, proof);
 */
export async function keyProof(
  view: TrieView,
  key: Uint8Array,
): Promise<{
  /** The key's value; undefined when absent. */
  value: Uint8Array | undefined;
  /** The nodes from the root toward the key. */
  proof: ProofNode[];
}> {
  return { value: await view.get(key), proof: await view.proofPath(keyToPath(key)) };
}

// ---------------------------------------------------------------------------------------------
// Verification

export interface VerifyRangeOptions {
  /** The root the proof must rebuild. */
  root: Uint8Array;
  start?: Uint8Array | undefined;
  end?: Uint8Array | undefined;
  keyLimit: number;
}

/** Local key-values (the state at the older root) with `start <= key <= end`, sorted. */
export type LocalRange = (start: Uint8Array | undefined, end: Uint8Array | undefined) => Promise<KeyValue[]> | KeyValue[];

/**
 * Throws the `ProofError` of the first rule `proof` breaks; returns when it proves its range.
 * With `capture`, returns the proven subtrees, ready for `TrieView.graft` (no hashing again).
 *
 * @example
 * const proof = decodeRangeProof(bytes);
 * verifyRangeProof(proof, { root: announcement.root, start, end, keyLimit: 2048 }); // throws a ProofError if not
 */
export function verifyRangeProof(proof: RangeProof, o: VerifyRangeOptions): void;
export function verifyRangeProof(proof: RangeProof, o: VerifyRangeOptions, capture: true): ProvenSubtrees;
export function verifyRangeProof(proof: RangeProof, o: VerifyRangeOptions, capture?: boolean): ProvenSubtrees | void {
  const changes = proof.keyValues;
  checkShape(proof.startProof, proof.endProof, changes, o);
  const endKey = changes.length ? changes[changes.length - 1].key : o.end;
  const inRange: BuildItem[] = [];
  // The raw value rides along only when the caller wants the proven subtrees (one item shape
  // per call keeps the builder's property accesses monomorphic).
  if (capture) for (const kv of changes) inRange.push({ key: kv.key, tokens: kv.key.length * 2, digest: valueDigest(kv.value), value: kv.value });
  else for (const kv of changes) inRange.push({ key: kv.key, tokens: kv.key.length * 2, digest: valueDigest(kv.value) });
  const lookup = (key: Uint8Array) => find(changes, key)?.value;
  if (!capture) return finish(proof.startProof, proof.endProof, inRange, lookup, o, endKey);
  const out: ProvenSubtrees = { nodes: [], roots: [], loose: [], values: changes };
  let top: BuiltNode | undefined;
  // Leaves are not reported (but a root that is one): `values` holds them.
  finish(proof.startProof, proof.endProof, inRange, lookup, o, endKey, (n) => {
    top = n;
    if (n.pure) {
      // encoded now: the builder's objects die young instead of waiting for the commit
      if (n.children.length) out.nodes.push({ path: n.path, raw: encodeBuilt(n) });
    } else {
      for (const c of n.children) if (c?.pure) out.roots.push({ path: childPath(c), id: c.id, leaf: c.leaf });
      if (n.value !== undefined) out.loose.push({ key: packPath(n.path), value: n.value });
    }
  });
  if (top?.pure) out.roots.push({ path: top.path, id: top.id, leaf: top.children.length === 0 });
  return out;
}

/**
 * As `verifyRangeProof`, for a change proof against the local state at the older root: either
 * `local`, its key-values in a range, or `localTrie`, a view of the local trie. With the trie,
 * unchanged local subtrees wholly inside the range enter the rebuild as their ids, so the cost
 * follows the number of changes, not the number of local keys the range spans.
 *
 * With `applyTo`, a view of the local trie, the changes are applied to that view first and its
 * new state is what is checked: the rebuild takes the view's subtrees wholly inside the range
 * as their ids (hashed once, by the view, as its commit needs them anyway) and hashes only the
 * nodes on the paths to the range's bounds. A caller that commits the changes saves the
 * rebuild of every changed path (measured on a 10,000-change catch-up of a 1M-key LevelDB trie:
 * about half of the hashing, and a quarter of the client's CPU time with the walk it
 * replaces). The shape checks run before anything is applied; if a later check fails, the view
 * holds unverified changes and must be dropped.
 *
 * @example
 * const view = local.view(); // the local trie at the older root
 * await verifyChangeProof(proof, { root: newRoot, start, end, keyLimit: 1024, applyTo: view });
 * await local.commitView(view); // only once it verified
 */
export async function verifyChangeProof(
  proof: ChangeProof,
  o: VerifyRangeOptions & ({ local: LocalRange } | { localTrie: TrieView } | { applyTo: TrieView }),
): Promise<void> {
  const changes = proof.keyChanges;
  checkShape(proof.startProof, proof.endProof, changes, o);
  const endKey = changes.length ? changes[changes.length - 1].key : o.end;
  if ('localTrie' in o) return verifyAgainstTrie(proof, o, o.localTrie, endKey);
  if ('applyTo' in o) return verifyApplied(proof, o, o.applyTo, endKey);
  const local = await o.local(o.start, endKey);
  // Merge local state and changes (both sorted) into the in-range state.
  const merged: KeyValue[] = [];
  let i = 0;
  for (const c of changes) {
    while (i < local.length && lt(local[i].key, c.key)) merged.push(local[i++]);
    if (i < local.length && equalBytes(local[i].key, c.key)) i++;
    if (c.value !== undefined) merged.push({ key: c.key, value: c.value });
  }
  while (i < local.length) merged.push(local[i++]);
  const inRange: BuildItem[] = merged.map((kv) => ({ key: kv.key, tokens: kv.key.length * 2, digest: valueDigest(kv.value) }));
  const lookup = (key: Uint8Array) => {
    const c = find(changes, key);
    return c ? c.value : find(local, key)?.value;
  };
  finish(proof.startProof, proof.endProof, inRange, lookup, o, endKey);
}

async function verifyAgainstTrie(proof: ChangeProof, o: VerifyRangeOptions, view: TrieView, endKey: Uint8Array | undefined): Promise<void> {
  const changes = proof.keyChanges;
  const startPath = o.start ? keyToPath(o.start) : undefined;
  const endPath = endKey ? keyToPath(endKey) : undefined;
  const inside = (p: Path) => inKeyRange(p, startPath, endPath);
  // Step 5 needs the local values of in-range proof nodes: fetch them now, the check is synchronous.
  const localValues = new Map<string, Uint8Array | undefined>();
  for (const n of [...proof.startProof, ...proof.endProof]) {
    if (isWholeByte(n.key) && inside(n.key)) localValues.set(toHex(n.key), await view.get(packWhole(n.key)));
  }
  const changePaths = changes.map((c) => keyToPath(c.key));
  // The walk below reads the local nodes on every changed path, one level after another: read
  // them first in parallel waves (measured: ~500 changes into a 1M-key LevelDB trie awaited
  // ~2,000 sequential reads, most of a catch-up's time). Applying the changes then finds them.
  await view.prefetch(changes.map((c) => c.key));
  // Both lists are in path order (the local walk is depth-first): merge them, no sort.
  const local = await localItems(view, changePaths, startPath, endPath);
  const items: BuildItem[] = [];
  let li = 0;
  for (const c of changes) {
    if (c.value === undefined) continue;
    const item: BuildItem = { key: c.key, tokens: c.key.length * 2, digest: valueDigest(c.value) };
    while (li < local.length && compareItems(local[li], item) < 0) items.push(local[li++]);
    items.push(item);
  }
  while (li < local.length) items.push(local[li++]);
  const lookup = (key: Uint8Array) => {
    const c = find(changes, key);
    return c ? c.value : localValues.get(toHex(keyToPath(key)));
  };
  finish(proof.startProof, proof.endProof, items, lookup, o, endKey);
}

/**
 * Applies the changes to `view`, then rebuilds the root from the view's new in-range state
 * (its subtrees wholly inside [start, endKey] as ids, the values on the bounds' paths) and the
 * proof's nodes outside the range. The remote in-range state is the old local one plus the
 * changes exactly when this root is the expected one, as in `verifyAgainstTrie`; only the
 * in-range ids now come from the view's hashing of the new state rather than the old.
 */
async function verifyApplied(proof: ChangeProof, o: VerifyRangeOptions, view: TrieView, endKey: Uint8Array | undefined): Promise<void> {
  await view.apply(proof.keyChanges);
  void view.root; // rehash: the ids `localItems` reads are the new state's
  const startPath = o.start ? keyToPath(o.start) : undefined;
  const endPath = endKey ? keyToPath(endKey) : undefined;
  const inside = (p: Path) => inKeyRange(p, startPath, endPath);
  // Step 5 compares in-range proof nodes' values with the new local ones (a change's value, or
  // the unchanged local value): read them now (in one store call), the check is synchronous.
  const paths = [...proof.startProof, ...proof.endProof].map((n) => n.key).filter((k) => isWholeByte(k) && inside(k));
  const values = await view.getMany(paths.map(packWhole));
  const localValues = new Map<string, Uint8Array | undefined>(paths.map((k, i) => [toHex(k), values[i]]));
  const items = await localItems(view, [], startPath, endPath);
  finish(proof.startProof, proof.endProof, items, (key) => localValues.get(toHex(keyToPath(key))), o, endKey);
}

/**
 * The local trie's contribution to the rebuild of [start, end]: values of in-range nodes that no
 * change touches, and the ids of unchanged subtrees wholly inside the range. A subtree hanging
 * under the entry prefix E holds the same keys locally and remotely when E is wholly inside the
 * range (remote in-range state = local + changes) and no change has prefix E.
 */
async function localItems(view: TrieView, changes: Path[], start: Path | undefined, end: Path | undefined): Promise<BuildItem[]> {
  const out: BuildItem[] = [];
  const rootPath = view.rootNodePath;
  if (!rootPath) return out;
  const inside = (p: Path) => inKeyRange(p, start, end);
  const leftOf = (e: Path) => !!start && compareBytes(e, start) < 0 && !hasPrefix(start, e);
  const rightOf = (e: Path) => !!end && compareBytes(e, end) > 0;
  const whollyInside = (e: Path) => (!start || compareBytes(e, start) >= 0) && (!end || (compareBytes(e, end) < 0 && !hasPrefix(end, e)));
  const lowerBound = (p: Path, lo: number, hi: number) => {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(changes[mid], p) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // Of `changes[lo..hi)`, those under `node` have its path as a prefix, so a child's are the
  // run with its index next: one pass per node, no searches. `inner`: the node's whole
  // subtree is inside the range, so no child needs a bounds check (most nodes: only those on
  // the paths to the bounds are not).
  const visit = async (node: TrieNode, lo: number, hi: number, inner: boolean): Promise<void> => {
    const d = node.path.length;
    // under the parent's index but off this node's compressed path: they touch nothing here
    while (lo < hi && !hasPrefix(changes[lo], node.path)) lo++;
    let stop = lo;
    while (stop < hi && hasPrefix(changes[stop], node.path)) stop++;
    hi = stop;
    let p = lo;
    let touched = false;
    while (p < hi && changes[p].length === d) {
      touched = true;
      p++;
    }
    if (node.digest !== undefined && isWholeByte(node.path) && !touched && (inner || inside(node.path))) {
      out.push({ key: packWhole(node.path), tokens: d, digest: node.digest });
    }
    for (let i = 0; i < 16; i++) {
      const clo = p;
      while (p < hi && changes[p][d] === i) p++;
      const c = node.children[i];
      if (!c) continue;
      let childInner = inner;
      if (!inner) {
        const e = new Uint8Array(d + 1);
        e.set(node.path);
        e[d] = i;
        if (leftOf(e) || rightOf(e)) continue;
        childInner = whollyInside(e);
      }
      if (clo === p && childInner) {
        out.push({ key: packPath(c.path), tokens: c.path.length, id: c.id });
        continue;
      }
      const child = await view.getNode(c.path);
      if (!child) throw new Error('local trie node missing');
      await visit(child, clo, p, childInner);
    }
  };
  const root = await view.getNode(rootPath);
  if (!root) throw new Error('local trie root missing');
  // Changes outside the root's prefix cannot touch its subtree.
  const lo = lowerBound(rootPath, 0, changes.length);
  let hi = lo;
  while (hi < changes.length && hasPrefix(changes[hi], rootPath)) hi++;
  if (!(leftOf(rootPath) || rightOf(rootPath))) await visit(root, lo, hi, whollyInside(rootPath));
  return out;
}

/**
 * Verifies a single-key proof against `root`; `value` is the claimed value (undefined: absent).
 * Returns normally only when the proof shows exactly that; otherwise throws a `ProofError`.
 *
 * @example
 * const { value, proof } = await keyProof(trie.view(), key);
 * verifyKeyProof(trie.root, key, value, proof);
 * verifyKeyProof(trie.root, key, undefined, proof); // throws when the key is present
 */
export function verifyKeyProof(root: Uint8Array, key: Uint8Array, value: Uint8Array | undefined, proof: ProofNode[]): void {
  if (proof.length === 0) throw new E.EmptyKeyProof('a key proof needs at least the root node');
  const path = keyToPath(key);
  checkPath(proof, path);
  const last = proof[proof.length - 1];
  if (value !== undefined && !equalBytes(last.key, path)) {
    throw new E.ExclusionProofUnexpectedValue('the proof shows the key absent but a value was claimed');
  }
  const kv = value === undefined ? [] : [{ key, value }];
  const inRange: BuildItem[] = kv.map((x) => ({ key, tokens: key.length * 2, digest: valueDigest(x.value) }));
  finish([], proof, inRange, () => value, { root, start: key, end: key, keyLimit: 1 }, key);
}

function find<T extends { key: Uint8Array }>(sorted: readonly T[], key: Uint8Array): T | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(sorted[mid].key, key);
    if (c === 0) return sorted[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}

/** Steps 1–4 of docs/proofs.md#verification. */
function checkShape(startProof: ProofNode[], endProof: ProofNode[], changes: readonly { key: Uint8Array }[], o: VerifyRangeOptions): void {
  const { start, end } = o;
  if (changes.length > o.keyLimit) throw new E.TooManyKeys(`${changes.length} keys exceed the limit of ${o.keyLimit}`, { count: changes.length, limit: o.keyLimit });
  if (start && end && lt(end, start)) throw new E.StartAfterEnd('start key is after end key');
  if (changes.length === 0 && startProof.length === 0 && endProof.length === 0) throw new E.EmptyProof('the proof is empty');
  if (!end && changes.length === 0 && endProof.length > 0) throw new E.UnexpectedEndProof('no end key and no key-values, but an end proof');
  if (!start && startProof.length > 0) throw new E.UnexpectedStartProof('no start key, but a start proof');
  if (endProof.length === 0 && (end || changes.length > 0)) throw new E.NoEndProof('the end proof is missing');
  for (let i = 0; i < changes.length; i++) {
    if (i > 0 && !lt(changes[i - 1].key, changes[i].key)) throw new E.NonIncreasingValues('keys are not strictly increasing', { index: i });
    const k = changes[i].key;
    if ((start && lt(k, start)) || (end && lt(end, k))) throw new E.StateFromOutsideOfRange('a key lies outside the requested range', { index: i });
  }
  if (start) checkPath(startProof, keyToPath(start));
  const endKey = changes.length ? changes[changes.length - 1].key : end;
  if (endKey) checkPath(endProof, keyToPath(endKey));
}

/** Step 4 for one proof path toward `key`. */
function checkPath(proof: ProofNode[], key: Path): void {
  for (let i = 0; i < proof.length; i++) {
    const n = proof[i];
    if (!isWholeByte(n.key) && n.valueOrHash !== undefined) throw new E.PartialByteLengthWithValue('a partial-byte key holds a value', { index: i });
    if (i < proof.length - 1) {
      if (!(n.key.length < key.length && hasPrefix(key, n.key))) throw new E.ProofNodeNotForKey('a proof node is not a prefix of the proven key', { index: i });
      const next = proof[i + 1].key;
      if (!(n.key.length < next.length && hasPrefix(next, n.key))) throw new E.NonIncreasingProofNodes('a proof node is not a prefix of the next one', { index: i });
    }
    for (const [idx, id] of n.children) {
      if (!Number.isInteger(idx) || idx < 0 || idx > 15) throw new E.InvalidProofNode(`child index ${idx} is outside branch factor 16`);
      if (id.length !== 32) throw new E.InvalidProofNode(`expected 32-byte child id, got ${id.length}`);
    }
  }
  const last = proof[proof.length - 1];
  if (!last || equalBytes(last.key, key)) return;
  if (last.key.length < key.length && hasPrefix(key, last.key)) {
    if (last.children.has(key[last.key.length])) {
      throw new E.ExclusionProofMissingEndNodes('the exclusion proof ends at a node that has a child toward the key');
    }
  } else if (proof.length > 1) {
    const parent = proof[proof.length - 2].key;
    if (last.key[parent.length] !== key[parent.length]) throw new E.ExclusionProofInvalidNode('the last node of the exclusion proof is under the wrong child');
  }
}

/** Steps 5–7: values committed by in-range proof nodes, rebuild, compare the root. */
function finish(
  startProof: ProofNode[],
  endProof: ProofNode[],
  inRange: BuildItem[],
  lookup: (key: Uint8Array) => Uint8Array | undefined,
  o: VerifyRangeOptions,
  endKey: Uint8Array | undefined,
  onNode?: (n: BuiltNode) => void,
): void {
  const startPath = o.start ? keyToPath(o.start) : undefined;
  const endPath = endKey ? keyToPath(endKey) : undefined;
  const inside = (p: Path) => inKeyRange(p, startPath, endPath);
  const extra = new Map<string, BuildItem>();
  const add = (path: Path, item: Omit<BuildItem, 'key' | 'tokens'>) =>
    extra.set(String.fromCharCode.apply(null, path as unknown as number[]), { key: packPath(path), tokens: path.length, ...item });
  for (const proof of [startProof, endProof]) {
    for (const n of proof) {
      if (isWholeByte(n.key) && inside(n.key)) {
        const expected = lookup(packWhole(n.key));
        if (n.valueOrHash !== undefined && expected === undefined) {
          throw new E.ProofNodeHasUnincludedValue('a proof node holds a value the proof does not include');
        }
        if (expected !== undefined && !equalBytes(valueDigest(expected), n.valueOrHash)) {
          throw new E.ProofValueDoesntMatch("a proof node's value does not match the included value");
        }
      } else if (n.valueOrHash !== undefined) add(n.key, { digest: n.valueOrHash });
      for (const [idx, id] of n.children) {
        const cp = new Uint8Array(n.key.length + 1);
        cp.set(n.key);
        cp[n.key.length] = idx;
        const leftOf = startPath && compareBytes(cp, startPath) < 0 && !hasPrefix(startPath, cp);
        const rightOf = endPath && compareBytes(cp, endPath) > 0;
        if (leftOf || rightOf) add(cp, { id });
      }
    }
  }
  const items = extra.size ? inRange.concat([...extra.values()]).sort(compareItems) : inRange;
  let root: Uint8Array;
  try {
    root = buildRoot(items, onNode, { leaves: false });
  } catch (err) {
    if (err instanceof MalformedItems) throw new E.InvalidProof(`the proof does not describe a trie: ${err.message}`);
    throw err;
  }
  if (!equalBytes(root, o.root)) throw new E.InvalidProof('the proof does not rebuild the expected root');
}

function packWhole(path: Path): Uint8Array {
  const out = new Uint8Array(path.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = (path[2 * i] << 4) | path[2 * i + 1];
  return out;
}
