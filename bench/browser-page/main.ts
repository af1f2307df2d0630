/**
 * The browser benchmark's own page (bench/browser.bench.ts): the floors, each measured in a
 * dedicated worker as the light client's own work runs in one (floor-worker.ts), and the
 * origin's storage usage. The light client itself runs on the e2e test page.
 */
import { Page } from '../../src/client/idb/page.ts';
import type { FloorRequest, FloorResult } from './floor-worker.ts';

/** Bytes of one kind of record in the packed pages (keys, values, and the page's two offsets per entry). */
export interface KindBytes {
  records: number;
  keyBytes: number;
  valueBytes: number;
}

/** What a light client's database holds, read record by record (`bench.storeBytes`). */
export interface StoreBytes {
  /** Page records, and their bytes as IndexedDB was given them. */
  pages: number;
  pageBytes: number;
  /** Write log records (live batches not yet compacted into the pages) and their bytes. */
  logRecords: number;
  logBytes: number;
  /** By the first byte of the key: 'n' trie node records, 'v' values, others (progress, meta). */
  kinds: Record<string, KindBytes>;
}

const bench = {
  /** One floor (floor-worker.ts) in a fresh worker, terminated after. */
  floor(req: FloorRequest): Promise<FloorResult> {
    const w = new Worker(new URL('./floor-worker.ts', import.meta.url), { type: 'module' });
    return new Promise<FloorResult>((resolve, reject) => {
      w.onmessage = (m: MessageEvent<FloorResult | { error: string }>) => {
        w.terminate();
        if ('error' in m.data) reject(new Error(m.data.error));
        else resolve(m.data);
      };
      w.onerror = (e) => reject(new Error(`floor worker failed: ${e.message}`));
      w.postMessage(req);
    });
  },
  /**
   * The pages and write log of the light client's database `name` (it must be closed or idle):
   * where the footprint goes, beside the origin's usage.
   */
  async storeBytes(name: string): Promise<StoreBytes> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const out: StoreBytes = { pages: 0, pageBytes: 0, logRecords: 0, logBytes: 0, kinds: {} };
    const each = (store: string, visit: (v: Uint8Array) => void) =>
      new Promise<void>((resolve, reject) => {
        if (!db.objectStoreNames.contains(store)) return resolve();
        const r = db.transaction(store).objectStore(store).openCursor();
        r.onsuccess = () => {
          const c = r.result;
          if (!c) return resolve();
          visit(c.value as Uint8Array);
          c.continue();
        };
        r.onerror = () => reject(r.error);
      });
    await each('pages', (bytes) => {
      out.pages++;
      out.pageBytes += bytes.byteLength;
      const page = new Page(bytes);
      for (const [k, v] of page.entries()) {
        const kind = k.length ? String.fromCharCode(k[0]) : '';
        const e = (out.kinds[kind] ??= { records: 0, keyBytes: 0, valueBytes: 0 });
        e.records++;
        e.keyBytes += k.length;
        e.valueBytes += v.length;
      }
    });
    await each('log', (bytes) => {
      out.logRecords++;
      out.logBytes += bytes.byteLength;
    });
    db.close();
    return out;
  },
  /** `navigator.storage.estimate()` of this origin (`usage` in bytes). */
  async usage(): Promise<number | undefined> {
    return (await navigator.storage.estimate()).usage;
  },
};

export type Bench = typeof bench;
(window as unknown as { bench: Bench }).bench = bench;
document.getElementById('out')!.textContent = 'ready';
(window as unknown as { __ready: boolean }).__ready = true;
