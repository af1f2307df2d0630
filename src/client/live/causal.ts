/**
 * Pure checks of a group of deltas the apply loop applies: which actions fall in a partial
 * sync's ranges, whether a delta's `stateRoot` can be checked (its parents are exactly the
 * applied heads), which held deltas fall with an offender, and the heads after a group.
 */
import { compareBytes, inKeyRange, toHex } from '../../core/bytes.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import type { KeyChange } from '../../core/types.ts';
import type { InclusiveRange } from '../../sync/state/ranges.ts';

/** Whether `key` lies in one of `ranges` (undefined: every key does). */
export function inRanges(key: Uint8Array, ranges: readonly InclusiveRange[] | undefined): boolean {
  if (!ranges) return true;
  return ranges.some((r) => inKeyRange(key, r.start, r.end));
}

/** Actions of `d` that touch the synced ranges. */
export function actionsInScope(actions: readonly KeyChange[], ranges: readonly InclusiveRange[] | undefined): KeyChange[] {
  return ranges ? actions.filter((a) => inRanges(a.key, ranges)) : [...actions];
}

/**
 * Whether a delta's parents are exactly `heads` (hex ids): then applying it must reproduce its
 * `stateRoot` (dag.ts `appliedIsCausalPastOf`, for heads that run ahead of the DAG in a batch).
 */
export function isCausalPast(parents: readonly Uint8Array[], heads: ReadonlySet<string>): boolean {
  return parents.length === heads.size && parents.every((p) => heads.has(toHex(p)));
}

/** Ids of the held deltas in `held` (causally ordered) that descend from `id`, itself included. */
export function heldDescendants(held: readonly VerifiedDelta[], id: Uint8Array): Uint8Array[] {
  const doomed = new Set([toHex(id)]);
  const out = [id];
  // causal order: a parent comes before its children, so one pass suffices
  for (const d of held) {
    if (doomed.has(toHex(d.id)) || !d.parents.some((p) => doomed.has(toHex(p)))) continue;
    doomed.add(toHex(d.id));
    out.push(d.id);
  }
  return out;
}

/** The applied heads once `good` (a causally ordered prefix) is applied on top of `heads`. */
export function headsAfter(current: readonly Uint8Array[], good: readonly VerifiedDelta[]): Uint8Array[] {
  const heads = new Map(current.map((h) => [toHex(h), h]));
  for (const d of good) {
    for (const p of d.parents) heads.delete(toHex(p));
    heads.set(toHex(d.id), d.id);
  }
  return [...heads.values()].sort(compareBytes);
}
