import { describe, expect, it } from 'vitest';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { verifyRangeProof } from '../../core/proof.ts';
import { sha256 } from '../../core/sha256.ts';
import { MemoryStore } from '../../core/store.ts';
import type { KeyChange, RangeProofRequest } from '../../core/types.ts';
import { encodeRangeProofRequest } from '../../protocol/codec.ts';
import {
  CANONICAL_BYTES_LIMIT,
  CANONICAL_KEY_LIMIT,
  CANONICAL_PARTS,
  canonicalParts,
  canonicalRangeRequest,
  canonicalResume,
  requestKey,
} from './plan.ts';
import { fromInclusive, prefixRange } from './ranges.ts';
import { randomBytes, randomPuts, seededRandom } from './testing.ts';

const hex = (b: Uint8Array | undefined) => (b === undefined ? undefined : toHex(b));
const ROOT = new Uint8Array(32).fill(7);

describe('canonicalParts', () => {
  it('cuts the key space into 64 contiguous parts by the top 6 bits of the first byte', () => {
    const parts = canonicalParts();
    expect(parts).toHaveLength(CANONICAL_PARTS);
    expect(hex(parts[0].start)).toBe('');
    expect(hex(parts[0].end)).toBe('0400');
    expect([hex(parts[1].start), hex(parts[1].end)]).toEqual(['0400', '0800']);
    expect([hex(parts[63].start), hex(parts[63].end)]).toEqual(['fc00', undefined]);
    for (let i = 1; i < parts.length; i++) expect(hex(parts[i].start)).toBe(hex(parts[i - 1].end));
  });

  it('intersects the parts with synced ranges, dropping empty pieces', () => {
    const parts = canonicalParts([fromInclusive(prefixRange(fromHex('10'))), fromInclusive({ start: fromHex('fe'), end: undefined })]);
    expect(parts.map((p) => [hex(p.start), hex(p.end)])).toEqual([
      ['10', '1000'],
      ['1000', '1100'],
      ['fe', undefined],
    ]);
    // a range across many parts keeps the part boundaries
    const wide = canonicalParts([fromInclusive({ start: fromHex('02'), end: fromHex('0c') })]);
    expect(wide.map((p) => [hex(p.start), hex(p.end)])).toEqual([
      ['02', '0400'],
      ['0400', '0800'],
      ['0800', '0c00'],
    ]);
  });
});

describe('canonicalRangeRequest and requestKey', () => {
  it('asks for exactly [start, end) with the canonical limits', () => {
    const [first, second] = canonicalParts();
    expect(canonicalRangeRequest(ROOT, first.start, first.end)).toEqual({
      rootHash: ROOT,
      startKey: undefined,
      endKey: fromHex('04'),
      keyLimit: CANONICAL_KEY_LIMIT,
      bytesLimit: CANONICAL_BYTES_LIMIT,
    });
    const r = canonicalRangeRequest(ROOT, second.start, second.end);
    expect([hex(r.startKey), hex(r.endKey)]).toEqual(['0400', '08']);
    expect(() => canonicalRangeRequest(ROOT, second.start, fromHex('08'))).toThrow('not a boundary');
    expect(() => canonicalRangeRequest(new Uint8Array(31), second.start, second.end)).toThrow('32-byte root');
  });

  it('is the SHA-256 of the wire encoding, in lowercase hex, and tells requests apart', () => {
    const parts = canonicalParts();
    const reqs = parts.map((p) => canonicalRangeRequest(ROOT, p.start, p.end));
    expect(requestKey(reqs[5])).toBe(toHex(sha256(encodeRangeProofRequest(reqs[5]))));
    expect(requestKey(reqs[5])).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(reqs.map(requestKey)).size).toBe(CANONICAL_PARTS);
    expect(requestKey(canonicalRangeRequest(new Uint8Array(32).fill(8), parts[5].start, parts[5].end))).not.toBe(requestKey(reqs[5]));
  });
});

describe('canonicalResume', () => {
  /** Runs the plan against `db` at its root; returns every request and the keys received. */
  async function runPlan(db: MerkleDatabase, root: Uint8Array) {
    const requests: RangeProofRequest[] = [];
    const keys: Uint8Array[] = [];
    for (const part of canonicalParts()) {
      let req: RangeProofRequest | undefined = canonicalRangeRequest(root, part.start, part.end);
      while (req) {
        requests.push(req);
        const proof = await db.rangeProof(root, { start: req.startKey, end: req.endKey, keyLimit: req.keyLimit });
        verifyRangeProof(proof, { root, start: req.startKey, end: req.endKey, keyLimit: req.keyLimit });
        keys.push(...proof.keyValues.map((kv) => kv.key));
        const next = canonicalResume(req, proof);
        if (next) {
          expect(compareBytes(next.startKey!, proof.keyValues[proof.keyValues.length - 1].key)).toBeGreaterThan(0);
          expect(hex(next.endKey)).toBe(hex(req.endKey));
        }
        req = next;
      }
    }
    return { requests, keys };
  }

  it('chains truncated answers so that every key arrives exactly once, deterministically', async () => {
    const rnd = seededRandom(17);
    const db = await MerkleDatabase.open(new MemoryStore());
    // 5,000 keys under one first byte (part 4, three answers), a few hundred spread everywhere,
    // and the one-byte part-edge keys that belong to the part before
    const dense: KeyChange[] = [];
    for (let i = 0; i < 5000; i++) dense.push({ key: Uint8Array.of(0x10, ...randomBytes(rnd, 3, 3)), value: randomBytes(rnd, 1, 8) });
    const edges = [0x04, 0x08, 0x10, 0x14, 0xfc].map((b) => ({ key: Uint8Array.of(b), value: Uint8Array.of(1) }));
    const root = await db.commit([...dense, ...randomPuts(rnd, 300), ...edges]);
    const expected: string[] = [];
    for await (const kv of db.entries()) expected.push(toHex(kv.key));
    const a = await runPlan(db, root);
    expect(a.keys.map(toHex)).toEqual(expected);
    expect(a.requests.length).toBeGreaterThan(CANONICAL_PARTS + 1);
    const b = await runPlan(db, root);
    expect(b.requests.map(requestKey)).toEqual(a.requests.map(requestKey));
  });

  it('an empty answer and an answer reaching the end of its range end the chain', async () => {
    const db = await MerkleDatabase.open(new MemoryStore());
    const root = await db.commit([{ key: fromHex('0501'), value: fromHex('01') }]);
    const [p0, p1] = canonicalParts();
    const r0 = canonicalRangeRequest(root, p0.start, p0.end);
    expect(canonicalResume(r0, await db.rangeProof(root, { start: r0.startKey, end: r0.endKey, keyLimit: r0.keyLimit }))).toBeUndefined();
    const r1 = canonicalRangeRequest(root, p1.start, p1.end);
    const proof = await db.rangeProof(root, { start: r1.startKey, end: r1.endKey, keyLimit: r1.keyLimit });
    expect(proof.keyValues).toHaveLength(1);
    expect(canonicalResume(r1, proof)).toBeUndefined();
  });
});
