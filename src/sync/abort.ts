/**
 * Waiting that an `AbortSignal` ends, and recognising the error an abort raises: the backoff
 * between retries in the client's engine host and the node's replica.
 */

/** Resolves after `ms`, or rejects with the signal's reason (backoff between retries). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether `err` is an abort (a `DOMException` or any error named `AbortError`), not a failure. */
export function isAbortError(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'AbortError';
}
