/**
 * Test page for the history log: exposes `window.logPage`, which drives
 * `client.log.fetch` of a light client (worker, IndexedDB, libp2p) and answers in JSON (bytes as
 * hex). The client's state sync is left paused (`autoStart: false`): the log needs only the
 * signed announcements the worker asks every peer for.
 */
import { createLightClient, type LightClient } from '../../src/client/index.ts';
import type { LogFetchProgress } from '../../src/sync/log/fetch.ts';
import { toHex } from '../../src/core/bytes.ts';

export interface LogStart {
  db: string;
  writer: string;
  bootstrap: string[];
  storageName: string;
}

export interface LogFetchResult {
  indices: number[];
  ids: string[];
  /** Operations whose delta carries no action or a state root that is not 32 bytes. */
  malformed: number;
  progress: LogFetchProgress | undefined;
  progressReports: number;
  targetSizes: number[];
  ms: number;
}

let client: LightClient | undefined;

const logPage = {
  start(o: LogStart): void {
    client = createLightClient({ db: o.db, writer: o.writer, bootstrap: o.bootstrap, allowInsecureLoopback: true, autoStart: false, storage: { name: o.storageName, minFreeBytes: 0 } });
  },
  /** `client.log.fetch(...)`, stopping (breaking out of the loop) after `stopAfter` operations. */
  async fetch(o: { from?: number; to?: number; store?: boolean; batchSize?: number; stopAfter?: number; idsOnly?: boolean }): Promise<LogFetchResult> {
    const t0 = performance.now();
    const r: LogFetchResult = { indices: [], ids: [], malformed: 0, progress: undefined, progressReports: 0, targetSizes: [], ms: 0 };
    const stopAfter = o.stopAfter ?? Infinity;
    for await (const op of client!.log.fetch({
      from: o.from,
      to: o.to,
      store: o.store,
      batchSize: o.batchSize,
      signal: AbortSignal.timeout(600_000),
      onProgress: (p) => {
        r.progress = p;
        r.progressReports++;
        if (r.targetSizes.at(-1) !== p.targetSize) r.targetSizes.push(p.targetSize);
      },
    })) {
      if (!o.idsOnly) {
        r.indices.push(op.index);
        r.ids.push(toHex(op.id));
      }
      if (op.actions.length === 0 || op.stateRoot.length !== 32) r.malformed++;
      if (r.indices.length >= stopAfter || (o.idsOnly && op.index + 1 - (o.from ?? 0) >= stopAfter)) break;
    }
    r.ms = performance.now() - t0;
    return r;
  },
  async close(): Promise<void> {
    await client?.close();
    client = undefined;
  },
};

(window as unknown as { logPage: typeof logPage; __ready: boolean }).logPage = logPage;
(window as unknown as { __ready: boolean }).__ready = true;
document.getElementById('out')!.textContent = 'ready';
export type LogPage = typeof logPage;
