import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from './bytes.ts';
import {
  InvalidMmrProof,
  Mmr,
  MmrFrontier,
  leafPosition,
  mmrRoots,
  mmrSize,
  peaksOf,
  pinnedNodes,
  rangeProof,
  verifyPinnedNodes,
  verifyRangeProof,
  type InvalidMmrProofReason,
} from './mmr.ts';

const FC = { seed: 20240611, numRuns: 120 };

function u64(i: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(i));
  return b;
}
/** The vector elements of docs/mmr.md#hashing: element i = SHA-256(u64be(i)). */
const element = (i: number): Uint8Array => sha256(u64(i));
const elements = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => element(i));

function build(els: Uint8Array[]): Mmr {
  const m = new Mmr();
  for (const e of els) m.append(e);
  return m;
}

/**
 * An independent root: split n into perfect trees by its binary digits and hash each tree
 * recursively in post-order, counting positions as it goes (no use of the module's position
 * arithmetic).
 */
function naiveRoot(els: Uint8Array[]): Uint8Array {
  const n = els.length;
  let pos = 0;
  let leaf = 0;
  const tree = (leaves: number): Uint8Array => {
    if (leaves === 1) return sha256(concatBytes(u64(pos++), els[leaf++]));
    const l = tree(leaves / 2);
    const r = tree(leaves / 2);
    return sha256(concatBytes(u64(pos++), l, r));
  };
  const peaks: Uint8Array[] = [];
  for (let h = 30; h >= 0; h--) if (n & (1 << h)) peaks.push(tree(1 << h));
  if (peaks.length === 0) return sha256(u64(0));
  let fold = peaks[0];
  for (const p of peaks.slice(1)) fold = sha256(concatBytes(fold, p));
  return sha256(concatBytes(u64(n), fold));
}

function rejects(f: () => void, reason?: InvalidMmrProofReason): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidMmrProof);
    expect((e as Error).name).toBe('InvalidMmrProof');
    if (reason) expect((e as InvalidMmrProof).reason).toBe(reason);
    return;
  }
  throw new Error('expected InvalidMmrProof, nothing was thrown');
}

/** An MMR size with a non-empty range inside it. */
const sizedRange = fc
  .integer({ min: 1, max: 300 })
  .chain((n) =>
    fc
      .tuple(fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: n }))
      .map(([s, len]) => ({ n, start: s, end: Math.min(n, s + len) })),
  );

describe('public vectors (docs/mmr.md#hashing)', () => {
  const vectors: [number, string][] = [
    [0, 'af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc'],
    [1, '7676407563b96f8f78658b5b6fd523b190634cf5435393a66d62986a35cdd838'],
    [2, 'df6cbde68147ea5ad3282787273c2570137d8ac55e9815049cf8098aed18bff1'],
    [3, '9298d0091664cf4cce531b3e9e63aabd9b4782ba78d5512ddb5d8a2a3b7adbdf'],
    [11, 'a39bd2d0f3ca6dd403db3177a55ade675a4a03dd2e764077e0d9ef76ab346fc1'],
  ];
  const roots = mmrRoots(elements(11));
  for (const [n, hex] of vectors) {
    it(`root over ${n} leaves`, () => {
      expect(toHex(build(elements(n)).root())).toBe(hex);
      expect(toHex(roots[n])).toBe(hex);
      expect(toHex(naiveRoot(elements(n)))).toBe(hex);
    });
  }
  it('11 leaves: 19 nodes, peaks at 14 (h3), 17 (h1), 18 (h0)', () => {
    expect(mmrSize(11)).toBe(19);
    expect(build(elements(11)).size).toBe(19);
    expect(peaksOf(11).map((p) => [p.pos, p.height])).toEqual([
      [14, 3],
      [17, 1],
      [18, 0],
    ]);
  });
});

describe('positions', () => {
  it('leaf positions match a post-order enumeration', () => {
    const m = new Mmr();
    for (let i = 0; i < 200; i++) expect(m.append(element(i))).toBe(leafPosition(i));
    expect(m.size).toBe(mmrSize(200));
  });
  it('positions beyond 2^32 stay exact', () => {
    expect(leafPosition(2 ** 40)).toBe(2 ** 41 - 1);
    expect(mmrSize(2 ** 40 + 3)).toBe(2 * (2 ** 40 + 3) - 3);
  });
  it('rejects bad counts', () => {
    expect(() => mmrSize(-1)).toThrow(RangeError);
    expect(() => peaksOf(1.5)).toThrow(RangeError);
  });
});

describe('roots', () => {
  it('mmrRoots matches the naive root after every prefix', () => {
    const els = elements(70);
    const roots = mmrRoots(els);
    expect(roots).toHaveLength(71);
    for (let k = 0; k <= 70; k++) expect(toHex(roots[k])).toBe(toHex(naiveRoot(els.slice(0, k))));
  });
  it('historical roots equal the roots of the prefix', () => {
    const m = build(elements(40));
    const roots = mmrRoots(elements(40));
    for (let k = 0; k <= 40; k++) expect(toHex(m.root(k))).toBe(toHex(roots[k]));
  });
  it('node() refuses positions beyond the MMR', () => {
    expect(() => build(elements(3)).node(4)).toThrow(RangeError);
  });
});

describe('range proofs', () => {
  it('any generated proof verifies, against the naive root too', () => {
    fc.assert(
      fc.property(sizedRange, ({ n, start, end }) => {
        const els = elements(n);
        const m = build(els);
        const root = naiveRoot(els);
        expect(toHex(m.root())).toBe(toHex(root));
        verifyRangeProof(root, n, start, els.slice(start, end), rangeProof(m, start, end));
      }),
      FC,
    );
  });

  it('a proof against a historical leaf count verifies against that root', () => {
    fc.assert(
      fc.property(sizedRange, fc.integer({ min: 0, max: 50 }), ({ n, start, end }, more) => {
        const all = elements(n + more);
        const m = build(all);
        verifyRangeProof(naiveRoot(all.slice(0, n)), n, start, all.slice(start, end), rangeProof(m, start, end, n));
      }),
      FC,
    );
  });

  it('any altered digest, count, start, element, extra or missing digest is rejected', () => {
    const tamper = fc.constantFrom(
      'digest',
      'drop',
      'extra',
      'countUp',
      'countDown',
      'start',
      'element',
      'elementExtra',
      'elementDrop',
      'root',
      'swap',
    );
    fc.assert(
      fc.property(sizedRange, tamper, fc.nat(), fc.integer({ min: 0, max: 255 }), ({ n, start, end }, how, pick, bit) => {
        const els = elements(n);
        const m = build(els);
        const root = m.root();
        const proof = rangeProof(m, start, end);
        let digests: Uint8Array[] = proof.digests.map((d) => d.slice());
        let batch: Uint8Array[] = els.slice(start, end).map((e) => e.slice());
        let count = n;
        let s = start;
        const r: Uint8Array = root.slice();
        const flip = (b: Uint8Array): void => {
          b[pick % b.length] ^= 1 << bit % 8;
        };
        switch (how) {
          case 'digest':
            if (digests.length === 0) return;
            flip(digests[pick % digests.length]);
            break;
          case 'drop':
            if (digests.length === 0) return;
            digests.splice(pick % digests.length, 1);
            break;
          case 'extra':
            digests.splice(pick % (digests.length + 1), 0, element(pick));
            break;
          case 'countUp':
            count = n + 1 + (pick % 3);
            break;
          case 'countDown':
            if (end >= n) count = end - 1; // then out of range
            else count = n - 1;
            break;
          case 'start':
            s = pick % 2 === 0 ? start + 1 : start - 1;
            if (s < 0) s = start + 1;
            break;
          case 'element':
            flip(batch[pick % batch.length]);
            break;
          case 'elementExtra':
            batch = [...batch, element(n + 1)];
            break;
          case 'elementDrop':
            batch = batch.slice(0, -1);
            break;
          case 'root':
            flip(r);
            break;
          case 'swap':
            if (digests.length < 2) return;
            digests = [digests[1], digests[0], ...digests.slice(2)];
            if (toHex(digests[0]) === toHex(digests[1])) return;
            break;
        }
        rejects(() => verifyRangeProof(r, count, s, batch, { digests }));
      }),
      { ...FC, numRuns: 400 },
    );
  });

  it('rule by rule', () => {
    const els = elements(11);
    const m = build(els);
    const root = m.root();
    const proof = rangeProof(m, 3, 6);
    rejects(() => verifyRangeProof(root, 11, 3, [], proof), 'EmptyRange');
    rejects(() => verifyRangeProof(root, 11, 10, els.slice(3, 6), proof), 'RangeOutOfBounds');
    rejects(() => verifyRangeProof(root, 11, 3, els.slice(3, 6), { digests: proof.digests.slice(1) }), 'MissingDigest');
    rejects(
      () => verifyRangeProof(root, 11, 3, els.slice(3, 6), { digests: [...proof.digests, root] }),
      'ExtraDigest',
    );
    rejects(
      () => verifyRangeProof(root, 11, 3, els.slice(3, 6), { digests: [proof.digests[0].slice(1), ...proof.digests.slice(1)] }),
      'InvalidDigestLength',
    );
    rejects(() => verifyRangeProof(m.root(10), 11, 3, els.slice(3, 6), proof), 'RootMismatch');
    rejects(() => verifyRangeProof(root, 12, 3, els.slice(3, 6), proof)); // a different shape
    rejects(() => verifyRangeProof(root, -1, 3, els.slice(3, 6), proof), 'InvalidLeafCount');
    rejects(() => verifyRangeProof(root, 11, 3, els.slice(3, 6), { digests: undefined } as never), 'MissingDigest');
    expect(() => verifyRangeProof(root.slice(1), 11, 3, els.slice(3, 6), proof)).toThrow(
      'expected 32-byte root, got 31',
    );
  });

  it('a whole-MMR proof has no digests; a single leaf of 11 has the documented order', () => {
    const m = build(elements(11));
    expect(rangeProof(m, 0, 11).digests).toEqual([]);
    // leaf 9 (position 16): peak 14, its sibling leaf 8 (position 15), then peak 18.
    expect(rangeProof(m, 9, 10).digests.map(toHex)).toEqual([m.node(14), m.node(15), m.node(18)].map(toHex));
  });

  it('rangeProof refuses bad ranges', () => {
    const m = build(elements(5));
    expect(() => rangeProof(m, 2, 2)).toThrow(RangeError);
    expect(() => rangeProof(m, 0, 6)).toThrow(RangeError);
    expect(() => rangeProof(m, 0, 3, 6)).toThrow(RangeError);
  });
});

describe('witness: the peaks a verified range proof yields', () => {
  it('before and after are the peaks over [0, start) and [0, end), for every range (property)', () => {
    fc.assert(
      fc.property(sizedRange, fc.integer({ min: 0, max: 40 }), ({ n, start, end }, more) => {
        const all = elements(n + more);
        const m = build(all);
        const w = verifyRangeProof(m.root(n), n, start, all.slice(start, end), rangeProof(m, start, end, n));
        expect(w.before.map(toHex)).toEqual(m.peakDigests(start).map(toHex));
        expect(w.after.map(toHex)).toEqual(m.peakDigests(end).map(toHex));
        const p = verifyPinnedNodes(m.root(n), n, start, all.slice(start, end), rangeProof(m, start, end, n), pinnedNodes(m, start));
        expect(p.after.map(toHex)).toEqual(w.after.map(toHex));
      }),
      FC,
    );
  });

  it('every range of a 70-leaf MMR, exhaustively', () => {
    const els = elements(70);
    const m = build(els);
    for (let start = 0; start < 70; start++) {
      for (let end = start + 1; end <= 70; end++) {
        const w = verifyRangeProof(m.root(), 70, start, els.slice(start, end), rangeProof(m, start, end));
        expect(w.after.map(toHex)).toEqual(m.peakDigests(end).map(toHex));
      }
    }
  });

  it('a frontier advanced batch by batch with the witnesses equals one that hashed every element', () => {
    const els = elements(300);
    const m = build(els);
    const hashed = MmrFrontier.fromPeaks(0, []);
    const advanced = MmrFrontier.fromPeaks(0, []);
    for (let start = 0, size = 1; start < 300; start += size, size = (size * 7 + 3) % 61 || 1) {
      const end = Math.min(300, start + size);
      const w = verifyRangeProof(m.root(), 300, start, els.slice(start, end), rangeProof(m, start, end));
      expect(advanced.hasPeaks(w.before)).toBe(true);
      advanced.advance(end, w.after);
      for (const e of els.slice(start, end)) hashed.append(e);
      expect(advanced.peaks().map(toHex)).toEqual(hashed.peaks().map(toHex));
      expect(toHex(advanced.root())).toBe(toHex(m.root(end)));
    }
    expect(() => advanced.advance(10, m.peakDigests(10))).toThrow(RangeError);
    expect(() => advanced.advance(301, [])).toThrow(RangeError);
  });
});

describe('staged appends', () => {
  it('nodesForAppend then appendNodes equals append; nothing moves before appendNodes', () => {
    const els = elements(40);
    const a = new Mmr();
    const b = new Mmr();
    for (const e of els) {
      a.append(e);
      const nodes = b.nodesForAppend(e);
      expect(b.leafCount).toBe(a.leafCount - 1);
      b.appendNodes(nodes);
      expect(toHex(b.root())).toBe(toHex(a.root()));
    }
    expect(b.size).toBe(mmrSize(40));
    expect(() => b.appendNodes([new Uint8Array(32), new Uint8Array(32)])).toThrow(RangeError); // leaf 40 merges 0 times
    expect(() => b.appendNodes([new Uint8Array(31)])).toThrow(RangeError);
  });
});

describe('pinned nodes', () => {
  it('an MMR started from pinned nodes reaches the same roots', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 100 }), (lower, more) => {
        const els = elements(lower + more);
        const full = build(els);
        const tail = Mmr.fromPinned(lower, pinnedNodes(full, lower));
        expect(tail.prunedLeaves).toBe(lower);
        expect(toHex(tail.root())).toBe(toHex(full.root(lower)));
        for (let i = lower; i < lower + more; i++) {
          tail.append(els[i]);
          expect(tail.size).toBe(mmrSize(i + 1));
        }
        expect(toHex(tail.root())).toBe(toHex(naiveRoot(els)));
      }),
      { ...FC, numRuns: 60 },
    );
  });

  it('a pinned MMR proves ranges at or after its lower bound like the full one', () => {
    fc.assert(
      fc.property(sizedRange, fc.nat(), ({ n, start, end }, seed) => {
        const lower = seed % (start + 1);
        const els = elements(n);
        const full = build(els);
        const tail = Mmr.fromPinned(lower, pinnedNodes(full, lower));
        for (let i = lower; i < n; i++) tail.append(els[i]);
        expect(rangeProof(tail, start, end).digests.map(toHex)).toEqual(rangeProof(full, start, end).digests.map(toHex));
      }),
      { ...FC, numRuns: 60 },
    );
  });

  it('pinned nodes verify with the proof of a batch at lower; tampered ones are rejected', () => {
    fc.assert(
      fc.property(sizedRange, fc.nat(), ({ n, start, end }, pick) => {
        const els = elements(n);
        const m = build(els);
        const root = m.root();
        const proof = rangeProof(m, start, end);
        const pinned = pinnedNodes(m, start);
        const batch = els.slice(start, end);
        verifyPinnedNodes(root, n, start, batch, proof, pinned);
        if (pinned.length > 0) {
          const bad = pinned.map((d) => d.slice());
          bad[pick % bad.length][pick % 32] ^= 0x80;
          rejects(() => verifyPinnedNodes(root, n, start, batch, proof, bad), 'PinnedNodeMismatch');
          rejects(() => verifyPinnedNodes(root, n, start, batch, proof, pinned.slice(1)), 'PinnedCountMismatch');
        }
        rejects(() => verifyPinnedNodes(root, n, start, batch, proof, [...pinned, root]), 'PinnedCountMismatch');
      }),
      FC,
    );
  });

  it('fromPinned checks its input', () => {
    expect(() => Mmr.fromPinned(3, [new Uint8Array(32)])).toThrow('expected 2 pinned nodes for lower bound 3, got 1');
    expect(() => Mmr.fromPinned(1, [new Uint8Array(31)])).toThrow('expected 32-byte pinned node 0, got 31');
    const tail = Mmr.fromPinned(4, [fromHex('00'.repeat(32))]);
    expect(() => tail.node(2)).toThrow('position 2 is pruned');
    expect(tail.node(6)).toEqual(new Uint8Array(32));
  });
});
