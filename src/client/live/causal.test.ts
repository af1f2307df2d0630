/**
 * The apply loop's pure checks, as tables of named cases: which deltas' roots can be checked,
 * which held deltas fall with an offender, the heads after a group, and a partial sync's scope.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import { actionsInScope, headsAfter, heldDescendants, isCausalPast } from './causal.ts';

const id = (n: number) => Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? n : 0));
/** A delta shape with only what the checks read. */
const d = (n: number, ...parents: number[]) => ({ id: id(n), parents: parents.map(id) }) as unknown as VerifiedDelta;
const hexes = (ids: Uint8Array[]) => ids.map((x) => x[0]);

describe('isCausalPast', () => {
  const heads = new Set([toHex(id(1)), toHex(id(2))]);
  const rows: [string, number[], boolean][] = [
    ['parents are exactly the heads', [1, 2], true],
    ['the same, in another order', [2, 1], true],
    ['one head missing from the parents', [1], false],
    ['a parent that is not a head', [1, 3], false],
    ['more parents than heads', [1, 2, 3], false],
  ];
  for (const [name, parents, want] of rows) it(name, () => expect(isCausalPast(parents.map(id), heads)).toBe(want));
});

describe('heldDescendants', () => {
  // 1 <- 2 <- 3, 1 <- 4, 5 (another branch), 6 merges 3 and 5
  const held = [d(1, 0), d(2, 1), d(3, 2), d(4, 1), d(5, 0), d(6, 3, 5)];
  const rows: [string, number, number[]][] = [
    ['the root of a chain takes everything on it', 1, [1, 2, 3, 4, 6]],
    ['a middle delta takes its descendants, a merge included', 2, [2, 3, 6]],
    ['a leaf takes only itself', 4, [4]],
    ['the other branch takes the merge', 5, [5, 6]],
    ['an id not held is returned alone', 9, [9]],
  ];
  for (const [name, from, want] of rows) it(name, () => expect(hexes(heldDescendants(held, id(from)))).toEqual(want));
});

describe('headsAfter', () => {
  const rows: [string, number[], VerifiedDelta[], number[]][] = [
    ['a chain replaces the head', [1], [d(2, 1), d(3, 2)], [3]],
    ['a fork adds a head', [1], [d(2, 1), d(3, 1)], [2, 3]],
    ['a merge joins two heads', [1, 2], [d(3, 1, 2)], [3]],
    ['nothing applied: the heads as they were, sorted', [2, 1], [], [1, 2]],
  ];
  for (const [name, current, good, want] of rows) it(name, () => expect(hexes(headsAfter(current.map(id), good))).toEqual(want));
});

describe('actionsInScope', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const actions = ['a', 'c', 'e'].map((k) => ({ key: enc(k), value: enc(k) }));
  const keys = (r: Parameters<typeof actionsInScope>[1]) => actionsInScope(actions, r).map((a) => new TextDecoder().decode(a.key));
  it('no ranges: every action', () => expect(keys(undefined)).toEqual(['a', 'c', 'e']));
  it('inclusive bounds', () => expect(keys([{ start: enc('c'), end: enc('e') }])).toEqual(['c', 'e']));
  it('open ends', () => expect(keys([{ start: undefined, end: enc('a') }, { start: enc('e'), end: undefined }])).toEqual(['a', 'e']));
  it('no range holds a key', () => expect(keys([{ start: enc('f'), end: undefined }])).toEqual([]));
});
