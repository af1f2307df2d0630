/**
 * Staged appends of the node's operation log: one at a time (`stage`, root on demand) or many
 * (`stageMany`, hashing or taking the nodes a verified range proof computed) reach the same
 * MMR as appending the elements one by one.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../core/bytes.ts';
import { mmrRoots, rangeProof, Mmr, verifyRangeProof } from '../core/mmr.ts';
import { sha256 } from '../core/sha256.ts';
import { MemoryStore } from '../core/store.ts';
import { OperationLog } from './operation-log.ts';

const element = (i: number): Uint8Array => new TextEncoder().encode(`operation ${i}`.repeat(1 + (i % 5)));
const entry = (i: number) => ({ id: sha256(element(i)), element: element(i) });

describe('OperationLog staging', () => {
  it('stage: the root before and after applyStaged is the root with the element appended', async () => {
    const log = await OperationLog.open(new MemoryStore(), new MemoryStore());
    const roots = mmrRoots(Array.from({ length: 40 }, (_, i) => element(i)));
    for (let i = 0; i < 40; i++) {
      const staged = log.stage(entry(i).id, element(i));
      if (i % 2 === 0) expect(toHex(staged.root)).toBe(toHex(roots[i + 1])); // read before applying
      log.applyStaged(staged);
      expect(toHex(staged.root)).toBe(toHex(roots[i + 1]));
      expect(toHex(log.root())).toBe(toHex(roots[i + 1]));
    }
  });

  it('stageMany, hashing or with the nodes of a verified proof, equals appending one by one', async () => {
    const all = Array.from({ length: 100 }, (_, i) => element(i));
    const full = new Mmr();
    for (const e of all) full.append(e);
    for (const withProofNodes of [false, true]) {
      const log = await OperationLog.open(new MemoryStore(), new MemoryStore());
      for (const [start, end] of [[0, 1], [1, 7], [7, 32], [32, 33], [33, 100]]) {
        const nodes = new Map<number, Uint8Array>();
        if (withProofNodes) verifyRangeProof(full.root(), 100, start, all.slice(start, end), rangeProof(full, start, end), (pos, d) => nodes.set(pos, d));
        const staged = log.stageMany(
          Array.from({ length: end - start }, (_, k) => entry(start + k)),
          withProofNodes ? (pos) => nodes.get(pos) : undefined,
        );
        expect(staged.logOps).toHaveLength(end - start);
        log.applyStagedMany(staged);
        expect(log.size).toBe(end);
        expect(toHex(log.root())).toBe(toHex(full.root(end)));
      }
    }
  });
});
