import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { builtToNode, decodeNode, elidedIndices, elideLeaves, encodeBuilt, encodeFull, encodeNode, expandRecord, type ElidedLeaf, type TrieNode } from './node-record.ts';
import { buildRoot, childPath, itemsFromKeyValues, type BuiltNode } from './builder.ts';
import { toHex } from './bytes.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 }).map((k) => k.map((b) => b & 0x13)); // small alphabet: many shared prefixes
const valArb = fc.uint8Array({ minLength: 0, maxLength: 40 });

/** A node at a random path with random children (each child's path extends `path ++ index`). */
const nodeArb = fc
  .record({
    path: fc.uint8Array({ maxLength: 8 }).map((p) => p.map((t) => t & 15)),
    digest: fc.option(fc.uint8Array({ minLength: 0, maxLength: 32 }), { nil: undefined }),
    id: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    kids: fc.array(
      fc.record({ index: fc.integer({ min: 0, max: 15 }), suffix: fc.uint8Array({ maxLength: 10 }).map((p) => p.map((t) => t & 15)), id: fc.uint8Array({ minLength: 32, maxLength: 32 }), leaf: fc.boolean() }),
      { maxLength: 16 },
    ),
  })
  .map(({ path, digest, id, kids }): TrieNode => {
    const children: TrieNode['children'] = new Array(16);
    for (const k of kids) children[k.index] = { path: Uint8Array.of(...path, k.index, ...k.suffix), id: k.id, leaf: k.leaf };
    return { path, digest, children, id };
  });

/** What a node holds, comparable with `toEqual` (children as a dense list of index, path, id). */
const shape = (n: TrieNode) => ({
  path: toHex(n.path),
  digest: n.digest && toHex(n.digest),
  id: toHex(n.id),
  children: n.children.flatMap((c, i) => (c ? [[i, toHex(c.path), toHex(c.id)]] : [])),
});
/** Which children are marked leaves. */
const leafMarks = (n: TrieNode) => n.children.flatMap((c, i) => (c?.leaf ? [i] : []));
/** The leaves `expandRecord` needs: each leaf child's path and id, by index. */
const leavesOf = (n: TrieNode): (ElidedLeaf | undefined)[] => n.children.map((c) => (c?.leaf ? { path: c.path, id: c.id } : undefined));

describe('node records', () => {
  it('a node record encoded from the builder\'s node equals the record of the trie node; the leaves it elides are the nodes built without children', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ key: keyArb, value: valArb }), { maxLength: 40 }), (kvs) => {
        const unique = [...new Map(kvs.map((kv) => [toHex(kv.key), kv])).values()];
        const built: BuiltNode[] = [];
        buildRoot(itemsFromKeyValues(unique), (n) => void built.push(n));
        // the paths of the nodes built without children (children come before their parents)
        const leaves = new Set(built.filter((n) => !n.children.some((c) => c !== undefined)).map((n) => toHex(n.path)));
        let branches = 0;
        for (const n of built) {
          if (!n.children.some((c) => c !== undefined)) continue;
          branches++;
          expect(toHex(encodeBuilt(n))).toBe(toHex(encodeFull(builtToNode(n))));
          expect(toHex(elideLeaves(encodeBuilt(n)))).toBe(toHex(encodeNode(builtToNode(n))));
          expect(elidedIndices(encodeNode(builtToNode(n)))).toEqual(n.children.flatMap((c, i) => (c && leaves.has(toHex(childPath(c))) ? [i] : [])));
        }
        expect(branches).toBeLessThanOrEqual(unique.length);
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  it('decode(encodeFull(node)) is the node with its leaf marks, for any digest, path and children', () => {
    fc.assert(
      fc.property(nodeArb, (n) => {
        const raw = encodeFull(n);
        const back = decodeNode(n.path, raw);
        expect(shape(back)).toEqual(shape(n));
        expect(leafMarks(back)).toEqual(leafMarks(n));
        expect(back.stored).toBe(true);
        expect(toHex(encodeFull(back))).toBe(toHex(raw));
      }),
      { numRuns: 300, seed: 9 },
    );
  });

  it('a store record elides exactly the leaf children; filled in again it is the full record, and the node', () => {
    fc.assert(
      fc.property(nodeArb, (n) => {
        const stored = encodeNode(n);
        expect(elidedIndices(stored)).toEqual(leafMarks(n));
        expect(toHex(elideLeaves(encodeFull(n)))).toBe(toHex(stored));
        const full = expandRecord(n.path, stored, leavesOf(n));
        // a record with no leaf to fill in is kept as it is (it decodes the same)
        expect(toHex(full)).toBe(toHex(leafMarks(n).length ? encodeFull(n) : stored));
        const back = decodeNode(n.path, full);
        expect(shape(back)).toEqual(shape(n));
        expect(leafMarks(back)).toEqual(leafMarks(n));
        // an elided leaf costs its index byte only: a full child costs 2 + suffix + 32
        let saved = 0;
        for (const c of n.children) if (c?.leaf) saved += 1 + ((c.path.length - n.path.length) >> 1) + 32;
        expect(full.length - stored.length).toBe(saved);
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('writes elided leaves as their index byte with bit 4 set: the bytes of a record, worked by hand', () => {
    // a node at path [1], no digest, id 32×11; child 2 a leaf at 1 2 3 4 5 (id 32×22), child 7
    // a node at 1 7 (id 32×77). Flags 0e: packed, leaf marks, leaves elided.
    const n: TrieNode = {
      path: Uint8Array.of(1),
      digest: undefined,
      id: new Uint8Array(32).fill(0x11),
      children: Object.assign(new Array(16), { 2: { path: Uint8Array.of(1, 2, 3, 4, 5), id: new Uint8Array(32).fill(0x22), leaf: true }, 7: { path: Uint8Array.of(1, 7), id: new Uint8Array(32).fill(0x77) } }),
    };
    expect(toHex(encodeNode(n))).toBe(`0e${'11'.repeat(32)}02` + `12` + `0700` + '77'.repeat(32));
    // the cache's form (flags 06): the leaf marked and in full
    expect(toHex(encodeFull(n))).toBe(`06${'11'.repeat(32)}02` + `1203` + `3450` + '22'.repeat(32) + `0700` + '77'.repeat(32));
  });

  it('a record with elided leaves does not decode without their values (MissingField)', () => {
    const n: TrieNode = { path: Uint8Array.of(1), digest: undefined, id: new Uint8Array(32), children: Object.assign(new Array(16), { 4: { path: Uint8Array.of(1, 4, 0), id: new Uint8Array(32), leaf: true } }) };
    expect(() => decodeNode(n.path, encodeNode(n))).toThrow(expect.objectContaining({ name: 'MissingField' }));
    expect(() => expandRecord(n.path, encodeNode(n), [])).toThrow(expect.objectContaining({ name: 'MissingField' }));
  });

  it('writes suffixes two tokens per byte: the bytes of a record, worked by hand', () => {
    // a node at path [1] with no digest, id 32×11, and one child at index 2 with suffix 3 4 5
    const raw = encodeNode({ path: Uint8Array.of(1), digest: undefined, id: new Uint8Array(32).fill(0x11), children: Object.assign(new Array(16), { 2: { path: Uint8Array.of(1, 2, 3, 4, 5), id: new Uint8Array(32).fill(0x22) } }) });
    // flags 0e: packed, leaf marks (none here), leaves elided
    expect(toHex(raw)).toBe(`0e${'11'.repeat(32)}01` + `0203` + `3450` + '22'.repeat(32));
  });

  it('reads records of the unpacked layout (one token per byte) as stores written before packing hold them', () => {
    // the same node as above, flags 0: suffix bytes 03 04 05
    const old = Uint8Array.from(Buffer.from(`00${'11'.repeat(32)}01` + `0203` + `030405` + '22'.repeat(32), 'hex'));
    const n = decodeNode(Uint8Array.of(1), old);
    expect(shape(n)).toEqual({ path: '01', digest: undefined, id: '11'.repeat(32), children: [[2, '0102030405', '22'.repeat(32)]] });
    // and with a digest (flag 1), re-encoded packed
    const withDigest = Uint8Array.from(Buffer.from(`0102abcd${'11'.repeat(32)}01` + `0203` + `030405` + '22'.repeat(32), 'hex'));
    const back = decodeNode(Uint8Array.of(1), withDigest);
    expect(back.digest && toHex(back.digest)).toBe('abcd');
    // rewritten packed; an old record does not say which children are leaves: written in full
    expect(toHex(encodeNode(back))).toBe(`0f02abcd${'11'.repeat(32)}01` + `0203` + `3450` + '22'.repeat(32));
    // and packed records without leaf marks (flags 2 and 3, as stores written before elision hold)
    const packed = Uint8Array.from(Buffer.from(`02${'11'.repeat(32)}01` + `0203` + `3450` + '22'.repeat(32), 'hex'));
    expect(shape(decodeNode(Uint8Array.of(1), packed))).toEqual({ path: '01', digest: undefined, id: '11'.repeat(32), children: [[2, '0102030405', '22'.repeat(32)]] });
    expect(elidedIndices(packed)).toEqual([]);
    expect(expandRecord(Uint8Array.of(1), packed, [])).toBe(packed);
  });

  // a valid record to damage: digest 01, id 32×aa, two children (index 3 suffix 0a, index 9 no suffix)
  const path = Uint8Array.of(1, 2);
  const valid = encodeNode({
    path,
    digest: Uint8Array.of(1),
    id: new Uint8Array(32).fill(0xaa),
    children: Object.assign(new Array(16), { 3: { path: Uint8Array.of(1, 2, 3, 10), id: new Uint8Array(32).fill(3) }, 9: { path: Uint8Array.of(1, 2, 9), id: new Uint8Array(32).fill(9) } }),
  });
  const edit = (f: (b: Uint8Array) => void): Uint8Array => {
    const b = valid.slice();
    f(b);
    return b;
  };
  // offsets in `valid`: 0 flags, 1 digest length, 2 digest, 3..34 id, 35 count, 36 first index, 37 its
  // suffix length (1 token), 38 its packed suffix (a0)
  const hostile: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'TruncatedInput'],
    ['only the digest flag', Uint8Array.of(1), 'TruncatedInput'],
    ['a digest longer than the record', Uint8Array.of(1, 200, 0, 0), 'TruncatedInput'],
    ['no child count', valid.subarray(0, 35), 'TruncatedInput'],
    ['a child cut inside its id', valid.subarray(0, valid.length - 1), 'TruncatedInput'],
    ['a child count above what follows', edit((b) => (b[35] = 3)), 'TruncatedInput'],
    ['a suffix length past the end', edit((b) => (b[37] = 250)), 'TruncatedInput'],
    ['17 children', edit((b) => (b[35] = 17)), 'TooManyItems'],
    ['a child index byte with a bit above the leaf mark', edit((b) => (b[36] = 0x23)), 'InvalidChildIndex'],
    ['child indices out of order', edit((b) => (b[36] = 9)), 'InvalidChildIndex'],
    ['a byte after the last child', Uint8Array.of(...valid, 0), 'TrailingBytes'],
    ['fewer children than the bytes hold', edit((b) => (b[35] = 1)), 'TrailingBytes'],
    ['an odd suffix whose padding nibble is set', edit((b) => (b[38] = 0xa1)), 'NonZeroPaddingBits'],
    ['an unknown flag bit', edit((b) => (b[0] = 0x1f)), 'InvalidWireType'],
    ['leaves elided but not marked', edit((b) => (b[0] = 0x0b)), 'InvalidWireType'],
    ['leaves marked but not packed', edit((b) => (b[0] = 0x0d)), 'InvalidWireType'],
    // child 3 marked a leaf: elided, so its suffix and id bytes are left over
    ['a child marked as an elided leaf that is not one', edit((b) => (b[36] = 0x13)), 'InvalidChildIndex'],
  ];
  it.each(hostile)('a damaged record (%s) throws a typed error', (_, raw, name) => {
    expect(() => decodeNode(path, raw)).toThrow(expect.objectContaining({ name }));
  });

  // a store record with elided leaves to damage: child 3 an elided leaf, child 9 a node
  const compact = encodeNode({
    path,
    digest: Uint8Array.of(1),
    id: new Uint8Array(32).fill(0xaa),
    children: Object.assign(new Array(16), { 3: { path: Uint8Array.of(1, 2, 3, 10, 4), id: new Uint8Array(32).fill(3), leaf: true }, 9: { path: Uint8Array.of(1, 2, 9), id: new Uint8Array(32).fill(9) } }),
  });
  it('a compact record: any truncation throws TruncatedInput; a trailing byte, TrailingBytes', () => {
    expect(elidedIndices(compact)).toEqual([3]);
    for (let len = 0; len < compact.length; len++) {
      expect(() => elidedIndices(compact.subarray(0, len)), `length ${len}`).toThrow(expect.objectContaining({ name: 'TruncatedInput' }));
      expect(() => expandRecord(path, compact.subarray(0, len), [])).toThrow(expect.objectContaining({ name: 'TruncatedInput' }));
    }
    expect(() => elidedIndices(Uint8Array.of(...compact, 0))).toThrow(expect.objectContaining({ name: 'TrailingBytes' }));
  });

  it('any truncation of a valid record throws; none reads past the record', () => {
    for (let len = 0; len < valid.length; len++) expect(() => decodeNode(path, valid.subarray(0, len)), `length ${len}`).toThrow(expect.objectContaining({ name: 'TruncatedInput' }));
    expect(shape(decodeNode(path, valid)).children).toHaveLength(2);
  });

  it('random bytes decode to a well-formed node or throw a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (raw) => {
        let n: TrieNode;
        try {
          n = decodeNode(path, raw);
        } catch (err) {
          expect(['TruncatedInput', 'TrailingBytes', 'TooManyItems', 'InvalidChildIndex', 'NonZeroPaddingBits', 'InvalidWireType', 'MissingField']).toContain((err as Error).name);
          return;
        }
        expect(n.id).toHaveLength(32);
        for (const c of n.children) if (c) expect(c.id).toHaveLength(32);
      }),
      { numRuns: 2000, seed: 4 },
    );
  });
});
