/**
 * Range and change proof requests served in arrival order, a few at a time (docs/design.md "Wire
 * protocols"). Serving a proof is mostly JavaScript on one thread with a few short store reads
 * between: started all at once, a burst of requests shares the thread round-robin and every
 * answer is ready only when nearly all are. A client that sends 8 requests and verifies answers
 * as they come then waits for the whole burst before it can start (measured: the first of 8
 * change proofs of a 1M-key catch-up answered after ~100 ms, ~5 ms of serving each). In order,
 * the first answer leaves after its own work (measured: after 45–60 ms, the rest following one
 * by one). Two at a time keep the thread busy while one waits for a read.
 */
export class ProofQueue {
  readonly concurrency: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(concurrency = 2) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`expected concurrency >= 1, got ${concurrency}`);
    this.concurrency = concurrency;
  }

  /** Requests started and not finished, and those waiting for a turn. */
  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Runs `serve` once the requests before it leave room; resolves or rejects as it does.
   *
   * @example
   * const queue = new ProofQueue(2);
   * const proof = await queue.run(() => serveRangeProof(db, req));
   */
  async run<T>(serve: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) await new Promise<void>((turn) => this.#waiting.push(turn));
    else this.#running++;
    try {
      return await serve();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes on: `running` stays
      else this.#running--;
    }
  }
}
