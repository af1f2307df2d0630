import { describe, expect, it } from 'vitest';
import { InvalidTargetUpdate, checkTarget, targetUpdateRejection, type LogSyncTarget, type TargetUpdateRejection } from './target.ts';

const root = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const current: LogSyncTarget = { root: root(1), lower: 10, upper: 20 };

const updates: Record<string, [LogSyncTarget, TargetUpdateRejection | undefined]> = {
  moves_forward: [{ root: root(2), lower: 10, upper: 21 }, undefined],
  lower_moves_too: [{ root: root(2), lower: 15, upper: 30 }, undefined],
  lower_passes_old_upper: [{ root: root(2), lower: 25, upper: 30 }, undefined],
  upper_unchanged: [{ root: root(2), lower: 10, upper: 20 }, 'UpperNotGrowing'],
  upper_shrinks: [{ root: root(2), lower: 10, upper: 19 }, 'UpperNotGrowing'],
  lower_shrinks: [{ root: root(2), lower: 9, upper: 30 }, 'LowerShrinks'],
  root_unchanged: [{ root: root(1), lower: 10, upper: 30 }, 'RootUnchanged'],
};

describe('targetUpdateRejection', () => {
  for (const [name, [next, expected]] of Object.entries(updates)) {
    it(name, () => {
      const got = targetUpdateRejection(current, next);
      if (expected === undefined) expect(got).toBeUndefined();
      else {
        expect(got).toBeInstanceOf(InvalidTargetUpdate);
        expect(got?.name).toBe('InvalidTargetUpdate');
        expect(got?.reason).toBe(expected);
      }
    });
  }
});

describe('checkTarget', () => {
  const bad: Record<string, [unknown, string]> = {
    short_root: [{ root: new Uint8Array(31), lower: 0, upper: 1 }, 'expected 32-byte target root, got 31'],
    root_not_bytes: [{ root: 'ab', lower: 0, upper: 1 }, 'expected target root to be a Uint8Array'],
    negative_lower: [{ root: root(0), lower: -1, upper: 1 }, 'expected target lower to be a non-negative integer, got -1'],
    empty_range: [{ root: root(0), lower: 3, upper: 3 }, 'expected target upper to be an integer greater than lower 3, got 3'],
    fractional_upper: [{ root: root(0), lower: 0, upper: 1.5 }, 'expected target upper to be an integer greater than lower 0, got 1.5'],
  };
  for (const [name, [target, message]] of Object.entries(bad)) {
    it(`rejects ${name}`, () => expect(() => checkTarget(target as LogSyncTarget)).toThrow(message));
  }
  it('accepts a well-formed target', () => expect(() => checkTarget(current)).not.toThrow());
});
