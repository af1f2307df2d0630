/**
 * Checkpoints (docs/sync.md#checkpoints): the writer names a commit a checkpoint every `every`
 * commits or once `intervalMs` has passed since the last one, whichever comes first, and its
 * signed announcement carries the newest one. Every fresh client of an epoch then range-syncs
 * to the same root with the same requests (the canonical plan, sync/state/plan.ts), which a
 * node can answer from a cache and a static server can hold as files. Every full node keeps the
 * newest `kept` checkpoints servable beyond its history window (core/database.ts).
 *
 * Why 64 commits / 60 s: a checkpoint older than the head by k commits costs a fresh client a
 * change-proof catch-up over those k commits; 64 is well inside the 300-commit history window
 * (so the catch-up is always a change proof), and 60 s bounds the epoch of a slow writer.
 */
import type { AnnouncedCheckpoint } from '../core/announcement.ts';
import type { DatabaseOptions } from '../core/database.ts';

/** Default `CheckpointOptions.every`. */
export const DEFAULT_CHECKPOINT_EVERY = 64;
/** Default `CheckpointOptions.intervalMs`. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000;

/** How a node names and keeps checkpoints (`proofsync node --checkpoint-*`). */
export interface CheckpointOptions {
  /** A writer names a checkpoint at least every this many commits (default 64; 0: by time only). */
  every?: number;
  /** ... or at the first commit this long after the last checkpoint (default 60,000 ms; 0: by count only). */
  intervalMs?: number;
  /** Checkpoints kept servable beyond the history window (default 2). */
  kept?: number;
  /** Most revisions kept beyond the window for them (default 4,096; past it the oldest goes). */
  maxRevisions?: number;
}

/** A writer's resolved schedule; both 0: the writer names no checkpoints. */
export interface CheckpointSchedule {
  every: number;
  intervalMs: number;
}

const nonNegative = (v: number, name: string): number => {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`expected ${name} to be a non-negative integer, got ${v}`);
  return v;
};

/** The schedule `o` describes, with the defaults filled in. */
export function checkpointSchedule(o: CheckpointOptions = {}): CheckpointSchedule {
  return { every: nonNegative(o.every ?? DEFAULT_CHECKPOINT_EVERY, 'checkpoint every'), intervalMs: nonNegative(o.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS, 'checkpoint interval') };
}

/** Whether the schedule names checkpoints at all. */
export const checkpointsOn = (s: CheckpointSchedule): boolean => s.every > 0 || s.intervalMs > 0;

/**
 * Whether the commit that makes announcement `seq` is a checkpoint, given the newest one named
 * so far (`previous`) and the time since it was named.
 *
 * @example
 * checkpointDue({ every: 64, intervalMs: 60_000 }, { seq: 10, root }, 74, 1_000); // true: 64 commits on
 */
export function checkpointDue(s: CheckpointSchedule, previous: AnnouncedCheckpoint | undefined, seq: number, elapsedMs: number): boolean {
  if (!checkpointsOn(s)) return false;
  if (previous === undefined) return true;
  if (s.every > 0 && seq - previous.seq >= s.every) return true;
  return s.intervalMs > 0 && elapsedMs >= s.intervalMs;
}

/** The database options that keep checkpoints (`kept`, `maxRevisions`) beside `historySize`. */
export function checkpointDatabaseOptions(o: CheckpointOptions | undefined, historySize: number | undefined, onDropped?: () => void): DatabaseOptions {
  return { historySize, checkpointsKept: o?.kept, maxCheckpointRevisions: o?.maxRevisions, onCheckpointDropped: onDropped };
}
