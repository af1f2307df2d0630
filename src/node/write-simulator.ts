/**
 * The write simulator (`--simulate-writes`): a writer that commits small seeded random batches
 * at a fixed rate, so that demos and tests see a live database without a client writing to it.
 */
import type { KeyChange } from '../core/types.ts';
import { BatchGenerator } from './generate.ts';

/** How the simulator runs. */
export interface WriteSimulatorOptions {
  /** Commits per second, at most. */
  perSec: number;
  /** Seed of the batches. */
  seed: number;
  /** Commits one batch. */
  commit: (changes: KeyChange[]) => Promise<unknown>;
  /** True once the node is stopping: no new commit starts. */
  stopping: () => boolean;
  /** Where failed commits are reported. */
  log: (line: string) => void;
}

/**
 * Starts committing `o.perSec` batches a second; returns the call that stops it.
 *
 * @example
 * const stopSimulator = startWriteSimulator({ perSec: 2, seed: 2, commit, stopping: () => stopping, log });
 */
export function startWriteSimulator(o: WriteSimulatorOptions): () => void {
  const batches = new BatchGenerator(o.seed);
  let busy = false;
  const timer = setInterval(() => {
    if (busy || o.stopping()) return; // never queue up: the rate is an upper bound
    busy = true;
    o.commit(batches.next())
      .catch((err: unknown) => o.log(`simulated write failed: ${(err as Error).message}`))
      .finally(() => (busy = false));
  }, 1000 / o.perSec);
  return () => clearInterval(timer);
}
