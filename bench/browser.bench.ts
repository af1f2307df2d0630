/**
 * Browser light client figures, in headless Chromium against a local full
 * node process, with the production build of the test page (vite build, so the worker is the
 * bundled one a dApp would ship):
 *
 * - a full sync of N keys (32-byte keys, 64-byte values; default 1,000,000, `BENCH_KEYS` to
 *   shrink) over WebSockets in the worker, against a raw baseline in the same run
 *   (e2e/light-client/baseline-worker.ts: same node, same transport and concurrency, each
 *   key-value hashed once and written packed to IndexedDB, nothing verified);
 * - main-thread long tasks (> 50 ms) during that sync, and during a 1/8 partial sync over each
 *   connection placement (WebSockets in the worker, WebSockets on the main thread, WebRTC-Direct
 *   on the main thread): the measurement that decides where connections live;
 * - the worker's peak JS heap (CDP `Runtime.getHeapUsage` on the worker target, sampled every
 *   250 ms);
 * - time from navigation start to the first `getVerified` answer (fresh page and storage), with
 *   and without `preloadLightClient()` on the page; `BENCH_ONLY=verified` measures only this,
 *   `BENCH_REPEAT` times each, into browser-verified.json;
 * - the first `getVerified` and a warm restart's first local `get` from navigation start with the
 *   test page starting the client as it loads (`?boot=`, as an app does): the figures above also
 *   hold the test driver's round trips between the page's load and `createLightClient`;
 * - bundle sizes (minified + gzip) of the page entry, the worker and the main-thread bridge.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build, preview } from 'vite';
import { CHROMIUM_PATH, Cleanup, closeFirefox, launchFirefox, REPO_ROOT, startNode } from '../e2e/harness.ts';
import { BOOTED_MESSAGE } from '../e2e/light-client/boot-signal.ts';
import type { Boot, BootResult, Lc, StartOptions } from '../e2e/light-client/main.ts';
import { TOKEN_FILE } from '../src/node/token.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../src/node/testing/process.ts';
import type { Bench } from './browser-page/main.ts';
import { type Figure, immutableAssets, seededBytes, writeResults } from './lib.ts';
import { profileWorkers } from './worker-profile.ts';
import { cpuDelta, machineQuiet, machineTicks, threadCpu } from './process-cpu.ts';

declare const lc: Lc;
declare const bench: Bench;
const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const SYNC_TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 1_800_000);
/** `BENCH_ONLY=verified`: only the first-getVerified figure (and bundle sizes), repeated `BENCH_REPEAT` times. */
const ONLY_VERIFIED = process.env.BENCH_ONLY === 'verified';
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
/** `BENCH_BASELINE=0`, `BENCH_PLACEMENT=0`, `BENCH_FIREFOX=0`, `BENCH_VERIFIED=0`: skip those parts (quicker runs). `BENCH_MINIFY=0`: an unminified build (readable profiles). */
const PROFILE = process.env.BENCH_PROFILE;
const skip = (part: string): boolean => process.env[`BENCH_${part}`] === '0';
/** Commits the writer makes while the page is closed, before the second warm restart. */
const MISSED_COMMITS = 100;
const KEYS_PER_COMMIT = 10;
/** 32-byte keys, 64-byte values: the generated database's and the commits' key-value bytes. */
const KV_BYTES = 32 + 64;
const figures: Figure[] = [];
const cleanup = new Cleanup();
const log = (s: string): void => console.log(`browser: ${s}`);

async function bundle(outDir: string): Promise<void> {
  await build({
    configFile: false,
    root: REPO_ROOT,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      rollupOptions: { input: [join(REPO_ROOT, 'e2e/light-client/index.html'), join(REPO_ROOT, 'bench/browser-page/index.html')] },
      // BENCH_MINIFY=0: readable function names in BENCH_PROFILE profiles
      minify: process.env.BENCH_MINIFY !== '0',
    },
    worker: { format: 'es' },
  });
}

async function sizes(outDir: string): Promise<void> {
  const assets = join(outDir, 'assets');
  const files = (await readdir(assets)).filter((f) => f.endsWith('.js'));
  const html = await readFile(join(outDir, 'e2e/light-client/index.html'), 'utf8');
  const entry = html.match(/assets\/([^"]+\.js)/)?.[1];
  const gz = async (f: string) => {
    const b = await readFile(join(assets, f));
    return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
  };
  const report = async (label: string, match: (f: string) => boolean) => {
    const f = files.find(match);
    if (!f) return log(`no ${label} chunk among ${files.join(', ')}`);
    const s = await gz(f);
    figures.push({ name: `bundle: ${label} (${f}), minified + gzip`, value: s.gzip / 1024, unit: 'KiB', goal: null });
    figures.push({ name: `bundle: ${label}, minified`, value: s.raw / 1024, unit: 'KiB', goal: null });
  };
  await report('main-thread entry (page + SDK API)', (f) => f === entry);
  await report('worker entry (engine, IndexedDB; what a local read waits for)', (f) => f.startsWith('entry-'));
  await report('worker network chunk (libp2p WebSockets, Noise, Yamux, gossipsub)', (f) => f.startsWith('network-'));
  await report('main-thread bridge chunk (loaded only for WebRTC / main-thread WebSockets)', (f) => f.startsWith('bridge-main'));
  log(`chunks: ${files.join(', ')}`);
}

/** User + system CPU seconds of process `pid` so far (Linux /proc), or undefined elsewhere. */
async function processCpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return undefined;
  }
}

async function newPage(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
  await machineQuiet(); // the new tab's own work done before the navigation (machineQuiet)
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
  return page;
}

/**
 * The light client worker's heap through the DevTools protocol (`performance.memory` does not
 * exist in workers): auto-attach to the page's workers, then `Runtime.getHeapUsage` in the one
 * whose script is the client's worker entry.
 */
async function workerHeap(page: Page): Promise<(method?: string) => Promise<number | undefined>> {
  const cdp = await page.context().newCDPSession(page);
  let session: string | undefined;
  let nextId = 1;
  const waiting = new Map<number, (r: { usedSize?: number }) => void>();
  cdp.on('Target.attachedToTarget', (e: { sessionId: string; targetInfo: { type: string; url: string } }) => {
    if (e.targetInfo.type === 'worker' && /\/entry-[^/]*\.js/.test(e.targetInfo.url)) session = e.sessionId;
  });
  cdp.on('Target.receivedMessageFromTarget', (e: { message: string }) => {
    const m = JSON.parse(e.message) as { id?: number; result?: { usedSize?: number } };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result ?? {});
    if (m.id !== undefined) waiting.delete(m.id);
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  return async (method = 'Runtime.getHeapUsage') => {
    if (!session) return undefined;
    const id = nextId++;
    const result = new Promise<{ usedSize?: number }>((resolve) => waiting.set(id, resolve));
    await cdp.send('Target.sendMessageToTarget', { sessionId: session, message: JSON.stringify({ id, method }) });
    return (await result).usedSize;
  };
}

/** Samples the worker's heap while `until` runs. */
async function sampleHeap<T>(page: Page, until: Promise<T>): Promise<{ value: T; peak: number | undefined; afterGc: number | undefined }> {
  let peak: number | undefined;
  let done = false;
  const heap = await workerHeap(page);
  const sampler = (async () => {
    while (!done) {
      const used = await heap().catch(() => undefined);
      if (used !== undefined) peak = Math.max(peak ?? 0, used);
      await new Promise((r) => setTimeout(r, 250)); // the sampling period
    }
  })();
  let value: T;
  try {
    value = await until;
  } finally {
    done = true;
    await sampler;
  }
  // what is live, as opposed to garbage V8 has not collected yet
  await heap('HeapProfiler.collectGarbage').catch(() => undefined);
  const afterGc = await heap().catch(() => undefined);
  return { value, peak, afterGc };
}

/** A page of `context` on `url`, once its module is ready. */
async function contextPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
  await machineQuiet();
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
  return page;
}

/** The writer commits MISSED_COMMITS batches of KEYS_PER_COMMIT new keys (HTTP API); returns its head. */
async function commitMissed(node: NodeProcess): Promise<{ root: string; seq: number }> {
  const token = (await readFile(join(node.dataDir, TOKEN_FILE), 'utf8')).trim();
  // new keys each time: a fixed seed here wrote the same key-values on both calls, so the second
  // call's 100 commits left the state as it was (and its catch-up had nothing to change)
  const rnd = (n: number): Uint8Array => randomBytes(n);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  for (let i = 0; i < MISSED_COMMITS; i++) {
    const puts = Array.from({ length: KEYS_PER_COMMIT }, () => ({ key: hex(rnd(32)), value: hex(rnd(64)) }));
    const res = await fetch(`${node.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts }) });
    if (!res.ok) throw new Error(`commit ${i}: HTTP ${res.status} ${await res.text()}`);
  }
  return (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string; seq: number };
}

let warmKey = '';

try {
  const outDir = await mkdtemp(join(tmpdir(), 'proofsync-bench-build-'));
  cleanup.add(outDir, (d) => rm(d, { recursive: true, force: true }));
  log(`building the test page`);
  await bundle(outDir);
  await sizes(outDir);

  log(`starting a full node with ${N} generated keys`);
  const t0 = performance.now();
  const node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 1_800_000 }), (n) => n.stop());
  log(`node ready in ${Math.round((performance.now() - t0) / 1000)} s`);
  const writer = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string; seq: number };

  const server = await preview({ configFile: false, root: REPO_ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 }, plugins: [immutableAssets()] });
  cleanup.add(server, (s) => s.close());
  const base = server.resolvedUrls?.local[0]?.replace(/\/$/, '');
  const url = `${base}/e2e/light-client/index.html`;
  const benchUrl = `${base}/bench/browser-page/index.html`;

  const browser = cleanup.add(
    await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'],
    }),
    (b) => b.close(),
  );
  // BENCH_CONCURRENCY: the client's requests in flight (default: the client's own)
  const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
  const opts = (name: string, bootstrap = [node.file.ws!]): StartOptions => ({ db: node.file.db!, writer: node.file.peerId, bootstrap, storageName: name, concurrency });

  // 1. First getVerified answer from navigation start, on a fresh page and storage (a fresh
  //    browser context each time: nothing cached), with the test page calling
  //    `preloadLightClient()` first thing as the README advises, and without (`?preload=0`).
  //    The figures are the first run's, as a user's first visit; with BENCH_REPEAT the medians
  //    of all runs are reported beside them.
  for (const preload of skip('VERIFIED') && !ONLY_VERIFIED ? [] : [true, false]) {
    const runs: { sinceNavigation: number; sinceStart: number }[] = [];
    const how = preload ? 'the page preloads the worker' : 'no preloadLightClient';
    for (let i = 0; i < REPEAT; i++) {
      const page = await newPage(browser, preload ? url : `${url}?preload=0`);
      const key = '00'.repeat(32);
      const r = await page.evaluate(
        async ({ o, key }) => {
          lc.start(o);
          const v = await lc.getVerified(key);
          return { sinceNavigation: performance.now(), sinceStart: v.ms };
        },
        { o: { ...opts(`bench-verified-${i}`), autoStart: false }, key },
      );
      runs.push(r);
      log(`first getVerified (${how}): ${Math.round(r.sinceNavigation)} ms from navigation, ${Math.round(r.sinceStart)} ms from createLightClient`);
      await page.context().close();
    }
    figures.push({ name: `first getVerified answer, from navigation start (fresh page, loopback /ws; ${how})`, value: runs[0].sinceNavigation, unit: 'ms', goal: '<= 1000' });
    figures.push({ name: `first getVerified answer, from createLightClient (${how})`, value: runs[0].sinceStart, unit: 'ms', goal: null });
    if (REPEAT > 1) {
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
      figures.push({ name: `first getVerified answer, from navigation start, median of ${REPEAT} fresh pages (${how})`, value: median(runs.map((r) => r.sinceNavigation)), unit: 'ms', goal: null });
      figures.push({ name: `first getVerified answer, from createLightClient, median of ${REPEAT} fresh pages (${how})`, value: median(runs.map((r) => r.sinceStart)), unit: 'ms', goal: null });
    }
  }
  // 1b. The same with the page starting the client as it loads (`?boot=`, e2e/light-client/main.ts),
  //     as an app does: the figures above also hold the test driver's round trips between the
  //     page's load and `lc.start` (150-450 ms on a loaded 2-core machine).
  const bootUrl = (b: Boot): string => `${url}?boot=${encodeURIComponent(JSON.stringify(b))}`;
  // the page's console signal, not polling: see BOOTED_MESSAGE
  const boot = async (page: Page, b: Boot): Promise<BootResult> => {
    const signal = page.waitForEvent('console', { predicate: (m) => m.text() === BOOTED_MESSAGE, timeout: 60_000 });
    await page.goto(bootUrl(b));
    await signal;
    const r = await page.evaluate(() => (window as unknown as { __boot: BootResult }).__boot);
    if (r.error) throw new Error(`the booted page failed: ${r.error}`);
    return r;
  };
  if (!skip('VERIFIED') || ONLY_VERIFIED) {
    const runs: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await machineQuiet(); // the new tab's own work done before the navigation (machineQuiet)
      const r = await boot(page, { o: { ...opts(`bench-verified-boot-${i}`), autoStart: false }, key: '00'.repeat(32), read: 'verified' });
      runs.push(r.ms);
      log(`first getVerified (the page starts the client as it loads): ${Math.round(r.ms)} ms from navigation`);
      await context.close();
    }
    figures.push({ name: 'first getVerified answer, from navigation start, the page starting the client as it loads (fresh page, loopback /ws)', value: runs[0], unit: 'ms', goal: '<= 1000' });
    if (REPEAT > 1) figures.push({ name: `first getVerified answer, from navigation start, the page starting the client as it loads, median of ${REPEAT} fresh pages`, value: runs.sort((a, b) => a - b)[runs.length >> 1], unit: 'ms', goal: null });
  }
  if (!ONLY_VERIFIED) {
    // 2. The floors, prepared before anything is timed (floor-server.ts fetches the whole sync's
    //    answers from the node once and rebuilds the hashed messages), each in a dedicated worker.
    let floorMs: number | undefined;
    {
      log('preparing the floors (the whole sync fetched once from the node)');
      const floorServer = await startNodeProcess({
        script: fileURLToPath(new URL('./floor-server.ts', import.meta.url)),
        args: [node.file.ws!, writer.root],
        readyTimeoutMs: 1_800_000,
      });
      try {
        log(floorServer.output().trim().split('\n').filter((l) => l.startsWith('floor:')).join('; '));
        const page = await newPage(browser, benchUrl);
        const transport = await page.evaluate((req) => bench.floor(req), { kind: 'transport' as const, addr: floorServer.file.ws!, concurrency: 4 });
        const hashing = await page.evaluate((req) => bench.floor(req), { kind: 'hashing' as const, addr: floorServer.file.ws!, concurrency: 1 });
        await page.context().close();
        log(`transport floor: ${transport.items} answers, ${transport.bytes} bytes in ${Math.round(transport.ms)} ms; hashing floor: ${hashing.items} messages, ${hashing.bytes} bytes in ${Math.round(hashing.ms)} ms`);
        figures.push({ name: `transport floor: the sync's ${transport.items} answers (${(transport.bytes / 2 ** 20).toFixed(1)} MiB) from memory into a worker over /ws, 4 streams`, value: transport.ms / 1000, unit: 's', goal: null });
        figures.push({ name: 'transport floor throughput', value: transport.bytes / 2 ** 20 / (transport.ms / 1000), unit: 'MiB/s', goal: null });
        figures.push({ name: `hashing floor: SHA-256 in a worker over the sync's ${hashing.items} messages (${(hashing.bytes / 2 ** 20).toFixed(1)} MiB)`, value: hashing.ms / 1000, unit: 's', goal: null });
        floorMs = transport.ms + hashing.ms;
      } finally {
        await floorServer.stop();
      }
    }

    // 3. The raw baseline, then the light client, same node and transport.
    let baselineMs: number | undefined;
    if (!skip('BASELINE')) {
      // no light client worker idling beside the baseline's
      const page = await newPage(browser, `${url}?preload=0`);
      const b = await page.evaluate((req) => lc.baseline(req), { addr: node.file.ws!, root: writer.root, storageName: 'bench-baseline', concurrency: 4 });
      if (b.keyValues !== N) throw new Error(`baseline fetched ${b.keyValues} of ${N} key-values`);
      baselineMs = b.ms;
      figures.push({ name: `raw baseline: ${N} key-values fetched, hashed once, written packed to IndexedDB`, value: b.ms / 1000, unit: 's', goal: null });
      await page.context().close();
    }
    // one browser context for the full sync and both warm restarts: its storage stays
    const context = await browser.newContext();
    {
      const page = await contextPage(context, url);
      await page.evaluate(() => lc.resetLongTasks());
      const sync = () =>
        page.evaluate(
          async ({ o, timeout }) => {
            lc.start(o);
            return lc.synced(timeout);
          },
          { o: opts('bench-full'), timeout: SYNC_TIMEOUT_MS },
        );
      // BENCH_PROFILE=dir: a CPU profile of each worker during the full sync
      const nodeCpuBefore = await processCpuSeconds(node.child.pid);
      const browserCpuBefore = await threadCpu();
      const ticksBefore = await machineTicks();
      const { value: synced, peak, afterGc } = await sampleHeap(page, PROFILE ? profileWorkers(page, PROFILE, 'full-sync', sync) : sync());
      const nodeCpuAfter = await processCpuSeconds(node.child.pid);
      const browserCpuAfter = await threadCpu();
      const ticksAfter = await machineTicks();
      if (synced.root !== writer.root) throw new Error(`synced to ${synced.root}, writer is at ${writer.root}`);
      const rec = await page.evaluate(() => lc.recorded());
      figures.push({ name: `light client: full sync of ${N} keys over /ws (worker)`, value: synced.ms / 1000, unit: 's', goal: null });
      // what the worker waits on when it is not the bottleneck: the serving node's CPU (proofs, Noise, Yamux) during the sync
      if (nodeCpuBefore !== undefined && nodeCpuAfter !== undefined) {
        figures.push({ name: 'full node process CPU during the full sync (user + system)', value: nodeCpuAfter - nodeCpuBefore, unit: 's', goal: null });
      }
      // whether the sync waits on the machine rather than on itself: on 2 cores, the browser's
      // processes (the worker, IndexedDB's backend, the network service) and the node share them
      {
        const used = cpuDelta(browserCpuBefore, browserCpuAfter);
        const sum = (match: (thread: string) => boolean): number => used.filter(([k]) => match(k)).reduce((x, [, v]) => x + v, 0);
        figures.push({ name: 'browser CPU during the full sync, all its processes and threads (user + system)', value: sum(() => true), unit: 's', goal: null });
        figures.push({ name: "browser CPU during the full sync: the light client's worker thread", value: sum((k) => k.includes('DedicatedWorker')), unit: 's', goal: null });
        for (const [thread, seconds] of used.slice(0, 6)) {
          if (!thread.includes('DedicatedWorker')) figures.push({ name: `browser CPU during the full sync: thread ${thread}`, value: seconds, unit: 's', goal: null });
        }
      }
      if (ticksBefore && ticksAfter) {
        figures.push({ name: `machine CPU busy during the full sync (all ${availableParallelism()} cores)`, value: (ticksAfter.busy - ticksBefore.busy) / (ticksAfter.total - ticksBefore.total), unit: 'share', goal: null });
      }
      if (floorMs !== undefined) figures.push({ name: `full sync of ${N} keys / (transport floor + hashing floor)`, value: synced.ms / floorMs, unit: 'ratio', goal: '<= 1.2' });
      if (baselineMs !== undefined) figures.push({ name: 'light client / raw baseline', value: synced.ms / baselineMs, unit: 'ratio', goal: '<= 1.5' });
      figures.push({ name: 'answer bytes received (proofs included)', value: (rec.last?.bytes ?? 0) / 2 ** 20, unit: 'MiB', goal: null });
      figures.push({ name: 'main-thread long tasks > 50 ms during the full sync', value: rec.longTasks.over50, unit: 'tasks', goal: '<= 0' });
      figures.push({ name: 'longest main-thread task during the full sync', value: rec.longTasks.maxMs, unit: 'ms', goal: null });
      if (peak !== undefined) figures.push({ name: 'peak worker JS heap during the full sync', value: peak / 2 ** 20, unit: 'MiB', goal: '<= 200' });
      else log('could not read the worker heap over CDP: no heap figure');
      if (afterGc !== undefined) figures.push({ name: 'worker JS heap at the end of the full sync, after a forced GC', value: afterGc / 2 ** 20, unit: 'MiB', goal: null });
      // a key the store holds, for the warm restart's first read
      for (const [lo, hi] of [['8000', '8001'], ['80', '81'], ['80', 'ff']]) {
        warmKey = (await page.evaluate(([start, end]) => lc.entries('local', start, end), [lo, hi]))[0]?.key ?? '';
        if (warmKey) break;
      }
      await page.evaluate(() => lc.close());
      await page.close();
    }

    // 4. Warm restart: the same storage, a page opened again. First local `get` from navigation
    //    start; then, after the writer committed while no page was open, live at its head again.
    //    All in one tab that has navigated before: headless Chromium 156 loads its omnibox WebUI
    //    (dozens of scripts) on a new tab's first navigations, which on 2 cores took more than half
    //    of these figures (`bench/startup-trace.ts`: 1.9-2.5 s to live at the head in new tabs,
    //    0.96-1.19 s reloading one, `RELOAD=1`); a reloaded app's tab does not do that work.
    const tab = await contextPage(context, url);
    await machineQuiet();
    // the test driver starts the client once the page is loaded (round trips included)
    const driven = async <T,>(run: () => Promise<T>): Promise<T> => {
      await machineQuiet();
      await tab.goto(url);
      await tab.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
      const out = await run();
      await tab.evaluate(() => lc.close());
      await tab.goto('about:blank');
      return out;
    };
    {
      const r = await driven(() =>
        tab.evaluate(
          async ({ o, key }) => {
            lc.start(o);
            const value = await lc.get(key, 'local');
            const ms = performance.now();
            await lc.synced(60_000);
            return { ms, value };
          },
          { o: opts('bench-full'), key: warmKey },
        ),
      );
      if (r.value === null) throw new Error(`warm restart: the stored key ${warmKey} read as absent`);
      figures.push({ name: `warm restart: navigation to first local get, ${N} keys`, value: r.ms, unit: 'ms', goal: '<= 200' });
    }
    // the same, the page starting the client as it loads (`?boot=`, as an app does; see 1b), and
    // reloaded: the tab navigates to it again while the client runs
    {
      const runs: number[] = [];
      for (let i = 0; i < REPEAT; i++) {
        await machineQuiet();
        const r = await boot(tab, { o: opts('bench-full'), key: warmKey, read: 'local' });
        if (r.value === null) throw new Error(`warm restart (boot): the stored key ${warmKey} read as absent`);
        runs.push(r.ms);
        await tab.evaluate(() => lc.synced(60_000));
      }
      await tab.evaluate(() => lc.close());
      await tab.goto('about:blank');
      figures.push({ name: `warm restart: navigation to first local get, the page reloaded and starting the client as it loads, ${N} keys`, value: runs[0], unit: 'ms', goal: '<= 200' });
      if (REPEAT > 1) figures.push({ name: `warm restart: navigation to first local get, the page reloaded and starting the client as it loads, median of ${REPEAT}`, value: runs.sort((a, b) => a - b)[runs.length >> 1], unit: 'ms', goal: null });
    }
    const head = await commitMissed(node);
    {
      const r = await driven(() =>
        tab.evaluate(
          async ({ o, root, timeout }) => {
            lc.start(o);
            const deadline = performance.now() + timeout;
            for (;;) {
              const s = await lc.synced(timeout);
              if (s.root === root) return { ms: performance.now(), seq: s.seq };
              if (performance.now() > deadline) throw new Error(`not at ${root} within ${timeout} ms (at ${s.root})`);
              await new Promise((res) => setTimeout(res, 5)); // the next synced event
            }
          },
          { o: opts('bench-full'), root: head.root, timeout: 120_000 },
        ),
      );
      figures.push({ name: `warm restart: navigation to live at the head after ${MISSED_COMMITS} missed commits`, value: r.ms, unit: 'ms', goal: '<= 1500' });
    }
    // the same, the page starting the client as it loads (`?boot=`, see 1b): the figure above also
    // holds the driver's round trips between the page's load and `lc.start` (500-1000 ms of it on
    // a loaded 2-core machine, `proofsync:create` in bench/startup-trace.ts)
    {
      // the tab stays on about:blank (no client) while the writer commits, then opens the page again
      const again = await commitMissed(node);
      await machineQuiet();
      const r = await boot(tab, { o: opts('bench-full'), key: again.root, read: 'head' });
      if (r.value !== again.root) throw new Error(`warm restart (boot): at ${r.value}, not at the head ${again.root}`);
      figures.push({ name: `warm restart: navigation to live at the head after ${MISSED_COMMITS} missed commits, the page reopened and starting the client as it loads`, value: r.ms, unit: 'ms', goal: '<= 1500' });
      await tab.evaluate(() => lc.close());
      await tab.close();
    }

    // 5. Storage: the origin's usage once the store is closed and reopened (its write log
    //    compacted into pages), against the key-value bytes it holds.
    {
      const page = await contextPage(context, benchUrl);
      const usage = await page.evaluate(() => bench.usage());
      const raw = (N + 2 * MISSED_COMMITS * KEYS_PER_COMMIT) * KV_BYTES;
      if (usage !== undefined) figures.push({ name: `IndexedDB bytes / raw key-value bytes, ${N} keys, Chromium`, value: usage / raw, unit: 'ratio', goal: '<= 1.5' });
      log(`chromium: origin usage ${usage} bytes for ${raw} key-value bytes`);
      // where those bytes go: the packed pages by record kind, the write log, and IndexedDB's own share
      const held = await page.evaluate((name) => bench.storeBytes(name), 'bench-full');
      const keys = N + 2 * MISSED_COMMITS * KEYS_PER_COMMIT;
      const perKey = (b: number) => b / keys;
      const kind = (k: string) => held.kinds[k] ?? { records: 0, keyBytes: 0, valueBytes: 0 };
      const recordBytes = (k: string) => kind(k).keyBytes + kind(k).valueBytes + 8 * kind(k).records; // page.ts: two u32 offsets per entry
      figures.push({ name: 'storage: trie node records (n) in the pages, bytes per key', value: perKey(recordBytes('n')), unit: 'B', goal: null });
      figures.push({ name: 'storage: value records (v) in the pages, bytes per key', value: perKey(recordBytes('v')), unit: 'B', goal: null });
      figures.push({ name: 'storage: page record bytes / raw key-value bytes', value: held.pageBytes / raw, unit: 'ratio', goal: null });
      if (usage !== undefined) figures.push({ name: 'storage: IndexedDB usage / page and log record bytes (the browser\'s own overhead)', value: usage / (held.pageBytes + held.logBytes), unit: 'ratio', goal: null });
      log(`chromium store: ${held.pages} pages (${held.pageBytes} bytes), ${held.logRecords} log records (${held.logBytes} bytes), kinds ${JSON.stringify(held.kinds)}`);
    }
    await context.close();

    // 6. Connection placement: a 1/8 partial sync over each, long tasks counted after connecting.
    const placements: [string, Partial<StartOptions>, string][] = skip('PLACEMENT') ? [] : [
      ['WebSockets in the worker', { websocketsIn: 'worker' }, node.file.ws!],
      ['WebSockets on the main thread', { websocketsIn: 'main' }, node.file.ws!],
      ['WebRTC-Direct on the main thread', {}, node.file.webrtcDirect!],
    ];
    for (const [label, extra, addr] of placements) {
      const page = await newPage(browser, url);
      const r = await page.evaluate(
        async ({ o, timeout }) => {
          lc.start(o);
          // count from the first answer on: module loading and dialing are not the sync
          await new Promise<void>((resolve) => {
            const check = () => ((lc.recorded().last?.requests ?? 0) > 0 ? resolve() : requestAnimationFrame(check));
            check();
          });
          lc.resetLongTasks();
          const s = await lc.synced(timeout);
          return { ms: s.ms, longTasks: lc.recorded().longTasks, keyValues: lc.recorded().last?.keyValues ?? 0 };
        },
        { o: { ...opts(`bench-placement-${label}`, [addr]), ...extra, ranges: [{ start: '00', end: '1f' + 'ff'.repeat(32) }] }, timeout: SYNC_TIMEOUT_MS },
      );
      figures.push({ name: `placement, ${label}: 1/8 partial sync (${r.keyValues} keys)`, value: r.ms / 1000, unit: 's', goal: null });
      figures.push({ name: `placement, ${label}: main-thread long tasks > 50 ms during the sync`, value: r.longTasks.over50, unit: 'tasks', goal: null });
      figures.push({ name: `placement, ${label}: main-thread long-task time during the sync`, value: r.longTasks.totalMs, unit: 'ms', goal: null });
      await page.evaluate(() => lc.close());
      await page.context().close();
    }
  }

  // 7. Firefox's storage footprint: a full sync of the same database (now at the writer's head).
  if (!ONLY_VERIFIED && !skip('FIREFOX')) {
    const firefox = cleanup.add(await launchFirefox(), (b) => closeFirefox(b));
    const context = await firefox.createBrowserContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, { timeout: 60_000 });
    const synced = await page.evaluate(
      async ({ o, timeout }) => {
        lc.start(o);
        const s = await lc.synced(timeout);
        await lc.close();
        return s;
      },
      { o: opts('bench-firefox'), timeout: SYNC_TIMEOUT_MS },
    );
    figures.push({ name: `firefox: full sync of ${N + 2 * MISSED_COMMITS * KEYS_PER_COMMIT} keys over /ws (worker)`, value: synced.ms / 1000, unit: 's', goal: null });
    await page.goto(benchUrl);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, { timeout: 60_000 });
    const usage = await page.evaluate(() => bench.usage());
    const raw = (N + 2 * MISSED_COMMITS * KEYS_PER_COMMIT) * KV_BYTES;
    if (usage !== undefined) figures.push({ name: `IndexedDB bytes / raw key-value bytes, ${N} keys, Firefox`, value: usage / raw, unit: 'ratio', goal: '<= 1.5' });
    const held = await page.evaluate((name) => bench.storeBytes(name), 'bench-firefox');
    if (usage !== undefined) figures.push({ name: 'storage, Firefox: IndexedDB usage / page and log record bytes (the browser\'s own overhead)', value: usage / (held.pageBytes + held.logBytes), unit: 'ratio', goal: null });
    log(`firefox: origin usage ${usage} bytes for ${raw} key-value bytes`);
    await context.close();
  }

  writeResults(ONLY_VERIFIED ? 'browser-verified' : 'browser', figures);
} finally {
  await cleanup.run();
}
