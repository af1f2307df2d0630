/**
 * A queue of events with one waiting reader: the sync drivers feed their state machines from it
 * (answers, failures, target updates arrive from many promises; the engine takes one at a time).
 */
export class EventQueue<T> {
  readonly #items: T[] = [];
  #wake: (() => void) | undefined;

  push(event: T): void {
    this.#items.push(event);
    this.#wake?.();
    this.#wake = undefined;
  }

  /** The next event; resolves early (then throws the abort reason) when `signal` aborts. */
  async next(signal: AbortSignal | undefined): Promise<T> {
    while (this.#items.length === 0) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.#wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    return this.#items.shift()!;
  }
}
