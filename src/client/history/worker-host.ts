/**
 * The worker side of `client.log.fetch` (docs/mmr.md "Syncing a log"): the fetches a page
 * opened, each a `fetchOperationBatches` over the worker's peers (a `NetworkLogSource` of
 * `requesterLogPeer`s, whose connections live in the worker or on the main thread) with targets
 * from the signed announcements the engine host verifies. Operations are decoded here, so the
 * page receives plain objects. The engine host owns one `LogHost` and forwards `log` calls and new
 * announcements to it.
 */
import type { KVStore } from '../../core/store.ts';
import { NetworkLogSource, requesterLogPeer, type LogRequester } from '../../sync/log/network-source.ts';
import { decodeOperation, fetchOperationBatches, type LogFetchProgress, type LogTarget, type RawOperation } from '../../sync/log/fetch.ts';
import type { LogBatchReply, LogCall, LogReply } from './worker-messages.ts';
import { PushQueue } from '../../sync/push-queue.ts';

export interface LogHostDeps {
  /** The peers connected now. */
  peers(): { id: string; request: LogRequester }[];
  /** The client's store (opened). */
  store(signal?: AbortSignal): Promise<KVStore>;
  /** The newest signed log target, if one is known. */
  newest(): LogTarget | undefined;
  /** Per-request deadline (ms). */
  timeoutMs: number;
  banAfter?: number;
  onPenalise?: (peer: string, banned: boolean, reason: unknown) => void;
}

interface OpenFetch {
  controller: AbortController;
  batches: AsyncGenerator<RawOperation[]>;
  source: NetworkLogSource;
  targets: PushQueue<LogTarget>;
  progress: LogFetchProgress | undefined;
  pulling: boolean;
}

/** Most fetches open at once per client (a page that forgets to close them cannot pile up). */
const MAX_OPEN = 16;

export class LogHost {
  readonly #deps: LogHostDeps;
  readonly #open = new Map<number, OpenFetch>();
  #nextHandle = 1;

  constructor(deps: LogHostDeps) {
    this.#deps = deps;
  }

  /** A newer signed announcement: every open fetch may move its target. */
  announce(target: LogTarget): void {
    for (const f of this.#open.values()) f.targets.push(target);
  }

  async call(c: LogCall, signal?: AbortSignal): Promise<LogReply> {
    switch (c.op) {
      case 'open':
        return { handle: await this.#openFetch(c.request, signal) };
      case 'next':
        return this.#next(c.handle, signal);
      case 'close':
        await this.#close(c.handle);
        return undefined;
    }
  }

  async #openFetch(request: Extract<LogCall, { op: 'open' }>['request'], signal?: AbortSignal): Promise<number> {
    if (this.#open.size >= MAX_OPEN) throw new RangeError(`at most ${MAX_OPEN} log fetches may be open at once; close one (break out of its loop)`);
    const store = request.store ? await this.#deps.store(signal) : undefined;
    const controller = new AbortController();
    const targets = new PushQueue<LogTarget>();
    const newest = this.#deps.newest();
    if (newest) targets.push(newest);
    const source = new NetworkLogSource([], { timeoutMs: this.#deps.timeoutMs, banAfter: this.#deps.banAfter, onPenalise: this.#deps.onPenalise });
    const handle = this.#nextHandle++;
    const entry: OpenFetch = { controller, targets, source, progress: undefined, pulling: false, batches: undefined as never };
    this.#addPeers(entry);
    entry.batches = fetchOperationBatches({
      // peers that connected since the fetch opened (the first may connect after it) join
      source: { fetch: (req) => (this.#addPeers(entry), source.fetch(req)) },
      targets,
      from: request.from,
      to: request.to,
      follow: request.follow,
      store,
      persist: request.store,
      batchSize: request.batchSize,
      maxOutstanding: request.maxOutstanding,
      signal: controller.signal,
      onProgress: (p) => (entry.progress = p),
    });
    this.#open.set(handle, entry);
    return handle;
  }

  #addPeers(f: OpenFetch): void {
    const known = new Set(f.source.stats().map((s) => s.id));
    for (const p of this.#deps.peers()) if (!known.has(p.id)) f.source.addPeer(requesterLogPeer(p.id, p.request));
  }

  async #next(handle: number, signal?: AbortSignal): Promise<LogBatchReply> {
    const f = this.#open.get(handle);
    if (!f) throw new RangeError(`no open log fetch ${handle}`);
    if (f.pulling) throw new RangeError(`log fetch ${handle} is already being read`);
    f.pulling = true;
    const onAbort = (): void => void this.#close(handle);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await f.batches.next();
      if (r.done) {
        this.#open.delete(handle);
        f.targets.close();
        return { ops: [], progress: f.progress, done: true };
      }
      return { ops: r.value.map(decodeOperation), progress: f.progress, done: false };
    } catch (err) {
      this.#open.delete(handle);
      f.targets.close();
      throw err;
    } finally {
      f.pulling = false;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #close(handle: number): Promise<void> {
    const f = this.#open.get(handle);
    if (!f) return;
    this.#open.delete(handle);
    f.controller.abort(new DOMException('the log fetch was closed', 'AbortError'));
    f.targets.close();
    if (!f.pulling) await f.batches.return(undefined).catch(() => undefined);
  }

  /** Stops every fetch (the client is closing). */
  async close(): Promise<void> {
    await Promise.all([...this.#open.keys()].map((h) => this.#close(h)));
  }
}
