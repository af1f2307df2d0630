/**
 * IndexedDB figures (docs/design.md "Storage in the browser"), in headless Chromium inside
 * a dedicated worker: 100,000 puts of 64-byte values under 32-byte keys in batches of 2,048,
 * through PackedIdbStore and through one record per key, side by side in one run; then point
 * `get` latency from a freshly opened store (cold cache, then warm). Keys are written in random
 * order (worst case for pages: every batch touches most pages) and in sorted order (how range
 * sync writes).
 */
import { Cleanup, launchChromium, openPage, pageResult, startVite } from '../e2e/harness.ts';
import type { IdbTestApi } from '../e2e/idb/main.ts';
import type { Request } from '../e2e/idb/worker-messages.ts';
import { type Figure, writeResults } from './lib.ts';

const COUNT = Number(process.env.BENCH_IDB_KEYS ?? 100_000);
const BATCH = 2048;
const GETS = 2000;

const cleanup = new Cleanup();
try {
  const vite = cleanup.add(await startVite({ pages: ['e2e/idb/index.html', 'e2e/idb/worker.ts'] }), (v) => v.close());
  const browser = cleanup.add(await launchChromium(), (b) => b.close());
  const { page, log } = await openPage(browser, `${vite.url}/e2e/idb/index.html`);
  await pageResult(page, log);
  await page.evaluate(() => (window as unknown as { idbTest: IdbTestApi }).idbTest.spawn('bench'));
  const bench = (req: Omit<Extract<Request, { op: 'bench' }>, 'op'>) =>
    page.evaluate(
      (r) => (window as unknown as { idbTest: IdbTestApi }).idbTest.call<{ writeMs: number; getMs: number[]; halvesMs: [number, number]; found: number }>('bench', { op: 'bench', ...r }),
      req,
    );
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  const figures: Figure[] = [];
  const rates: Record<string, number> = {};
  for (const sorted of [false, true]) {
    const order = sorted ? 'sorted' : 'random';
    // alternate so neither side always runs on a warmer browser
    for (const kind of ['per-key', 'packed'] as const) {
      const r = await bench({ kind, name: `bench-${kind}-${order}`, count: COUNT, batch: BATCH, seed: 1, sorted, gets: GETS });
      if (r.found !== GETS) throw new Error(`${kind}: found ${r.found} of ${GETS} probed keys`);
      rates[`${kind}-${order}`] = COUNT / (r.writeMs / 1000);
      const label = kind === 'packed' ? 'PackedIdbStore' : 'one record per key';
      figures.push({ name: `${COUNT} puts (32 B keys, 64 B values, ${BATCH}/batch, ${order} order): ${label}`, value: COUNT / (r.writeMs / 1000), unit: 'records/s', goal: null });
      // per-probe times are coarse (a worker's clock ticks in ~100 µs here): report means of sums
      const half = GETS / 2;
      figures.push({ name: `point get after ${order} load, ${label}: mean of first ${half} probes (cold cache)`, value: (r.halvesMs[0] / half) * 1000, unit: 'µs', goal: null });
      figures.push({ name: `point get after ${order} load, ${label}: mean of next ${half} probes`, value: (r.halvesMs[1] / half) * 1000, unit: 'µs', goal: null });
      figures.push({ name: `point get after ${order} load, ${label}: p99 of next ${half} probes`, value: pct(r.getMs.slice(half), 0.99) * 1000, unit: 'µs', goal: null });
    }
    figures.push({ name: `packed / per-key put rate (${order} order)`, value: rates[`packed-${order}`] / rates[`per-key-${order}`], unit: 'ratio', goal: null });
  }
  writeResults('idb', figures);
} finally {
  await cleanup.run();
}
