/**
 * History log figures, in headless Chromium: `client.log.fetch` in the
 * light client's worker against a local host serving an N-operation log (log-server.ts;
 * default 1,000,000 operations, `BENCH_LOG_OPS` to change), batches of 1,024:
 *
 * - operations synced per second, verified and decoded in the worker and delivered to the
 *   page (not stored), and the same with `store: true` (IndexedDB, packed store) over the
 *   first `BENCH_LOG_STORED` operations (default 200,000);
 * - proof bytes per operation for batches of 1,024 at the full log size (the range proof of
 *   each batch; the pinned nodes come once per fetch), and that as a share of operation bytes
 *   (goal ≤ 5%), measured over 64 batches spread over the log.
 *
 * The page runs on Vite's dev server (the worker is not minified; its code is the same).
 */
import { multiaddr } from '@multiformats/multiaddr';
import { fetchLog } from '../src/protocol/client.ts';
import { createClientNode } from '../src/node/host.ts';
import { Cleanup, launchChromium, startNode, startVite } from '../e2e/harness.ts';
import type { LogFetchResult, LogPage } from '../e2e/log/main.ts';
import { type Figure, writeResults } from './lib.ts';

declare const logPage: LogPage;
const N = Number(process.env.BENCH_LOG_OPS ?? 1_000_000);
const STORED = Math.min(N, Number(process.env.BENCH_LOG_STORED ?? 200_000));
const BATCH = 1024;
const figures: Figure[] = [];
const cleanup = new Cleanup();
const log = (s: string): void => console.log(`log: ${s}`);

try {
  log(`starting a log server with ${N} operations`);
  const t0 = performance.now();
  const server = cleanup.add(await startNode({ script: new URL('./log-server.ts', import.meta.url).pathname, args: [String(N)], readyTimeoutMs: 1_800_000 }), (n) => n.stop());
  log(`server ready in ${Math.round((performance.now() - t0) / 1000)} s`);
  const peerId = server.file.peerId;

  // proof overhead, measured on the wire answers themselves
  const probe = cleanup.add(await createClientNode(), (c) => c.stop());
  let opBytes = 0;
  let proofBytes = 0;
  let ops = 0;
  const samples = 64;
  for (let k = 0; k < samples; k++) {
    const start = Math.floor(((N - BATCH) * k) / (samples - 1 || 1) / BATCH) * BATCH;
    const b = await fetchLog(probe, multiaddr(server.file.ws!), { start, end: Math.min(N, start + BATCH), logSize: N });
    ops += b.operations.length;
    for (const op of b.operations) opBytes += op.length;
    proofBytes += 32 * b.proof.digests.length;
  }
  const pinnedBytes = 32 * (await fetchLog(probe, multiaddr(server.file.ws!), { start: N - 1, end: N, logSize: N, pinned: true })).pinned.length;
  figures.push({ name: `operation bytes (one-key delta)`, value: opBytes / ops, unit: 'B/op', goal: null });
  figures.push({ name: `proof bytes per operation, batches of ${BATCH} at ${N.toLocaleString('en')} ops`, value: proofBytes / ops, unit: 'B/op', goal: null });
  figures.push({ name: `proof overhead vs operation bytes, batches of ${BATCH}`, value: (100 * proofBytes) / opBytes, unit: '%', goal: '<= 5' });
  figures.push({ name: `pinned nodes per fetch (once, at its lower bound), worst case`, value: pinnedBytes, unit: 'B', goal: null });

  const vite = cleanup.add(await startVite({ pages: ['e2e/log/index.html'] }), (v) => v.close());
  const browser = cleanup.add(await launchChromium(), (b) => b.close());
  const run = async (label: string, storageName: string, o: { to: number; store: boolean }): Promise<LogFetchResult> => {
    const page = await browser.newPage();
    page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
    await page.goto(`${vite.url}/e2e/log/index.html`);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, undefined, { timeout: 120_000 });
    await page.evaluate((s) => logPage.start(s), { db: peerId, writer: peerId, bootstrap: [server.file.ws!], storageName });
    // warm-up: connection, first announcement, worker modules (not timed; not stored)
    await page.evaluate(() => logPage.fetch({ to: 1024, batchSize: 1024, idsOnly: true }));
    const r = await page.evaluate((x) => logPage.fetch({ to: x.to, store: x.store, batchSize: 1024, idsOnly: true }), o);
    await page.evaluate(() => logPage.close());
    await page.close();
    if (r.progress?.next !== o.to) throw new Error(`${label}: stopped at ${r.progress?.next} of ${o.to}`);
    log(`${label}: ${o.to} ops in ${Math.round(r.ms)} ms, ${r.progress.rejected} rejected`);
    return r;
  };
  const plain = await run('verified, not stored', 'bench-log-plain', { to: N, store: false });
  figures.push({ name: `ops synced/s in the worker, ${N.toLocaleString('en')}-op log, batches of ${BATCH}, verified + decoded + delivered to the page`, value: N / (plain.ms / 1000), unit: 'ops/s', goal: null });
  figures.push({ name: `time to sync ${N.toLocaleString('en')} ops (not stored)`, value: plain.ms / 1000, unit: 's', goal: null });
  if (STORED > 0) {
    const stored = await run('verified, stored', 'bench-log-stored', { to: STORED, store: true });
    figures.push({ name: `ops synced/s with store: true (IndexedDB), first ${STORED.toLocaleString('en')} ops`, value: STORED / (stored.ms / 1000), unit: 'ops/s', goal: null });
  }
  writeResults('log', figures);
} finally {
  await cleanup.run();
}
