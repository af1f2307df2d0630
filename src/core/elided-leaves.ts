/**
 * Reading elided leaves back (docs/hashing.md#store-layout): a store record names its leaf
 * children by index only; each one's leaf is the one value key under `path ++ index`, and its
 * id is hashed from that key and value (`leafNode`). This fills them in from the store, giving
 * the record the node cache keeps (`expandRecord`).
 */
import { compareBytes, equalBytes } from './bytes.ts';
import { MissingField, TooManyItems } from './errors.ts';
import { hashNode, valueDigest } from './hash.ts';
import { keyToPath } from './path.ts';
import { readRange, type KVStore } from './store.ts';
import { StagedReads } from './staged-store.ts';
import type { Path } from './types.ts';
import { elidedIndices, expandRecord, nodeKey, VALUE_END, type ElidedLeaf } from './node-record.ts';

const V = 0x76; // 'v'

/**
 * The bounds of the value keys whose key paths start with `prefix` (tokens): `[gte, lt)`. An odd
 * prefix ends in half a byte: its keys are those whose next byte has that high nibble.
 */
export function valuePrefixRange(prefix: Path): { gte: Uint8Array; lt: Uint8Array } {
  const bytes = (prefix.length + 1) >> 1;
  const gte = new Uint8Array(1 + bytes);
  gte[0] = V;
  for (let i = 0; i < prefix.length; i++) gte[1 + (i >> 1)] |= (i & 1) === 0 ? prefix[i] << 4 : prefix[i];
  // the successor of the prefix: add one at its last token, carrying; a prefix of all f's has
  // every later value key above it, up to the end of the values
  const lt = gte.slice();
  let t = prefix.length - 1;
  for (; t >= 0; t--) {
    const at = 1 + (t >> 1);
    const shift = (t & 1) === 0 ? 4 : 0;
    const token = (lt[at] >> shift) & 15;
    if (token < 15) {
      lt[at] = (lt[at] & ~(15 << shift)) + ((token + 1) << shift);
      return { gte, lt: lt.subarray(0, at + 1) };
    }
    lt[at] &= ~(15 << shift);
  }
  return { gte, lt: VALUE_END };
}

/**
 * The values in `[gte, lt)`, at most `limit`. Through a trie's staged reads, the staged ops laid
 * over the store rather than waiting for their write (`StagedReads.rangeNow`).
 */
function scan(store: KVStore, o: { gte: Uint8Array; lt: Uint8Array; limit: number }): Promise<[Uint8Array, Uint8Array][]> {
  return store instanceof StagedReads ? store.rangeNow(o) : readRange(store, o);
}

/** `path ++ index`. */
function childPrefix(path: Path, index: number): Path {
  const prefix = new Uint8Array(path.length + 1);
  prefix.set(path);
  prefix[path.length] = index;
  return prefix;
}

const leafOf = (k: Uint8Array, v: Uint8Array): ElidedLeaf => {
  const path = keyToPath(k.subarray(1));
  return { path, id: hashNode(path, valueDigest(v), []) };
};

/** The one leaf under `prefix` in `store` (a record elides it), or why there is not exactly one. */
async function leafUnder(store: KVStore, prefix: Path): Promise<ElidedLeaf | 'none' | 'many'> {
  const run = await scan(store, { ...valuePrefixRange(prefix), limit: 2 });
  if (run.length !== 1) return run.length === 0 ? 'none' : 'many';
  return leafOf(run[0][0], run[0][1]);
}

/** The value-key bounds of one elided leaf (`valuePrefixRange` of `path ++ index`). */
interface Want {
  gte: Uint8Array;
  lt: Uint8Array;
}

/**
 * The one value under each of `wants` (sorted, disjoint: each is a subtree of its own), from ONE
 * scan of the values from the first to the last, with room for `slack` values of other nodes'
 * keys that fall between them; undefined when the scan would read more.
 */
async function scanLeaves(store: KVStore, wants: readonly Want[], slack: number): Promise<(ElidedLeaf | 'none' | 'many')[] | undefined> {
  let lt = wants[0].lt;
  for (const w of wants) if (compareBytes(w.lt, lt) > 0) lt = w.lt;
  const limit = wants.length + slack;
  const run = await scan(store, { gte: wants[0].gte, lt, limit });
  if (run.length >= limit) return undefined;
  const found: (ElidedLeaf | 'none' | 'many')[] = new Array(wants.length).fill('none');
  let w = 0;
  for (const [k, v] of run) {
    while (w < wants.length && compareBytes(wants[w].lt, k) <= 0) w++;
    if (w === wants.length) break;
    if (compareBytes(k, wants[w].gte) < 0) continue;
    found[w] = found[w] === 'none' ? leafOf(k, v) : 'many';
  }
  return found;
}

/** Values read past a record's elided leaves before its scan gives up for one scan per leaf. */
const SLACK = 32;

/**
 * The leaves elided at `indices` (increasing) of the node at `path`: one scan for the record
 * (`scanLeaves`), else one per leaf. A bottom node's children are nearly all leaves (~15 of 16
 * at 1M keys): a scan per record, not per child.
 */
async function leavesUnder(store: KVStore, path: Path, indices: readonly number[]): Promise<(ElidedLeaf | 'none' | 'many')[]> {
  const wants = indices.map((i) => valuePrefixRange(childPrefix(path, i)));
  return (await scanLeaves(store, wants, SLACK)) ?? Promise.all(indices.map((i) => leafUnder(store, childPrefix(path, i))));
}

/**
 * Store records with their elided leaves filled in from `store`'s values, in the node cache's
 * form (records without elided leaves are returned as they are). `store` must be the committed
 * state the records were read from (never a view's value overlay: a view may hold a new key
 * under a leaf's prefix). The reader's usual guarantee that no commit lands while it reads
 * (`MerkleDatabase`'s lock; one writer per `MerkleTrie`) covers the gap between the record and
 * its values; a reader without it (a second trie on the same store) that finds a leaf missing or
 * doubled reads the record again, and only a record that did not change is a damaged store:
 * `MissingField` (no value under an elided leaf) or `TooManyItems` (more than one).
 */
export async function expandRecords(store: KVStore, records: readonly { path: Path; raw: Uint8Array }[], options: { run?: boolean } = {}): Promise<Uint8Array[]> {
  if (options.run && records.length > 1) {
    const together = await expandRun(store, records);
    if (together) return together;
  }
  if (!store.prefetchRanges || records.length < 2) return Promise.all(records.map((r) => expandOne(store, r.path, r.raw, true)));
  // scattered records (a catch-up's paths): the store is told each chunk's places first, so their
  // scans find them read (one round trip per chunk, not one per record)
  const out: Uint8Array[] = [];
  for (let at = 0; at < records.length; at += PREFETCH_CHUNK) {
    const chunk = records.slice(at, at + PREFETCH_CHUNK);
    const ranges: Want[] = [];
    for (const r of chunk) for (const i of elidedIndices(r.raw)) ranges.push(valuePrefixRange(childPrefix(r.path, i)));
    if (ranges.length) await store.prefetchRanges(ranges);
    out.push(...(await Promise.all(chunk.map((r) => expandOne(store, r.path, r.raw, true)))));
  }
  return out;
}

/**
 * Records whose places `expandRecords` hands to `prefetchRanges` at once: about as many pages,
 * within half of a browser store's default page cache (16 MiB of 32 KiB pages).
 */
const PREFETCH_CHUNK = 128;

/** Values read past a run's elided leaves before `expandRun` gives up. */
const RUN_SLACK = 256;

/**
 * `expandRecords` of a run of consecutive records in store order (a scan of the node records,
 * `MerkleTrie.warmNodes`): their elided leaves lie close together in key order, so ONE scan of
 * the values from the first to the last finds them all, with room for the few values of nodes
 * outside the run whose keys fall between. Undefined when that scan would read too many
 * (an elided leaf far from the others); records whose leaves are not exactly one each are left
 * to `expandOne` (which reads again and reports a damaged store). Measured (`node
 * bench/warm-nodes.ts`, 200k keys in a MemoryStore, third of three runs): warming the whole node
 * cache took 6.1 s with a scan per record, 2.0–2.1 s with a scan per run, 0.3 s on records
 * without elided leaves; most of what is left is hashing each leaf and its value digest.
 */
async function expandRun(store: KVStore, records: readonly { path: Path; raw: Uint8Array }[]): Promise<Uint8Array[] | undefined> {
  const wants: (Want & { r: number; i: number })[] = [];
  const indices = records.map((r) => elidedIndices(r.raw));
  for (let r = 0; r < records.length; r++) for (const i of indices[r]) wants.push({ r, i, ...valuePrefixRange(childPrefix(records[r].path, i)) });
  if (wants.length === 0) return records.map((r) => r.raw);
  wants.sort((a, b) => compareBytes(a.gte, b.gte));
  const found = await scanLeaves(store, wants, RUN_SLACK);
  if (!found) return undefined;
  const leaves: (ElidedLeaf | undefined)[][] = records.map(() => new Array(16));
  const bad = new Set<number>();
  for (let j = 0; j < wants.length; j++) {
    const f = found[j];
    if (typeof f === 'string') bad.add(wants[j].r);
    else leaves[wants[j].r][wants[j].i] = f;
  }
  return Promise.all(records.map((r, j) => (bad.has(j) ? expandOne(store, r.path, r.raw, true) : expandRecord(r.path, r.raw, leaves[j]))));
}

async function expandOne(store: KVStore, path: Path, raw: Uint8Array, again: boolean): Promise<Uint8Array> {
  const elided = elidedIndices(raw);
  if (elided.length === 0) return raw;
  const found = await leavesUnder(store, path, elided);
  const leaves: (ElidedLeaf | undefined)[] = new Array(16);
  for (let j = 0; j < elided.length; j++) {
    const f = found[j];
    if (typeof f !== 'string') {
      leaves[elided[j]] = f;
      continue;
    }
    if (again) {
      const now = await store.get(nodeKey(path));
      if (now && !equalBytes(now, raw)) return expandOne(store, path, now, false);
    }
    const i = elided[j];
    if (f === 'none') throw new MissingField(`node record at a path of ${path.length} tokens elides its leaf child ${i}, and the store holds no value under it`, { index: i, tokens: path.length });
    throw new TooManyItems(`node record at a path of ${path.length} tokens elides its leaf child ${i}, and the store holds more than one value under it`, { index: i, tokens: path.length });
  }
  return expandRecord(path, raw, leaves);
}

