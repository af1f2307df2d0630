/**
 * A later turn of the event loop, by a message rather than a timer: nested timers are clamped
 * to 4 ms, and the apply loop yields every 16 deltas so that the previous group's IndexedDB
 * transaction advances and the page's calls are answered.
 */
const turn = typeof MessageChannel === 'function' ? new MessageChannel() : undefined;
const waiting: (() => void)[] = [];
if (turn) {
  turn.port1.onmessage = () => waiting.shift()?.();
  // Node: the port must not keep the process alive
  (turn.port1 as { unref?: () => void }).unref?.();
  (turn.port2 as { unref?: () => void }).unref?.();
}

/** Resolves in a later turn of the event loop (a message, not a timer: timers are clamped to 4 ms when nested). */
export function nextTurn(): Promise<void> {
  if (!turn) return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    waiting.push(r);
    turn.port2.postMessage(0);
  });
}
