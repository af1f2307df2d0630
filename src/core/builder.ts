/**
 * Computes a trie's root from a sorted list of items in one pass, without a store.
 * An item is either a value (a whole-byte key with its value digest) or an opaque subtree
 * (a path `parent ++ index` with a known id; a child's compressed key is not hashed: docs/hashing.md).
 * The same builder computes roots from scratch, bulk-loads a store (through `onNode`), and
 * rebuilds the partial trie that a range or change proof describes (docs/proofs.md#verification step 6).
 *
 * Items carry their path packed (`key`, zero-padded) with its length in tokens (`tokens`), so
 * whole-byte keys are used as they are: no per-key nibble arrays (measured: expanding 1M keys
 * to nibbles cost a third of the build). Packed order, then length, is the trie's path order.
 */
import { errorClass, ProofsyncError } from './errors.ts';
import { hashPacked } from './hash.ts';
import { compareBytes } from './bytes.ts';
import { valueDigest } from './hash.ts';
import { EMPTY_ROOT, type Path } from './types.ts';

export interface BuildItem {
  /** The path, packed (an odd last token leaves the low nibble zero). */
  key: Uint8Array;
  /** Path length in tokens. */
  tokens: number;
  /** Value digest; present for value items. */
  digest?: Uint8Array;
  /** The raw value, when known (passed to `onNode`). */
  value?: Uint8Array;
  /** Id of an opaque subtree hanging at this path. */
  id?: Uint8Array;
}

export interface ChildRef {
  /** The child's full path, packed (as `BuildItem.key`; `childPath` unpacks it). */
  key: Uint8Array;
  /** The child's path length in tokens. */
  tokens: number;
  id: Uint8Array;
  /** See `BuiltNode.pure`. */
  pure: boolean;
  /** The child is a leaf built from a value item (an opaque subtree is not known to be one). */
  leaf: boolean;
}

export interface BuiltNode {
  /** The full path (computed on use for leaves). */
  readonly path: Path;
  /** A leaf's key, packed (whole-byte): its value's key. */
  key?: Uint8Array;
  digest: Uint8Array | undefined;
  value: Uint8Array | undefined;
  children: (ChildRef | undefined)[];
  id: Uint8Array;
  /**
   * Every item below (and at) this node carries its raw value: the subtree holds nothing opaque
   * and nothing known only by digest. In a proof's rebuild, exactly the subtrees that lie wholly
   * inside the proven range, so they are the prover's own nodes.
   */
  pure: boolean;
}

/** The items do not describe a trie (duplicate paths, or an item inside an opaque subtree). */
export const MalformedItems = errorClass(ProofsyncError, 'MalformedItems');

const token = (key: Uint8Array, i: number): number => ((i & 1) === 0 ? key[i >> 1] >> 4 : key[i >> 1] & 15);

/** Path order of two items. */
export function compareItems(a: BuildItem, b: BuildItem): number {
  return compareBytes(a.key, b.key) || a.tokens - b.tokens;
}

/** Tokens shared by two packed paths, starting the comparison at token `from`. */
function sharedTokens(a: BuildItem, b: BuildItem, from: number): number {
  const max = a.tokens < b.tokens ? a.tokens : b.tokens;
  let i = from;
  if (i & 1 && i < max) {
    if (token(a.key, i) !== token(b.key, i)) return i;
    i++;
  }
  let byte = i >> 1;
  const ka = a.key;
  const kb = b.key;
  while (2 * byte + 1 < max && ka[byte] === kb[byte]) byte++;
  i = 2 * byte;
  if (i < max && token(ka, i) === token(kb, i)) i++;
  return i < max ? i : max;
}

/**
 * Root id of the trie holding `items`, which must be sorted by path and unique.
 * `onNode` sees every node that is built (not the opaque ones), children before parents; with
 * `leaves: false`, only nodes with children and a root that is a leaf (a caller that has the
 * key-values already saves an object per key: most nodes are leaves).
 *
 * @example
 * const enc = new TextEncoder();
 * const root = buildRoot(itemsFromKeyValues([{ key: enc.encode('a'), value: enc.encode('1') }]));
 */
export function buildRoot(items: readonly BuildItem[], onNode?: (node: BuiltNode) => void, options: { leaves?: boolean } = {}): Uint8Array {
  if (items.length === 0) return EMPTY_ROOT;
  const top: (Uint8Array | undefined)[] = new Array(1); // the same kind of array as the slots below
  // a build of its own: `onNode` may build another trie before this one is done
  const outer = slots;
  slots = [];
  try {
    build(items, 0, items.length, 0, onNode, options.leaves ?? true, top, undefined, 0);
  } finally {
    slots = outer;
  }
  return top[0]!;
}

/**
 * The running build's 16-slot arrays of child ids, one per depth, reused: children are always
 * deeper, so recursion never touches their parent's.
 */
let slots: (Uint8Array | undefined)[][] = [];

/**
 * Builds the node holding `items[lo..hi)` (all below a shared prefix of `depth` tokens), puts its id in `slot[t]` and, with
 * `refs`, its `ChildRef` in `refs[t]`, and says whether it is pure. A callee writes into its parent's arrays rather than
 * returning an object: Chromium's mid-tier compiler (Maglev) threw the optimized `build` away at the map check of the
 * returned object (or of a per-node list of them) once per range answer and compiled it again. A 200k-key browser sync
 * (bench/sync-ab.ts with `--js-flags=--trace-deopt --trace-opt`) compiled `build` 122 times, 2.3 s of compiler CPU;
 * now 6 times, 0.15 s.
 */
function build(
  items: readonly BuildItem[],
  lo: number,
  hi: number,
  depth: number,
  onNode: ((n: BuiltNode) => void) | undefined,
  leaves: boolean,
  slot: (Uint8Array | undefined)[],
  refs: (ChildRef | undefined)[] | undefined,
  t: number,
): boolean {
  const first = items[lo];
  if (hi - lo === 1) {
    if (first.id !== undefined) {
      slot[t] = first.id;
      if (refs) refs[t] = { key: first.key, tokens: first.tokens, id: first.id, pure: false, leaf: false };
      return false;
    }
    const id = hashPacked(first.key, first.tokens, first.digest, undefined);
    const pure = first.value !== undefined;
    if (onNode && (leaves || depth === 0)) {
      const { key, tokens } = first;
      onNode({
        get path() {
          return unpack(key, tokens);
        },
        key,
        digest: first.digest,
        value: first.value,
        children: [],
        id,
        pure,
      });
    }
    slot[t] = id;
    if (refs) refs[t] = { key: first.key, tokens: first.tokens, id, pure, leaf: true };
    return pure;
  }
  const plen = sharedTokens(first, items[hi - 1], depth);
  let s = lo;
  let digest: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  if (first.tokens === plen) {
    if (first.id !== undefined) throw new MalformedItems('an item lies inside an opaque subtree');
    digest = first.digest;
    value = first.value;
    s++;
  }
  const mine = onNode ? (new Array(16) as (ChildRef | undefined)[]) : undefined;
  const ids = (slots[plen] ??= new Array(16));
  ids.fill(undefined);
  let pure = digest === undefined || value !== undefined;
  while (s < hi) {
    if (items[s].tokens === plen) throw new MalformedItems('duplicate path');
    const k = token(items[s].key, plen);
    let e = s + 1;
    while (e < hi && token(items[e].key, plen) === k) e++;
    // the path stays packed: a proof's rebuild has a child per key, most never unpacked
    if (!build(items, s, e, plen + 1, onNode, leaves, ids, mine, k)) pure = false;
    s = e;
  }
  const id = hashPacked(first.key, plen, digest, ids);
  onNode?.({ path: unpack(first.key, plen), digest, value, children: mine!, id, pure });
  slot[t] = id;
  if (refs) refs[t] = { key: first.key, tokens: plen, id, pure, leaf: false };
  return pure;
}

/** A child's full path. */
export function childPath(c: ChildRef): Path {
  return unpack(c.key, c.tokens);
}

/** Token `i` of a packed path. */
export const tokenAt = token;

function unpack(key: Uint8Array, tokens: number): Path {
  const p = new Uint8Array(tokens);
  for (let i = 0; i < tokens; i++) p[i] = token(key, i);
  return p;
}

/**
 * Sorts key-values by key (fast path: a numeric sort on a 4-byte prefix, exact ties resolved
 * by full comparison) and turns them into value items. Throws on duplicate keys.
 *
 * @example
 * const root = buildRoot(itemsFromKeyValues(keyValues)); // equals the root of a trie holding them
 */
export function itemsFromKeyValues(kvs: readonly { key: Uint8Array; value: Uint8Array }[]): BuildItem[] {
  const order = sortedOrder(kvs);
  const items: BuildItem[] = new Array(kvs.length);
  for (let i = 0; i < order.length; i++) {
    const kv = kvs[order[i]];
    items[i] = { key: kv.key, tokens: kv.key.length * 2, digest: valueDigest(kv.value), value: kv.value };
    if (i > 0 && compareBytes(items[i - 1].key, kv.key) === 0) throw new MalformedItems('duplicate key');
  }
  return items;
}

const prefix32 = (k: Uint8Array): number => ((k[0] ?? 0) * 0x1000000 + ((k[1] ?? 0) << 16) + ((k[2] ?? 0) << 8) + (k[3] ?? 0));

/** Indices of `kvs` in key order. */
export function sortedOrder(kvs: readonly { key: Uint8Array }[]): Uint32Array {
  const n = kvs.length;
  const order = new Uint32Array(n);
  const SHIFT = 2 ** 21;
  if (n > SHIFT) {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => compareBytes(kvs[a].key, kvs[b].key));
    order.set(idx);
    return order;
  }
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = prefix32(kvs[i].key) * SHIFT + i;
  packed.sort();
  for (let i = 0; i < n; i++) order[i] = packed[i] % SHIFT;
  // Runs with the same 4-byte prefix (rare for random keys; short keys pad with zero) sort fully.
  for (let i = 0; i < n; ) {
    const p = prefix32(kvs[order[i]].key);
    let j = i + 1;
    while (j < n && prefix32(kvs[order[j]].key) === p) j++;
    if (j - i > 1) {
      const run = Array.from(order.subarray(i, j)).sort((a, b) => compareBytes(kvs[a].key, kvs[b].key));
      order.set(run, i);
    }
    i = j;
  }
  return order;
}
