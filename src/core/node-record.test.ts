import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { builtToNode, decodeNode, encodeBuilt, encodeNode, type TrieNode } from './node-record.ts';
import { buildRoot, itemsFromKeyValues } from './builder.ts';
import { toHex } from './bytes.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 }).map((k) => k.map((b) => b & 0x13)); // small alphabet: many shared prefixes
const valArb = fc.uint8Array({ minLength: 0, maxLength: 40 });

/** A node at a random path with random children (each child's path extends `path ++ index`). */
const nodeArb = fc
  .record({
    path: fc.uint8Array({ maxLength: 8 }).map((p) => p.map((t) => t & 15)),
    digest: fc.option(fc.uint8Array({ minLength: 0, maxLength: 32 }), { nil: undefined }),
    id: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    kids: fc.array(fc.record({ index: fc.integer({ min: 0, max: 15 }), suffix: fc.uint8Array({ maxLength: 10 }).map((p) => p.map((t) => t & 15)), id: fc.uint8Array({ minLength: 32, maxLength: 32 }) }), { maxLength: 16 }),
  })
  .map(({ path, digest, id, kids }): TrieNode => {
    const children: TrieNode['children'] = new Array(16);
    for (const k of kids) children[k.index] = { path: Uint8Array.of(...path, k.index, ...k.suffix), id: k.id };
    return { path, digest, children, id };
  });

/** What a node holds, comparable with `toEqual` (children as a dense list of index, path, id). */
const shape = (n: TrieNode) => ({
  path: toHex(n.path),
  digest: n.digest && toHex(n.digest),
  id: toHex(n.id),
  children: n.children.flatMap((c, i) => (c ? [[i, toHex(c.path), toHex(c.id)]] : [])),
});

describe('node records', () => {
  it('a node record encoded from the builder\'s node equals the record of the trie node', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ key: keyArb, value: valArb }), { maxLength: 40 }), (kvs) => {
        const unique = [...new Map(kvs.map((kv) => [toHex(kv.key), kv])).values()];
        let branches = 0;
        buildRoot(itemsFromKeyValues(unique), (n) => {
          if (!n.children.some((c) => c !== undefined)) return;
          branches++;
          expect(toHex(encodeBuilt(n))).toBe(toHex(encodeNode(builtToNode(n))));
        });
        expect(branches).toBeLessThanOrEqual(unique.length);
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  it('decode(encode(node)) is the node, for any digest, path and children', () => {
    fc.assert(
      fc.property(nodeArb, (n) => {
        const raw = encodeNode(n);
        const back = decodeNode(n.path, raw);
        expect(shape(back)).toEqual(shape(n));
        expect(back.stored).toBe(true);
        expect(toHex(encodeNode(back))).toBe(toHex(raw));
      }),
      { numRuns: 300, seed: 9 },
    );
  });

  it('writes suffixes two tokens per byte: the bytes of a record, worked by hand', () => {
    // a node at path [1] with no digest, id 32×11, and one child at index 2 with suffix 3 4 5
    const raw = encodeNode({ path: Uint8Array.of(1), digest: undefined, id: new Uint8Array(32).fill(0x11), children: Object.assign(new Array(16), { 2: { path: Uint8Array.of(1, 2, 3, 4, 5), id: new Uint8Array(32).fill(0x22) } }) });
    expect(toHex(raw)).toBe(`02${'11'.repeat(32)}01` + `0203` + `3450` + '22'.repeat(32));
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
    expect(toHex(encodeNode(back))).toBe(`0302abcd${'11'.repeat(32)}01` + `0203` + `3450` + '22'.repeat(32));
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
    ['a child index of 16', edit((b) => (b[36] = 16)), 'InvalidChildIndex'],
    ['child indices out of order', edit((b) => (b[36] = 9)), 'InvalidChildIndex'],
    ['a byte after the last child', Uint8Array.of(...valid, 0), 'TrailingBytes'],
    ['fewer children than the bytes hold', edit((b) => (b[35] = 1)), 'TrailingBytes'],
    ['an odd suffix whose padding nibble is set', edit((b) => (b[38] = 0xa1)), 'NonZeroPaddingBits'],
    ['an unknown flag bit', edit((b) => (b[0] = 7)), 'InvalidWireType'],
  ];
  it.each(hostile)('a damaged record (%s) throws a typed error', (_, raw, name) => {
    expect(() => decodeNode(path, raw)).toThrow(expect.objectContaining({ name }));
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
          expect(['TruncatedInput', 'TrailingBytes', 'TooManyItems', 'InvalidChildIndex', 'NonZeroPaddingBits', 'InvalidWireType']).toContain((err as Error).name);
          return;
        }
        expect(n.id).toHaveLength(32);
        for (const c of n.children) if (c) expect(c.id).toHaveLength(32);
      }),
      { numRuns: 2000, seed: 4 },
    );
  });
});
