import { describe, expect, it } from 'vitest';
import { expandRecords, valuePrefixRange } from './elided-leaves.ts';
import { MemoryStore } from './store.ts';
import { MerkleTrie } from './trie.ts';
import { toHex } from './bytes.ts';
import { hashNode, valueDigest } from './hash.ts';
import { keyToPath } from './path.ts';
import { decodeNode, nodeKey, valueKey } from './node-record.ts';

const b = (...x: number[]) => Uint8Array.from(x);

describe('valuePrefixRange', () => {
  // [prefix tokens, gte, lt] in hex, 'v' = 76, the end of the values 'w' = 77
  const cases: [string, number[], string, string][] = [
    ['one token', [1], '7610', '7620'],
    ['two tokens', [1, 2], '7612', '7613'],
    ['an odd prefix ending in f carries into the byte before', [1, 2, 15], '7612f0', '7613'],
    ['an even prefix ending in f carries into the high half', [1, 15], '761f', '7620'],
    ['f carries through several tokens', [3, 15, 15], '763ff0', '7640'],
    ['all f: up to the end of the values', [15, 15], '76ff', '77'],
    ['a zero token', [0], '7600', '7610'],
  ];
  it.each(cases)('%s', (_, prefix, gte, lt) => {
    const r = valuePrefixRange(Uint8Array.from(prefix));
    expect([toHex(r.gte), toHex(r.lt)]).toEqual([gte, lt]);
  });
});

describe('expandRecords', () => {
  /**
   * Keys 1100, 2100, 2200: the root at the empty path has a leaf child 1 (an odd, half-byte
   * prefix) and a node child at [2] with leaf children [2,1] and [2,2].
   */
  async function store(): Promise<{ s: MemoryStore; root: Uint8Array }> {
    const s = new MemoryStore();
    const trie = await MerkleTrie.open(s);
    await trie.commit([1, 2, 3].map((i) => ({ key: [b(0x11, 0), b(0x21, 0), b(0x22, 0)][i - 1], value: b(i) })));
    return { s, root: s.getSync(nodeKey(new Uint8Array(0)))! };
  }

  it('fills each elided leaf in from the one value under its prefix, hashed into its id', async () => {
    const { s, root } = await store();
    const [full] = await expandRecords(s, [{ path: new Uint8Array(0), raw: root }]);
    const n = decodeNode(new Uint8Array(0), full);
    expect(toHex(n.children[1]!.path)).toBe(toHex(keyToPath(b(0x11, 0))));
    expect(toHex(n.children[1]!.id)).toBe(toHex(hashNode(keyToPath(b(0x11, 0)), valueDigest(b(1)), [])));
    expect(n.children[1]!.leaf).toBe(true);
    expect(n.children[2]!.leaf).toBe(false);
  });

  it('with more values between its elided leaves than one scan takes, reads each leaf on its own', async () => {
    // the root: leaf 0000, a node at [1] over 40 keys, leaf 2000: one scan from [0] to [2] would
    // end inside the node's values before it reached the leaf at 2
    const s = new MemoryStore();
    const trie = await MerkleTrie.open(s);
    const middle = Array.from({ length: 40 }, (_, i) => ({ key: b(0x10, i), value: b(i) }));
    await trie.commit([{ key: b(0, 0), value: b(1) }, ...middle, { key: b(0x20, 0), value: b(2) }]);
    const [full] = await expandRecords(s, [{ path: new Uint8Array(0), raw: s.getSync(nodeKey(new Uint8Array(0)))! }]);
    const n = decodeNode(new Uint8Array(0), full);
    expect(toHex(n.children[0]!.id)).toBe(toHex(hashNode(keyToPath(b(0, 0)), valueDigest(b(1)), [])));
    expect(toHex(n.children[2]!.id)).toBe(toHex(hashNode(keyToPath(b(0x20, 0)), valueDigest(b(2)), [])));
  });

  it('reads only the half byte of an odd prefix: values just outside it change nothing', async () => {
    const { s, root } = await store();
    const before = (await expandRecords(s, [{ path: new Uint8Array(0), raw: root }]))[0];
    // 0f.. sorts just below prefix [1], 20 just above it
    s.writeSync([
      { type: 'put', key: valueKey(b(0x0f, 0xff)), value: b(9) },
      { type: 'put', key: valueKey(b(0x20)), value: b(9) },
    ]);
    const after = (await expandRecords(s, [{ path: new Uint8Array(0), raw: root }]))[0];
    expect(toHex(after)).toBe(toHex(before));
  });

  // a damaged store: the record unchanged, its elided leaf's values not one
  const damaged: [string, (s: MemoryStore) => void, string][] = [
    ['no value under the elided leaf', (s) => s.writeSync([{ type: 'del', key: valueKey(b(0x11, 0)) }]), 'MissingField'],
    ['two values under the elided leaf', (s) => s.writeSync([{ type: 'put', key: valueKey(b(0x1f)), value: b() }]), 'TooManyItems'],
  ];
  it.each(damaged)('%s throws %s', async (_, damage, name) => {
    const { s, root } = await store();
    damage(s);
    await expect(expandRecords(s, [{ path: new Uint8Array(0), raw: root }])).rejects.toMatchObject({ name });
    // and read as a run of records in store order (warmNodes: one scan for all their leaves)
    const run = [{ path: new Uint8Array(0), raw: root }, { path: Uint8Array.of(2), raw: s.getSync(nodeKey(Uint8Array.of(2)))! }];
    await expect(expandRecords(s, run, { run: true })).rejects.toMatchObject({ name });
  });

  it('a run of records in store order: one scan fills every record in as each alone would', async () => {
    const s = new MemoryStore();
    const trie = await MerkleTrie.open(s);
    await trie.commit(Array.from({ length: 300 }, (_, i) => ({ key: b(i >> 8, i & 255, (i * 37) & 255), value: b(i & 255) })));
    const records = [...s.iterateSync({ gte: b(0x6e), lt: b(0x6f) })].map(([k, raw]) => ({ path: k.subarray(1), raw }));
    expect(records.length).toBeGreaterThan(10);
    const alone = await expandRecords(s, records);
    const together = await expandRecords(s, records, { run: true });
    expect(together.map(toHex)).toEqual(alone.map(toHex));
  });

  it('scattered records: the store is told every elided leaf\'s value range first (prefetchRanges), in chunks; the records come out as without it', async () => {
    const s = new MemoryStore();
    const trie = await MerkleTrie.open(s);
    await trie.commit(Array.from({ length: 3000 }, (_, i) => ({ key: b(i >> 8, i & 255, (i * 37) & 255), value: b(i & 255) })));
    const records = [...s.iterateSync({ gte: b(0x6e), lt: b(0x6f) })].map(([k, raw]) => ({ path: k.subarray(1), raw }));
    expect(records.length).toBeGreaterThan(200); // more than one chunk
    const alone = await expandRecords(s, records);
    const told: { gte: Uint8Array; lt: Uint8Array }[][] = [];
    const hinted = Object.assign(Object.create(s) as MemoryStore, {
      prefetchRanges: async (ranges: readonly { gte: Uint8Array; lt: Uint8Array }[]) => void told.push([...ranges]),
    });
    const withHint = await expandRecords(hinted, records);
    expect(withHint.map(toHex)).toEqual(alone.map(toHex));
    expect(told.length).toBeGreaterThan(1);
    // each range is a value prefix range (the 'v' prefix) and holds exactly one value: an elided leaf
    const ranges = told.flat();
    expect(ranges.length).toBeGreaterThan(records.length);
    for (const r of ranges.slice(0, 50)) expect([...s.iterateSync({ gte: r.gte, lt: r.lt })].length).toBe(1);
  });

  it('a record that changed between its read and its values (a commit in the gap) is read again, not reported damaged', async () => {
    const { s, root } = await store();
    // a commit lands: the leaf at 1100 goes, one at 3100 comes, and the root record changes
    const trie = await MerkleTrie.open(s);
    await trie.commit([{ key: b(0x11, 0), value: undefined }, { key: b(0x31, 0), value: b(4) }]);
    const now = s.getSync(nodeKey(new Uint8Array(0)))!;
    expect(toHex(now)).not.toBe(toHex(root));
    // the old record's leaf 1 has no value now: the record is read again and the new one expanded
    const [full] = await expandRecords(s, [{ path: new Uint8Array(0), raw: root }]);
    const n = decodeNode(new Uint8Array(0), full);
    expect(n.children[1]).toBeUndefined();
    expect(toHex(n.children[3]!.path)).toBe(toHex(keyToPath(b(0x31, 0))));
  });
});
