/**
 * Where to continue after a partial range or change response (docs/sync.md).
 *
 * The received end proof (remote trie) and a local proof toward the same path are walked
 * upward from the deepest node; the first child index, right of the path, whose presence or id
 * differs between the two is where local and remote may start to differ. Everything between the
 * last received key and that point is known to be equal on both sides.
 * As upstream, `end` counts as covered: work items split at a midpoint share it, and the item
 * to the right starts at it. A range whose end must be included is given as `end ++ 0x00`.
 * Differences from upstream: a one-node exclusion end proof (whose root is not a prefix of the
 * last key) does not index out of bounds; it falls back to `last ++ 0x00`.
 */
import { compareBytes, equalBytes } from './bytes.ts';
import { hasPrefix, keyToPath, packPath } from './path.ts';
import type { Path, ProofNode } from './types.ts';

/** A proof path toward `path` in the local trie. */
export type LocalProof = (path: Path) => Promise<ProofNode[]> | ProofNode[];

const ZERO_ID = new Uint8Array(32);

/**
 * The next start key after `last`, or `undefined` when `(last, end]` is known complete.
 * `end` undefined means unbounded.
 *
 * @example
 * const last = proof.keyValues[proof.keyValues.length - 1].key;
 * const next = await nextKey(last, end, proof.endProof, (path) => localView.proofPath(path));
 * if (next !== undefined) queue.push({ start: next, end });
 */
export async function nextKey(last: Uint8Array, end: Uint8Array | undefined, endProof: ProofNode[], localProof: LocalProof): Promise<Uint8Array | undefined> {
  const at = remotePath(last, end, endProof);
  if ('next' in at) return at.next;
  return compareProofs(last, end, at.path, at.remote, await localProof(at.path));
}

/**
 * `nextKey` against an empty local trie: the next key the proof shows the remote trie to hold
 * after `last`, from the proof alone. Same proof, same answer, whatever the local state: what the
 * canonical request plan resumes by (src/sync/state/plan.ts).
 */
export function nextKeyInProof(last: Uint8Array, end: Uint8Array | undefined, endProof: ProofNode[]): Uint8Array | undefined {
  const at = remotePath(last, end, endProof);
  if ('next' in at) return at.next;
  // the deepest remote node with a child right of the path: its first such child's subtree
  for (let i = at.remote.length - 1; i >= 0; i--) {
    const node = at.remote[i];
    const from = node.key.length < at.path.length ? at.path[node.key.length] + 1 : 0;
    const idx = firstDifference(node, undefined, from);
    if (idx === undefined) continue;
    const p = new Uint8Array(node.key.length + 1);
    p.set(node.key);
    p[node.key.length] = idx;
    return bounded(packPath(p), last, end);
  }
  return undefined;
}

/** A found next key as `nextKey` returns it: past `last`, undefined at or past `end`. */
function bounded(found: Uint8Array, last: Uint8Array, end: Uint8Array | undefined): Uint8Array | undefined {
  if (compareBytes(found, last) <= 0) return afterLast(last, end);
  if (end && compareBytes(found, end) >= 0) return undefined;
  return found;
}

/** The path to compare along and the remote proof toward it, or the answer when none is needed. */
function remotePath(last: Uint8Array, end: Uint8Array | undefined, endProof: ProofNode[]): { path: Path; remote: ProofNode[] } | { next: Uint8Array | undefined } {
  if (endProof.length === 0) return { next: afterLast(last, end) };
  let path: Path = keyToPath(last);
  let remote = endProof;
  if (!hasPrefix(path, remote[remote.length - 1].key)) {
    // An exclusion proof whose last node lies past the key: drop it, prove its parent instead.
    remote = remote.slice(0, -1);
    if (remote.length === 0) return { next: afterLast(last, end) };
    path = remote[remote.length - 1].key;
  }
  return { path, remote };
}

/** `last ++ 0x00`, or undefined when that is at or past `end`. */
function afterLast(last: Uint8Array, end: Uint8Array | undefined): Uint8Array | undefined {
  const next = new Uint8Array(last.length + 1);
  next.set(last);
  return end && compareBytes(next, end) >= 0 ? undefined : next;
}

function compareProofs(last: Uint8Array, end: Uint8Array | undefined, path: Path, remoteProof: ProofNode[], localProof: ProofNode[]): Uint8Array | undefined {
  let remote = remoteProof;
  let local = localProof;
  if (local.length && !hasPrefix(path, local[local.length - 1].key)) local = local.slice(0, -1);
  local = withSentinel(local);
  remote = withSentinel(remote);

  let found: Uint8Array | undefined;
  let li = local.length - 1;
  let ri = remote.length - 1;
  while (li >= 0 && ri >= 0 && !found) {
    const l = local[li];
    const r = remote[ri];
    let deepest: ProofNode;
    let other: ProofNode | undefined;
    if (r.key.length > l.key.length) {
      deepest = r;
      ri--;
    } else if (l.key.length > r.key.length) {
      deepest = l;
      li--;
    } else {
      deepest = l;
      other = r;
      li--;
      ri--;
    }
    const from = deepest.key.length < path.length ? path[deepest.key.length] + 1 : 0;
    const idx = firstDifference(deepest, other, from);
    if (idx !== undefined) {
      const p = new Uint8Array(deepest.key.length + 1);
      p.set(deepest.key);
      p[deepest.key.length] = idx;
      found = packPath(p);
    }
  }
  // no child right of the path differs at any level, up to the shared top: everything after
  // `last` is equal on both sides (upstream returns Nothing here too; measured, falling back to
  // an empty request here costs every sync 30–80 ms at its end)
  if (!found) return undefined;
  return bounded(found, last, end);
}

/** Adds an empty-keyed node above a proof that does not start at the empty path, so both proofs share a top. */
function withSentinel(proof: ProofNode[]): ProofNode[] {
  if (proof.length === 0 || proof[0].key.length === 0) return proof;
  const sentinel: ProofNode = { key: new Uint8Array(0), valueOrHash: undefined, children: new Map([[proof[0].key[0], ZERO_ID]]) };
  return [sentinel, ...proof];
}

function firstDifference(a: ProofNode, b: ProofNode | undefined, from: number): number | undefined {
  for (let i = from; i < 16; i++) {
    const x = a.children.get(i);
    const y = b?.children.get(i);
    if (x === undefined && y === undefined) continue;
    if (!equalBytes(x ?? ZERO_ID, y ?? ZERO_ID)) return i;
  }
  return undefined;
}
