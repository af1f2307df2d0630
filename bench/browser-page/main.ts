/**
 * The browser benchmark's own page (bench/browser.bench.ts): the floors, each measured in a
 * dedicated worker as the light client's own work runs in one (floor-worker.ts), and the
 * origin's storage usage. The light client itself runs on the e2e test page.
 */
import type { FloorRequest, FloorResult } from './floor-worker.ts';

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
  /** `navigator.storage.estimate()` of this origin (`usage` in bytes). */
  async usage(): Promise<number | undefined> {
    return (await navigator.storage.estimate()).usage;
  },
};

export type Bench = typeof bench;
(window as unknown as { bench: Bench }).bench = bench;
document.getElementById('out')!.textContent = 'ready';
(window as unknown as { __ready: boolean }).__ready = true;
