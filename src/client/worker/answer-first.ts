/**
 * Holds a connection's background work (identify, which starts gossipsub's streams, and the
 * discovery question) while a page's `getVerified` is waiting for its answer: that work starts
 * the moment a peer's first signed head arrives, which is also the moment a first `getVerified`
 * sends its proof request, on the same connection and the same worker thread.
 */
export class AnswerFirst {
  #inFlight = 0;
  #waiters = new Set<() => void>();

  /** A `getVerified` started; call the returned function once it settled. */
  begin(): () => void {
    this.#inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#inFlight > 0) return;
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      for (const w of waiters) w();
    };
  }

  /** Resolves when no `getVerified` is in flight, or after `maxMs` at most. */
  idle(maxMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      this.#waiters.add(done);
    });
  }
}
