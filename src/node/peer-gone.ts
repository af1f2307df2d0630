/**
 * A full node must outlive any peer. When a peer hangs up in the middle of an exchange, libp2p's
 * stream machinery can leave a promise rejected with that peer's stream error and nobody
 * awaiting it (seen in the e2e suite: a tab closed mid-stream, and the node exited on Node's
 * default unhandled-rejection policy). The guard below keeps the process alive for exactly
 * those errors — the stream's owner already handled the exchange's failure — and counts them;
 * any other unhandled rejection still ends the process, as a bug should.
 */

/** Error names that mean "the remote went away or ran out of time", ours and libp2p's. */
const PEER_GONE = new Set([
  'StreamReset',
  'RequestTimeout',
  'StreamResetError',
  'StreamClosedError',
  'StreamStateError',
  'StreamAbortedError',
  'ConnectionClosedError',
  'ConnectionClosingError',
  'MuxerClosedError',
  'AbortError',
  'TimeoutError',
]);

/** True for an error a remote peer causes by resetting, closing or stalling a stream. */
export function isPeerGone(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return typeof name === 'string' && PEER_GONE.has(name);
}

export interface PeerGoneGuard {
  /** Rejections ignored so far. */
  readonly ignored: number;
  /** Removes the handler (the default policy applies again). */
  remove(): void;
}

/**
 * Installs the process-wide handler: peer-gone rejections are counted and reported through
 * `log` (the first, then every 100th), anything else is reported and ends the process with code 1.
 *
 * @example
 * const guard = guardPeerGone((line) => process.stderr.write(line + '\n'));
 */
export function guardPeerGone(log: (line: string) => void): PeerGoneGuard {
  let ignored = 0;
  const onRejection = (reason: unknown): void => {
    if (isPeerGone(reason)) {
      ignored++;
      if (ignored === 1 || ignored % 100 === 0) {
        const e = reason as Error;
        log(`ignored ${ignored} stream error(s) left behind by peers that went away (last: ${e.name}: ${e.message})`);
      }
      return;
    }
    log(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
    process.exit(1);
  };
  process.on('unhandledRejection', onRejection);
  return {
    get ignored() {
      return ignored;
    },
    remove: () => void process.off('unhandledRejection', onRejection),
  };
}
