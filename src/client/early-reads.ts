/**
 * Local reads on the page's main thread until the worker's store is open: a warm restart's
 * first `get(key, { consistency: 'local' })` then waits for IndexedDB, not for the worker's
 * entry to compile and evaluate (that boot was most of 630-950 ms at 1M keys,
 * bench/startup-trace.ts). The reader (idb/store-reader.ts) reads only committed, verified
 * state; the worker's answer is the fallback, and once the worker says its store is open
 * ('stored') every read goes to it.
 *
 * Measured A/B, `BENCH_KEYS=200000 BENCH_BASELINE=0 BENCH_PLACEMENT=0 BENCH_FIREFOX=0
 * BENCH_VERIFIED=0 BENCH_REPEAT=3 npm run bench -- browser`, without and with these reads
 * alternating, 4 runs each, 2 cores shared with other benchmarks (load 3-15): navigation to the
 * first local get, the page starting the client as it loads, median of 3 per run: 750, 714,
 * 1031, 1193 ms without, 262, 284, 749, 743 ms with. Create to the page's answer: 40-150 ms
 * (IndexedDB open 10-50 ms, then one transaction), against 300-700 ms to the worker's store open.
 */
import { StoreReader } from './idb/store-reader.ts';

export class EarlyReads {
  /** Undefined once the worker's store is open or the client closed (or with no IndexedDB). */
  #reader: Promise<StoreReader | undefined> | undefined;

  /** Opens `storageName` read-only at once: its open is then first in IndexedDB's queue. */
  constructor(storageName: string) {
    this.#reader = typeof indexedDB === 'undefined' ? undefined : StoreReader.open(storageName).catch(() => undefined);
  }

  /** Whether a read may still be answered on the page. */
  get open(): boolean {
    return this.#reader !== undefined;
  }

  /**
   * `key`'s value: the page's reader and `fromWorker` both answer, the first answer wins (the
   * worker's call is aborted once the page has answered). Both read committed, verified state;
   * when the page's read fails (no store yet, an older schema, a damaged record) the worker's
   * answer, or its typed error, is the one reported.
   */
  async get(key: Uint8Array, fromWorker: (signal: AbortSignal) => Promise<Uint8Array | undefined>, signal: AbortSignal | undefined): Promise<Uint8Array | undefined> {
    const reader = this.#reader;
    const stop = new AbortController();
    const worker = fromWorker(signal ? AbortSignal.any([signal, stop.signal]) : stop.signal);
    const page = (reader ?? Promise.resolve(undefined)).then((r) => (r ? r.get(key) : Promise.reject(new Error('no store to read on the page'))));
    page.then(
      () => {
        performance.mark?.('proofsync:page-read');
        stop.abort(new DOMException('answered on the page', 'AbortError'));
      },
      () => {},
    );
    try {
      const value = await Promise.any([page, worker]);
      signal?.throwIfAborted();
      return value;
    } catch (err) {
      signal?.throwIfAborted();
      // both failed: the worker's error is the client's answer
      if (err instanceof AggregateError) return worker;
      throw err;
    }
  }

  /** The worker's store is open (or the client closed): reads go to the worker only. */
  close(): void {
    const r = this.#reader;
    this.#reader = undefined;
    void r?.then((reader) => reader?.close());
  }
}
