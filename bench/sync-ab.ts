/**
 * A/B helper for the browser full sync (issue #18): the production build of the test page, one
 * full node with `BENCH_KEYS` generated keys, and `BENCH_RUNS` full syncs in fresh browser
 * contexts, each reported with its wall clock and the CPU seconds of every Chromium thread by
 * name (Linux /proc; the light client's worker threads are the `DedicatedWorker` ones).
 * `BENCH_PROFILE=dir`: CPU profiles of the workers of the first run. The first run also fills the
 * node's proof cache (its CPU drops by half after it): compare runs after the first. For A/B,
 * run it in two checkouts in turn, back to back.
 *
 *   BENCH_KEYS=200000 BENCH_RUNS=3 node bench/sync-ab.ts
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { build, preview } from 'vite';
import { CHROMIUM_PATH, Cleanup, REPO_ROOT, startNode } from '../e2e/harness.ts';
import type { Lc, StartOptions } from '../e2e/light-client/main.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { profileWorkers } from './worker-profile.ts';
import { cpuDelta, threadCpu } from './process-cpu.ts';

declare const lc: Lc;
const N = Number(process.env.BENCH_KEYS ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PROFILE = process.env.BENCH_PROFILE;
/** `BENCH_CONCURRENCY=4,8`: the client's requests in flight, alternating run by run (default: the client's own). */
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '').split(',').filter(Boolean).map(Number) as (number | undefined)[];
if (CONCURRENCY.length === 0) CONCURRENCY.push(undefined);
const cleanup = new Cleanup();
const log = (s: string): void => console.log(`sync-ab: ${s}`);

try {
  const outDir = await mkdtemp(join(tmpdir(), 'proofsync-ab-build-'));
  cleanup.add(outDir, (d) => rm(d, { recursive: true, force: true }));
  await build({
    configFile: false,
    root: REPO_ROOT,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, rollupOptions: { input: [join(REPO_ROOT, 'e2e/light-client/index.html')] }, minify: process.env.BENCH_MINIFY !== '0' },
    worker: { format: 'es' },
  });
  const node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 1_800_000 }), (n) => n.stop());
  const writer = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };
  const server = await preview({ configFile: false, root: REPO_ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
  cleanup.add(server, (s) => s.close());
  const url = `${server.resolvedUrls!.local[0].replace(/\/$/, '')}/e2e/light-client/index.html`;
  const browser = cleanup.add(
    await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'] }),
    (b) => b.close(),
  );
  const nodeCpu = async () => {
    const f = (await readFile(`/proc/${node.child.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
  for (let run = 0; run < RUNS; run++) {
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    const o: StartOptions = { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName: `ab-${run}`, concurrency: CONCURRENCY[run % CONCURRENCY.length] };
    const sync = () => page.evaluate(async (o) => (lc.start(o), lc.synced(1_800_000)), o);
    const before = await threadCpu();
    const n0 = await nodeCpu();
    const synced = PROFILE && run === 0 ? await profileWorkers(page, PROFILE, 'ab', sync) : await sync();
    const after = await threadCpu();
    const n1 = await nodeCpu();
    if (synced.root !== writer.root) throw new Error(`synced to ${synced.root}, writer at ${writer.root}`);
    const d = cpuDelta(before, after);
    const worker = d.filter(([k]) => k.includes('DedicatedWorker')).reduce((s, [, v]) => s + v, 0);
    const total = d.reduce((s, [, v]) => s + v, 0);
    log(`run ${run} (concurrency ${o.concurrency ?? 'default'}): sync ${(synced.ms / 1000).toFixed(2)} s, worker threads CPU ${worker.toFixed(2)} s, all Chromium CPU ${total.toFixed(2)} s, node CPU ${(n1 - n0).toFixed(2)} s`);
    log(`  threads: ${d.slice(0, 10).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
    await page.evaluate(() => lc.close());
    await context.close();
  }
} finally {
  await cleanup.run();
}
