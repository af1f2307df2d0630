/**
 * A bound on how long one part of the node may take to stop. libp2p's `stop()` waits for every
 * listener to close, and a transport that does not track its raw sockets (a TCP connection that
 * never sent a byte, a slow-loris upgrade) keeps that wait open forever: with 300 idle sockets a
 * SIGTERM does not end the process within 15 s (`npx vitest run --project e2e
 * e2e/hostile/graceful-stop.test.ts` shows it without this bound). The node must still close
 * its store and exit, so a part that overruns is logged and left behind.
 */

/** The part did not stop within its deadline; the node went on stopping without it. */
export interface StopOverrun {
  part: string;
  timeoutMs: number;
}

/**
 * Waits for `stopping` at most `timeoutMs`. Resolves either way (a rejection is reported to
 * `onOverrun` too, as a part that did not stop cleanly); never throws.
 *
 * @example
 * await stopWithin('libp2p host', host.stop(), 5_000, (o, err) => log(`${o.part} ...`));
 */
export async function stopWithin(part: string, stopping: Promise<void>, timeoutMs: number, onOverrun: (o: StopOverrun, err?: unknown) => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const overrun = new Promise<'overrun'>((resolve) => {
    timer = setTimeout(() => resolve('overrun'), timeoutMs);
  });
  try {
    const r = await Promise.race([stopping.then(() => 'done' as const), overrun]);
    if (r === 'overrun') {
      onOverrun({ part, timeoutMs });
      stopping.catch(() => {}); // it may still fail later: nobody is waiting for it any more
    }
  } catch (err) {
    onOverrun({ part, timeoutMs }, err);
  } finally {
    clearTimeout(timer);
  }
}
