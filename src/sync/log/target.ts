/**
 * What a log sync target is and when a new one may replace it (docs/mmr.md#syncing-a-log).
 *
 * A target `{root, lower, upper}` asks for operations `lower..upper-1` of the log whose size
 * is `upper` and whose MMR root is `root`. Targets come from a trusted source (a signed
 * announcement), never from the serving peer. An update must move forward: the upper bound
 * strictly grows, the lower bound never shrinks, and the root changes (an append-only log that
 * grew cannot keep its root).
 */
import { equalBytes } from '../../core/bytes.ts';
import { ProofsyncError, reasonError } from '../../core/errors.ts';

export interface LogSyncTarget {
  /** The MMR root of the log of `upper` operations (32 bytes). */
  root: Uint8Array;
  /** First operation wanted; operations before it are pruned (pinned nodes stand for them). */
  lower: number;
  /** Log size at `root`; operations `lower..upper-1` are wanted. */
  upper: number;
}

export const TARGET_UPDATE_REJECTIONS = ['UpperNotGrowing', 'LowerShrinks', 'RootUnchanged'] as const;
export type TargetUpdateRejection = (typeof TARGET_UPDATE_REJECTIONS)[number];

/** A target update that does not move forward; the engine keeps its current target. */
export const InvalidTargetUpdate = reasonError(ProofsyncError, 'InvalidTargetUpdate', 'target update rejected', TARGET_UPDATE_REJECTIONS);
export type InvalidTargetUpdate = InstanceType<typeof InvalidTargetUpdate>;

/**
 * Checks a target's shape: a 32-byte root and `0 <= lower < upper` (safe integers). Throws
 * `TypeError`/`RangeError`, since a malformed target is a caller bug, not a peer's.
 *
 * @example
 * checkTarget({ root, lower: 0, upper: 10 });
 */
export function checkTarget(target: LogSyncTarget): void {
  if (!(target?.root instanceof Uint8Array)) throw new TypeError('expected target root to be a Uint8Array');
  if (target.root.length !== 32) throw new RangeError(`expected 32-byte target root, got ${target.root.length}`);
  const { lower, upper } = target;
  if (!Number.isSafeInteger(lower) || lower < 0) throw new RangeError(`expected target lower to be a non-negative integer, got ${lower}`);
  if (!Number.isSafeInteger(upper) || upper <= lower) {
    throw new RangeError(`expected target upper to be an integer greater than lower ${lower}, got ${upper}`);
  }
}

/**
 * Why `next` may not replace `current`, or `undefined` if it moves forward.
 *
 * @example
 * targetUpdateRejection(t, { ...t, upper: t.upper + 1 }); // 'RootUnchanged'
 */
export function targetUpdateRejection(current: LogSyncTarget, next: LogSyncTarget): InvalidTargetUpdate | undefined {
  const details = { current: { lower: current.lower, upper: current.upper }, next: { lower: next.lower, upper: next.upper } };
  if (next.upper <= current.upper) {
    return new InvalidTargetUpdate('UpperNotGrowing', `upper ${next.upper} does not exceed ${current.upper}`, details);
  }
  if (next.lower < current.lower) {
    return new InvalidTargetUpdate('LowerShrinks', `lower ${next.lower} is below ${current.lower}`, details);
  }
  if (equalBytes(next.root, current.root)) {
    return new InvalidTargetUpdate('RootUnchanged', 'the log grew but the root did not change', details);
  }
  return undefined;
}
