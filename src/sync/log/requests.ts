/**
 * Outstanding request bookkeeping for the log sync engine (commonware `requests.rs`).
 * Each request remembers the root and log size it was issued for, so its response is verified
 * against that root even after the target moved (docs/mmr.md#syncing-a-log).
 */
import type { LocationRange } from './gaps.ts';

export interface LogRequest {
  id: number;
  /** Root the response must verify against, and the log size at that root. */
  root: Uint8Array;
  leafCount: number;
  start: number;
  maxOps: number;
  /** Whether the pinned nodes at `start` (the target's lower bound) are asked for too. */
  withPinned: boolean;
}

export class OutstandingRequests {
  readonly #byId = new Map<number, LogRequest>();
  #nextId = 1;

  get size(): number {
    return this.#byId.size;
  }

  /** Tracks a new request and returns it with a fresh id. */
  add(request: Omit<LogRequest, 'id'>): LogRequest {
    const r: LogRequest = { ...request, id: this.#nextId++ };
    this.#byId.set(r.id, r);
    return r;
  }

  get(id: number): LogRequest | undefined {
    return this.#byId.get(id);
  }

  /** Stops tracking `id`; returns the request if it was outstanding. */
  remove(id: number): LogRequest | undefined {
    const r = this.#byId.get(id);
    this.#byId.delete(id);
    return r;
  }

  /** Removes and returns the requests whose start is below `location`, in start order. */
  removeBefore(location: number): LogRequest[] {
    const gone = [...this.#byId.values()].filter((r) => r.start < location).sort((a, b) => a.start - b.start);
    for (const r of gone) this.#byId.delete(r.id);
    return gone;
  }

  /** The most each request may cover, in start order. */
  ranges(): LocationRange[] {
    return [...this.#byId.values()]
      .map((r) => ({ start: r.start, end: r.start + r.maxOps }))
      .sort((a, b) => a.start - b.start);
  }

  values(): LogRequest[] {
    return [...this.#byId.values()];
  }
}
