/**
 * An honest in-memory {@link LogSource} over an {@link Mmr}: it serves any batch against the
 * current or any earlier root of its log (positions are stable, so one MMR proves against all
 * its prefixes). For tests and local tools; the network source lives with the protocol.
 */
import { equalBytes } from '../../core/bytes.ts';
import { RootNotFound } from '../../core/errors.ts';
import { Mmr, pinnedNodes, rangeProof } from '../../core/mmr.ts';
import type { LogFetchRequest, LogFetchResponse, LogSource } from './source.ts';
import type { LogSyncTarget } from './target.ts';

export class MemoryLogSource implements LogSource {
  readonly #mmr = new Mmr();
  readonly #ops: Uint8Array[] = [];
  /** Every feedback received, in order. */
  readonly feedback: boolean[] = [];
  /** Every request served, in order. */
  readonly requests: LogFetchRequest[] = [];

  constructor(ops: Iterable<Uint8Array> = []) {
    for (const op of ops) this.append(op);
  }

  get size(): number {
    return this.#ops.length;
  }

  append(op: Uint8Array): void {
    this.#ops.push(op);
    this.#mmr.append(op);
  }

  root(size: number = this.size): Uint8Array {
    return this.#mmr.root(size);
  }

  /** The MMR peaks over the first `size` operations (what a sync's frontier holds there). */
  peaks(size: number = this.size): Uint8Array[] {
    return this.#mmr.peakDigests(size);
  }

  /** The target for operations `[lower, size)` of the log at `size` (default: all). */
  target(lower = 0, size: number = this.size): LogSyncTarget {
    return { root: this.root(size), lower, upper: size };
  }

  async fetch(request: LogFetchRequest): Promise<LogFetchResponse> {
    request.signal?.throwIfAborted();
    this.requests.push({ ...request, signal: undefined });
    return this.serve(request);
  }

  /** The honest answer to `request`, synchronously. */
  serve(request: LogFetchRequest): LogFetchResponse {
    const { leafCount, start, maxOps } = request;
    if (leafCount > this.size || (request.root && !equalBytes(request.root, this.root(leafCount)))) {
      throw new RootNotFound(`no log of size ${leafCount} with that root`, { leafCount });
    }
    const end = Math.min(start + maxOps, leafCount);
    return {
      ops: this.#ops.slice(start, end),
      proof: rangeProof(this.#mmr, start, end, leafCount),
      pinned: request.withPinned ? pinnedNodes(this.#mmr, start) : undefined,
      feedback: (valid) => {
        this.feedback.push(valid);
      },
    };
  }
}
