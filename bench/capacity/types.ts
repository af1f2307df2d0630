/**
 * The contract of the optional parts of `npm run bench -- capacity` (bench/capacity.bench.ts):
 * a module bench/capacity/NAME.ts (discovery.ts, static.ts) exports `run`, which measures its
 * own figures and returns them; the suite writes them with its own to bench/results/capacity.json.
 * A module that is absent is skipped; one that throws is reported and the others still run.
 * The suite's node process is stopped before the modules run: each starts what it needs.
 */
import type { Figure } from '../lib.ts';

export type { Figure };

/** What the capacity suite hands each module. */
export interface CapacityContext {
  /** Keys in the generated database (BENCH_KEYS, default 1,000,000). */
  keys: number;
  /** Seconds each timed load phase runs (BENCH_SECONDS). */
  seconds: number;
  /**
   * Data dir of a full node whose store holds the generated keys (kept between runs, shared
   * with the node suite); closed while modules run. Copy it to run several nodes on it.
   */
  dataDir: string;
  /** Progress lines for the console. */
  log(line: string): void;
}

/** A module of the capacity suite. */
export interface CapacityModule {
  run(ctx: CapacityContext): Promise<Figure[]>;
}
