/**
 * Named tamper cases. The conditions follow AvalancheGo's x/merkledb proof_test.go
 * (Test_RangeProof_Verify_Bad_Data, Test_RangeProof_Syntactic_Verify, Test_Proof_Inclusion,
 * Test_RangeProof_Extra_Value) on its "basic batch" {00:00, 01:01, 02:02, 03:03, 04:04};
 * the cases are written here against our own API.
 */
import { describe, expect, it } from 'vitest';
import { MerkleDatabase } from './database.ts';
import { MemoryStore } from './store.ts';
import { keyProof, verifyKeyProof, verifyRangeProof } from './proof.ts';
import { fromHex, toHex } from './bytes.ts';
import { keyToPath } from './path.ts';
import type { ProofNode, RangeProof } from './types.ts';

const b = (...xs: number[]) => new Uint8Array(xs);
const node = (hex: string): ProofNode => ({ key: keyToPath(fromHex(hex)), valueOrHash: undefined, children: new Map() });

async function basicDb() {
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.commit([0, 1, 2, 3, 4].map((i) => ({ key: b(i), value: b(i) })));
  return db;
}

describe('range proof: bad data (proof for [02, 0300] on the basic batch)', () => {
  const cases: [string, (p: RangeProof) => void, string | undefined][] = [
    ['happy path', () => {}, undefined],
    ['empty', (p) => { p.keyValues = []; p.startProof = []; p.endProof = []; }, 'EmptyProof'],
    ['start proof: last node lost its value', (p) => { p.startProof[p.startProof.length - 1].valueOrHash = undefined; }, 'ProofValueDoesntMatch'],
    ['end proof: odd-length key holds a value', (p) => { p.endProof[0].valueOrHash = b(1, 2); }, 'PartialByteLengthWithValue'],
    ['end proof: last node lost its value', (p) => { p.endProof[p.endProof.length - 1].valueOrHash = undefined; }, 'ProofValueDoesntMatch'],
    ['first key-value missing', (p) => { p.keyValues = p.keyValues.slice(1); }, 'ProofNodeHasUnincludedValue'],
    ['value altered', (p) => { p.keyValues[0] = { key: p.keyValues[0].key, value: b(9) }; }, 'ProofValueDoesntMatch'],
    ['child id altered', (p) => { const c = p.endProof[0].children; const [k, v] = [...c][0]; c.set(k, v.map((x) => x ^ 1)); }, 'InvalidProof'],
    ['end proof replaced by the (trimmed, one-node) start proof', (p) => { p.endProof = p.startProof; }, 'InvalidProof'],
    ['end proof removed', (p) => { p.endProof = []; }, 'NoEndProof'],
    ['too many keys', (p) => { p.keyValues = [...p.keyValues, ...p.keyValues]; }, 'TooManyKeys'],
  ];
  for (const [name, malform, err] of cases) {
    it(name, async () => {
      const db = await basicDb();
      const proof = await db.rangeProof(db.root, { start: b(2), end: b(3, 0), keyLimit: 3 });
      expect(proof.keyValues.length).toBe(2);
      malform(proof);
      const run = () => verifyRangeProof(proof, { root: db.root, start: b(2), end: b(3, 0), keyLimit: 3 });
      if (err) expect(run).toThrow(expect.objectContaining({ name: err }));
      else expect(run).not.toThrow();
    });
  }

  it('an extra key past the end proof', async () => {
    const db = await basicDb();
    const proof = await db.rangeProof(db.root, { start: b(1), end: b(5, 5), keyLimit: 10 });
    verifyRangeProof(proof, { root: db.root, start: b(1), end: b(5, 5), keyLimit: 10 });
    proof.keyValues.push({ key: b(5), value: b(5) });
    expect(() => verifyRangeProof(proof, { root: db.root, start: b(1), end: b(5, 5), keyLimit: 10 })).toThrow(
      expect.objectContaining({ name: 'ExclusionProofInvalidNode' }),
    );
  });

  it('a proof checked against another root', async () => {
    const db = await basicDb();
    const proof = await db.rangeProof(db.root, { start: b(2), end: b(3, 0), keyLimit: 3 });
    expect(() => verifyRangeProof(proof, { root: new Uint8Array(32).fill(7), start: b(2), end: b(3, 0), keyLimit: 3 })).toThrow(
      expect.objectContaining({ name: 'InvalidProof' }),
    );
  });
});

describe('range proof: syntax (checked before any hashing)', () => {
  const kv = (k: number, v: number) => ({ key: b(k), value: b(v) });
  const cases: [string, Uint8Array | undefined, Uint8Array | undefined, RangeProof, string][] = [
    ['start > end', b(1), b(0), { startProof: [], endProof: [], keyValues: [] }, 'StartAfterEnd'],
    ['empty', b(1), undefined, { startProof: [], endProof: [], keyValues: [] }, 'EmptyProof'],
    ['unexpected end proof', undefined, undefined, { startProof: [node('')], endProof: [node('')], keyValues: [] }, 'UnexpectedEndProof'],
    ['unexpected start proof', undefined, b(1), { startProof: [node('')], endProof: [node('')], keyValues: [] }, 'UnexpectedStartProof'],
    ['no end proof (has end bound)', b(1), b(1), { startProof: [node('')], endProof: [], keyValues: [] }, 'NoEndProof'],
    ['no end proof (has key-values)', undefined, undefined, { startProof: [], endProof: [], keyValues: [kv(0, 0)] }, 'NoEndProof'],
    ['unsorted key-values', undefined, undefined, { startProof: [], endProof: [node('')], keyValues: [kv(1, 1), kv(0, 0)] }, 'NonIncreasingValues'],
    ['duplicate key-values', undefined, undefined, { startProof: [], endProof: [node('')], keyValues: [kv(1, 1), kv(1, 1)] }, 'NonIncreasingValues'],
    ['key lower than start', b(1), undefined, { startProof: [node('')], endProof: [node('')], keyValues: [kv(0, 0)] }, 'StateFromOutsideOfRange'],
    ['key greater than end', undefined, b(1), { startProof: [], endProof: [node('')], keyValues: [kv(2, 0)] }, 'StateFromOutsideOfRange'],
    [
      'start proof nodes in wrong order',
      b(1),
      undefined,
      { startProof: [node('02'), node('01')], endProof: [node('0102')], keyValues: [{ key: b(1, 2), value: b(1) }] },
      'ProofNodeNotForKey',
    ],
    [
      'start proof has a node for another key',
      b(1, 2),
      undefined,
      { startProof: [node('01'), node('010203'), node('01020304')], endProof: [node('0102')], keyValues: [{ key: b(1, 2), value: b(1) }] },
      'ProofNodeNotForKey',
    ],
    [
      'end proof nodes in wrong order',
      undefined,
      b(1, 2),
      { startProof: [], endProof: [node('02'), node('01'), node('0102')], keyValues: [{ key: b(1, 2), value: b(1) }] },
      'ProofNodeNotForKey',
    ],
  ];
  for (const [name, start, end, proof, err] of cases) {
    it(name, () => {
      expect(() => verifyRangeProof(proof, { root: new Uint8Array(32), start, end, keyLimit: 10 })).toThrow(expect.objectContaining({ name: err }));
    });
  }
});

describe('single-key proofs on the basic batch', () => {
  it('inclusion: happy path, and the tampered variants', async () => {
    const db = await basicDb();
    for (const k of [0, 1, 2, 3, 4]) {
      const { value, proof } = await keyProof(db.trie.view(), b(k));
      verifyKeyProof(db.root, b(k), value, proof);
      const lastNoValue = proof.map((n, i) => (i === proof.length - 1 ? { ...n, valueOrHash: undefined } : n));
      expect(() => verifyKeyProof(db.root, b(k), value, lastNoValue)).toThrow(expect.objectContaining({ name: 'ProofValueDoesntMatch' }));
      expect(() => verifyKeyProof(db.root, b(k), undefined, proof)).toThrow(expect.objectContaining({ name: 'ProofNodeHasUnincludedValue' }));
      expect(() => verifyKeyProof(db.root, b(k), b(5), proof)).toThrow(expect.objectContaining({ name: 'ProofValueDoesntMatch' }));
    }
  });
  it('exclusion: happy path; a claimed value is rejected', async () => {
    const db = await basicDb();
    for (const k of [5, 6, 7, 8]) {
      const { value, proof } = await keyProof(db.trie.view(), b(k));
      expect(value).toBeUndefined();
      verifyKeyProof(db.root, b(k), undefined, proof);
      expect(() => verifyKeyProof(db.root, b(k), new Uint8Array(0), proof)).toThrow(expect.objectContaining({ name: 'ExclusionProofUnexpectedValue' }));
    }
  });
  it('a root node value altered, a wrong prefix, an empty proof', async () => {
    const db = await MerkleDatabase.open(new MemoryStore());
    await db.commit([[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]].map((k) => ({ key: b(...k), value: b(0) })));
    for (const key of [b(1, 2, 3, 4), b(1, 2, 3, 4, 5, 6)]) {
      const { value, proof } = await keyProof(db.trie.view(), key);
      verifyKeyProof(db.root, key, value, proof);
      const altered = [{ ...proof[0], valueOrHash: b(10) }, ...proof.slice(1)];
      expect(() => verifyKeyProof(db.root, key, value, altered)).toThrow(expect.objectContaining({ name: 'InvalidProof' }));
      const wrongPrefix = [{ ...proof[0], key: keyToPath(b(7)) }, ...proof.slice(1)];
      expect(() => verifyKeyProof(db.root, key, value, wrongPrefix)).toThrow(expect.objectContaining({ name: 'ProofNodeNotForKey' }));
    }
    expect(() => verifyKeyProof(db.root, b(1), b(0), [])).toThrow(expect.objectContaining({ name: 'EmptyKeyProof' }));
  });
});

describe('history across a trie written without the database', () => {
  it('reopening drops history that cannot lead to the current root', async () => {
    const store = new MemoryStore();
    const db = await MerkleDatabase.open(store);
    await db.commit([{ key: b(1), value: b(1) }]);
    const r1 = db.root;
    await db.commit([{ key: b(2), value: b(2) }]);
    // a state sync writes through the trie alone
    await db.trie.commit([{ key: b(3), value: b(3) }]);
    const again = await MerkleDatabase.open(store);
    expect(again.roots().map(toHex)).toEqual([toHex(again.root)]);
    // a change proof from a root before the gap is answered with a range proof, which verifies
    const res = await again.changeProof(r1, again.root, { keyLimit: 10 });
    expect(res.type).toBe('range');
    verifyRangeProof(res.proof as RangeProof, { root: again.root, keyLimit: 10 });
  });
});
