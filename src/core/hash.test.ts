import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hashNode, NodeMidstates, valueDigest } from './hash.ts';
import { buildRoot, itemsFromKeyValues } from './builder.ts';
import { keyToPath } from './path.ts';
import { fromHex, toHex } from './bytes.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const none = () => new Array<Uint8Array | undefined>(16);

// docs/hashing.md#node-id, node hash vectors from AvalancheGo hashing_test.go
describe('node hash vectors (AvalancheGo hashing_test.go)', () => {
  it('empty key, no value, no children', () => {
    expect(toHex(hashNode(new Uint8Array(0), undefined, none()))).toBe(
      '709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c',
    );
  });
  it('empty key, value "value1"', () => {
    expect(toHex(hashNode(new Uint8Array(0), valueDigest(utf8('value1')), none()))).toBe(
      'fe318e84f0535833fb3bf7a3714a52642fbd0d17279bfc22b1baec0e3e7b0194',
    );
  });
  it('key 0x0001020304050607, no value', () => {
    expect(toHex(hashNode(keyToPath(fromHex('0001020304050607')), undefined, none()))).toBe(
      'fc6587cf678733b4adb458b03b52be5d6068210749a6b18b5e11587e16e776bb',
    );
  });
  it('empty key; one child [0xff] = "value1"', () => {
    const child = hashNode(keyToPath(fromHex('ff')), valueDigest(utf8('value1')), none());
    const c = none();
    c[15] = child;
    expect(toHex(hashNode(new Uint8Array(0), undefined, c))).toBe('47e3823b19d4b133d4eb9eacf19976d39923c434c6db6f95131635bcf8a002d8');
  });
  it('empty key; children [0xff]="value1", [0xed]="value2"', () => {
    const c = none();
    c[15] = hashNode(keyToPath(fromHex('ff')), valueDigest(utf8('value1')), none());
    c[14] = hashNode(keyToPath(fromHex('ed')), valueDigest(utf8('value2')), none());
    expect(toHex(hashNode(new Uint8Array(0), undefined, c))).toBe('4783fbc68d966ca56c8ff812ba83e4be5e361743b89b78df6e6ad38335730c1c');
  });
  it('empty key; 16 children [i<<4] = "some value"', () => {
    const c = none();
    for (let i = 0; i < 16; i++) c[i] = hashNode(keyToPath(new Uint8Array([i << 4])), valueDigest(utf8('some value')), none());
    expect(toHex(hashNode(new Uint8Array(0), undefined, c))).toBe('0a52eda52af8012286851a9107e3ead3a0ab2e1abf36a28f3f63b09e043be8c1');
  });
});

// docs/hashing.md#node-id, whole-trie roots from Firewood's merkledb-compatible cases
const rootCases: [string, [string, string][], string][] = [
  ['empty', [], '00'.repeat(32)],
  ['00→00', [['00', '00']], '073615413d814b23383fc2c8d8af13abfffcb371b654b98dbf47dd74b1e4d1b9'],
  ['0001→0001', [['0001', '0001']], '28e67ae4054c8cdf3506567aa43f122224fe65ef1ab3e7b7899f75448a69a6fd'],
  ['00→32×01', [['00', '01'.repeat(32)]], 'ba0283637f46fa807280b7d08013710af08dfdc236b9b22f9d66e60592d6c8a3'],
  ['00→00, 0001→32×01', [['00', '00'], ['0001', '01'.repeat(32)]], '3edbf1fdd345db01e47655bcd0a9a456857c4093188cf35c5c89b8b0fb3de17e'],
  ['00→00, 0001→0001', [['00', '00'], ['0001', '0001']], 'c3bdc20aff5cba30f81ffd7689e94e1dbeece4a08e27f0104262431604cf45c6'],
  ['three nested', [['00', '00'], ['0001', '0001'], ['000102', '000102']], '229011c50ad4d5c2f4efe02b8db54f361ad295c4eee2bf76ea4ad1bb92676f97'],
  [
    'four',
    [['00', '00'], ['0001', '0001'], ['0008', '0008'], ['000102', '000102']],
    'a683b4881cb540b969f885f538ba5904699d480152f350659475a962d6240ef9',
  ],
];

describe('trie root vectors (Firewood merkledb mode)', () => {
  for (const [name, kvs, root] of rootCases) {
    it(name, () => {
      const items = itemsFromKeyValues(kvs.map(([k, v]) => ({ key: fromHex(k), value: fromHex(v) })));
      expect(toHex(buildRoot(items))).toBe(root);
    });
  }
  it('worked pre-image of leaf 0001', () => {
    // spec: leaf 0001 hashes `00 01 02 0001 10 0001`
    const leaf = hashNode(keyToPath(fromHex('0001')), fromHex('0001'), none());
    const c = none();
    c[0] = leaf;
    const root = hashNode(keyToPath(fromHex('00')), fromHex('00'), c);
    expect(toHex(root)).toBe('c3bdc20aff5cba30f81ffd7689e94e1dbeece4a08e27f0104262431604cf45c6');
  });
});

describe('hashNode with NodeMidstates', () => {
  it('equals a fresh hash after each edit: child ids replaced (patched in place), children added or removed, digest changed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ slot: fc.nat(15), kind: fc.constantFrom('replace', 'replace', 'replace', 'remove', 'digest'), seed: fc.nat(255) }), { minLength: 1, maxLength: 40 }),
        (edits) => {
          const id = (seed: number, slot: number) => Uint8Array.from({ length: 32 }, (_, i) => (seed * 7 + slot * 13 + i) & 255);
          const children: (Uint8Array | undefined)[] = Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? undefined : id(i, i)));
          let digest: Uint8Array | undefined;
          const path = Uint8Array.of(1, 2);
          const m = new NodeMidstates();
          expect(toHex(hashNode(path, digest, children, m))).toBe(toHex(hashNode(path, digest, children)));
          for (const e of edits) {
            if (e.kind === 'replace') children[e.slot] = id(e.seed, e.slot);
            else if (e.kind === 'remove') children[e.slot] = undefined;
            else digest = e.seed % 2 ? undefined : id(e.seed, 99);
            expect(toHex(hashNode(path, digest, children, m))).toBe(toHex(hashNode(path, digest, children)));
          }
        },
      ),
      { numRuns: 300, seed: 5 },
    );
  });
});
