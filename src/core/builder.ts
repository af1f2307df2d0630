/**
 * Computes a trie's root from a sorted list of items in one pass, without a store.
 * An item is either a value (a whole-byte path with its value digest) or an opaque subtree
 * (a path `parent ++ index` with a known id, whose compressed key is not hashed: spec §1).
 * The same builder computes roots from scratch, bulk-loads a store (through `onNode`), and
 * rebuilds the partial trie that a range or change proof describes (spec §3 step 6).
 */
import { hashNode, valueDigest } from './hash.ts';
import { commonPrefixLength } from './path.ts';
import { compareBytes } from './bytes.ts';
import { EMPTY_ROOT, type Path } from './types.ts';

export interface BuildItem {
  path: Path;
  /** Value digest; present for value items. */
  digest?: Uint8Array;
  /** The raw value, when known (passed to `onNode`). */
  value?: Uint8Array;
  /** Id of an opaque subtree hanging at `path`. */
  id?: Uint8Array;
}

export interface ChildRef {
  /** The child's full path. */
  path: Path;
  id: Uint8Array;
}

export interface BuiltNode {
  path: Path;
  digest: Uint8Array | undefined;
  value: Uint8Array | undefined;
  children: (ChildRef | undefined)[];
  id: Uint8Array;
}

/** The items do not describe a trie (duplicate paths, or an item inside an opaque subtree). */
export class MalformedItems extends Error {
  override readonly name = 'MalformedItems';
}

interface Built {
  path: Path;
  id: Uint8Array;
}

/**
 * Root id of the trie holding `items`, which must be sorted by path and unique.
 * `onNode` sees every node that is built (not the opaque ones), children before parents.
 */
export function buildRoot(items: readonly BuildItem[], onNode?: (node: BuiltNode) => void): Uint8Array {
  if (items.length === 0) return EMPTY_ROOT;
  return build(items, 0, items.length, 0, onNode).id;
}

function build(items: readonly BuildItem[], lo: number, hi: number, depth: number, onNode?: (n: BuiltNode) => void): Built {
  const first = items[lo];
  if (hi - lo === 1) {
    if (first.id !== undefined) return { path: first.path, id: first.id };
    const id = hashNode(first.path, first.digest, []);
    onNode?.({ path: first.path, digest: first.digest, value: first.value, children: [], id });
    return { path: first.path, id };
  }
  const last = items[hi - 1];
  const plen = commonPrefixLength(first.path, last.path, depth);
  const path = first.path.subarray(0, plen);
  let s = lo;
  let digest: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  if (first.path.length === plen) {
    if (first.id !== undefined) throw new MalformedItems('an item lies inside an opaque subtree');
    digest = first.digest;
    value = first.value;
    s++;
  }
  const ids: (Uint8Array | undefined)[] = new Array(16);
  const refs: (ChildRef | undefined)[] | undefined = onNode ? new Array(16) : undefined;
  while (s < hi) {
    const t = items[s].path[plen];
    if (t === undefined) throw new MalformedItems('duplicate path');
    let e = s + 1;
    while (e < hi && items[e].path[plen] === t) e++;
    const child = build(items, s, e, plen + 1, onNode);
    ids[t] = child.id;
    if (refs) refs[t] = { path: child.path, id: child.id };
    s = e;
  }
  const id = hashNode(path, digest, ids);
  onNode?.({ path, digest, value, children: refs!, id });
  return { path, id };
}

/** Sorts key-values by key and turns them into value items. Throws on duplicate keys. */
export function itemsFromKeyValues(kvs: Iterable<{ key: Uint8Array; value: Uint8Array }>, toPath: (k: Uint8Array) => Path): BuildItem[] {
  const items: BuildItem[] = [];
  for (const kv of kvs) items.push({ path: toPath(kv.key), digest: valueDigest(kv.value), value: kv.value });
  items.sort((a, b) => compareBytes(a.path, b.path));
  for (let i = 1; i < items.length; i++) {
    if (compareBytes(items[i - 1].path, items[i].path) === 0) throw new MalformedItems('duplicate key');
  }
  return items;
}
