/**
 * Where a light client's start-up time goes (issue 18): a Chromium performance trace of a warm
 * restart (navigation to the first local `get`) and of a fresh page's first `getVerified`,
 * on the production build of the e2e test page against a local full node, summarised as a
 * timeline from navigation start: resource fetches, script compile and evaluation per thread,
 * and the `proofsync:` User Timing marks of the page and the worker (worker/entry.ts).
 *
 * `node bench/startup-trace.ts [keys=2000] [runs=3]`; `TRACE_DIR=dir` also writes each trace's
 * JSON (open it in the DevTools Performance panel); `TRACE=0`: the marks only; `VERIFIED=0`,
 * `MISSED=0`: skip the fresh pages' first `getVerified`, the warm restart 100 commits behind;
 * `RELOAD=1`: the warm restarts reload one tab (the page starting the client as it loads)
 * instead of opening a new tab each; `SETTLE=ms`: a fresh page's new tab waits that long before
 * navigating; `BENCH_MINIFY=0`: readable names in `PROFILE_DIR` profiles; `XARGS`: more
 * Chromium flags, space-separated.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build, preview } from 'vite';
import { CHROMIUM_PATH, Cleanup, REPO_ROOT, startNode } from '../e2e/harness.ts';
import { BOOTED_MESSAGE } from '../e2e/light-client/boot-signal.ts';
import type { Boot, BootResult, Lc } from '../e2e/light-client/main.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { profileWorkers } from './worker-profile.ts';
import { TOKEN_FILE } from '../src/node/token.ts';
import { immutableAssets, seededBytes } from './lib.ts';

declare const lc: Lc;
const KEYS = Number(process.argv[2] ?? 2000);
const RUNS = Number(process.argv[3] ?? 3);
const TRACE_DIR = process.env.TRACE_DIR;
const CATEGORIES = ['devtools.timeline', 'blink.user_timing', 'v8.execute', 'disabled-by-default-v8.compile', 'loading', 'blink.resource'];

interface TraceEvent {
  name: string;
  cat: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown> & { data?: Record<string, unknown>; name?: string };
}

/** One line per interesting event: ms from navigation start, thread, what, duration. */
function summarise(events: TraceEvent[]): string[] {
  const threads = new Map<string, string>();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') threads.set(`${e.pid}:${e.tid}`, String(e.args?.name));
  const nav = events.find((e) => e.name === 'navigationStart' && e.cat.includes('blink.user_timing'));
  const t0 = nav?.ts ?? Math.min(...events.filter((e) => e.ts > 0).map((e) => e.ts));
  const thread = (e: TraceEvent): string => {
    const n = threads.get(`${e.pid}:${e.tid}`) ?? `${e.pid}:${e.tid}`;
    return n === 'CrRendererMain' ? 'main' : /Worker/i.test(n) ? 'worker' : n;
  };
  const out: { ts: number; line: string }[] = [];
  const add = (e: TraceEvent, what: string): void => {
    out.push({ ts: e.ts, line: `${((e.ts - t0) / 1000).toFixed(1).padStart(8)} ms  ${thread(e).padEnd(14)} ${what}${e.dur ? `  (${(e.dur / 1000).toFixed(1)} ms)` : ''}` });
  };
  const sendAt = new Map<string, TraceEvent>();
  const urls = new Map<string, string>();
  for (const e of events) {
    const d = e.args?.data;
    if (e.name === 'ResourceSendRequest' && d) {
      urls.set(String(d.requestId), String(d.url));
      sendAt.set(String(d.requestId), e);
      add(e, `fetch ${String(d.url).replace(/^.*\//, '')}`);
    } else if (e.name === 'ResourceFinish' && d) add(e, `fetched ${(urls.get(String(d.requestId)) ?? '?').replace(/^.*\//, '')}`);
    else if ((e.cat.includes('blink.user_timing') && e.name.startsWith('proofsync:')) || (e.name.startsWith('proofsync:') && e.ph !== 'M')) add(e, `mark ${e.name}`);
    else if (e.ph === 'X' && (e.dur ?? 0) >= 3000) {
      const url = String(d?.url ?? d?.fileName ?? e.args?.fileName ?? '').replace(/^.*\//, '');
      if (['EvaluateScript', 'v8.compileModule', 'v8.evaluateModule', 'v8.compile', 'FunctionCall', 'RunMicrotasks', 'v8.run', 'ParseHTML', 'ScriptCompiled', 'V8.CompileCode'].includes(e.name) || e.name.startsWith('v8.')) add(e, `${e.name} ${url}`);
    }
  }
  return out.sort((a, b) => a.ts - b.ts).map((o) => o.line);
}

/** The `proofsync:` marks of the page and its workers, in ms from the page's navigation start. */
async function marks(page: Page): Promise<string> {
  const read = () => ({ origin: performance.timeOrigin, marks: performance.getEntriesByType('mark').filter((m) => m.name.startsWith('proofsync:')).map((m) => [m.name.slice(10), m.startTime] as const) });
  const main = await page.evaluate(read);
  const all: (readonly [string, number])[] = main.marks.map(([n, t]) => [`page ${n}`, t] as const);
  for (const w of page.workers()) {
    const m = await w.evaluate(read).catch(() => undefined);
    if (m) all.push(...m.marks.map(([n, t]) => [`worker ${n}`, t + m.origin - main.origin] as const));
  }
  return all.sort((a, b) => a[1] - b[1]).map(([n, t]) => `${n} ${Math.round(t)}`).join(', ');
}

async function traced<T>(browser: Browser, page: Page, name: string, run: () => Promise<T>): Promise<T> {
  if (process.env.TRACE === '0') {
    const value = await run();
    console.log(`== ${name}: ${JSON.stringify(value)}\n   ${await marks(page)}`);
    return value;
  }
  await browser.startTracing(page, { categories: CATEGORIES });
  const value = await run();
  const buf = await browser.stopTracing();
  const trace = JSON.parse(buf.toString()) as { traceEvents: TraceEvent[] };
  if (TRACE_DIR) await writeFile(join(TRACE_DIR, `${name}.json`), buf);
  console.log(`\n== ${name}: ${JSON.stringify(value)}`);
  for (const l of summarise(trace.traceEvents)) console.log(l);
  return value;
}

/**
 * A CPU profile of the page's first worker from its first instruction (module evaluation
 * included): the worker waits for the debugger, the profiler starts, then it runs.
 */
async function profileFromStart(page: Page, file: string): Promise<() => Promise<void>> {
  const cdp = await page.context().newCDPSession(page);
  let next = 1;
  let session: string | undefined;
  const waiting = new Map<number, (result: unknown) => void>();
  const send = (sessionId: string, method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
    });
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const msg = JSON.parse(e.message) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  });
  cdp.on('Target.attachedToTarget', (e) => {
    if (e.targetInfo.type !== 'worker' || session) return;
    session = e.sessionId;
    void (async () => {
      await send(e.sessionId, 'Profiler.enable');
      await send(e.sessionId, 'Profiler.setSamplingInterval', { interval: 100 });
      await send(e.sessionId, 'Profiler.start');
      await send(e.sessionId, 'Runtime.runIfWaitingForDebugger');
    })();
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: true, flatten: false });
  return async () => {
    if (!session) return;
    const r = (await send(session, 'Profiler.stop')) as { profile: unknown };
    await writeFile(file, JSON.stringify(r.profile));
  };
}

const cleanup = new Cleanup();
try {
  const outDir = cleanup.add(await mkdtemp(join(tmpdir(), 'proofsync-trace-build-')), (d) => rm(d, { recursive: true, force: true }));
  await build({
    configFile: false,
    root: REPO_ROOT,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, rollupOptions: { input: [join(REPO_ROOT, 'e2e/light-client/index.html')] }, minify: process.env.BENCH_MINIFY !== '0' },
    worker: { format: 'es' },
  });
  const node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(KEYS)], readyTimeoutMs: 600_000 }), (n) => n.stop());
  const server = cleanup.add(await preview({ configFile: false, root: REPO_ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 }, plugins: [immutableAssets()] }), (s) => s.close());
  const url = `${server.resolvedUrls?.local[0]?.replace(/\/$/, '')}/e2e/light-client/index.html`;
  const browser = cleanup.add(
    await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage', ...(process.env.XARGS ? process.env.XARGS.split(' ') : [])] }),
    (b) => b.close(),
  );
  const opts = { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName: 'trace' };
  const context = await browser.newContext();
  let key = '';
  {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    await page.evaluate(async (o) => (lc.start(o), await lc.synced(120_000)), opts);
    key = (await page.evaluate(() => lc.entries('local', '80', 'ff')))[0]!.key;
    await page.evaluate(() => lc.close());
    await page.close();
  }
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    const stop = process.env.PROFILE_DIR ? await profileFromStart(page, join(process.env.PROFILE_DIR, `warm-${i}.cpuprofile`)) : undefined;
    await traced(browser, page, `warm restart ${i}`, async () => {
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
      return page.evaluate(
        async ({ o, key }) => {
          lc.start(o);
          const value = await lc.get(key, 'local');
          return { ms: Math.round(performance.now()), found: value !== null };
        },
        { o: opts, key },
      );
    });
    await stop?.();
    await page.evaluate(() => lc.close());
    await page.close();
  }
  // the page starts the client as it loads (`?boot=`), as an app does: no driver round trips
  const bootUrl = (b: Boot): string => `${url}?boot=${encodeURIComponent(JSON.stringify(b))}`;
  // the page's console signal, not polling: see BOOTED_MESSAGE
  const boot = async (page: Page, b: Boot): Promise<BootResult> => {
    const signal = page.waitForEvent('console', { predicate: (m) => m.text() === BOOTED_MESSAGE, timeout: 60_000 });
    await page.goto(bootUrl(b));
    await signal;
    return page.evaluate(() => (window as unknown as { __boot: BootResult }).__boot);
  };
  const reloaded = process.env.RELOAD === '1' ? await context.newPage() : undefined;
  for (let i = 0; i < RUNS; i++) {
    const page = reloaded ?? (await context.newPage());
    await traced(browser, page, `warm restart, page boots the client ${i}`, async () => {
      return boot(page, { o: opts, key, read: 'local' });
    });
    if (reloaded) {
      await reloaded.goto('about:blank');
      continue;
    }
    await page.evaluate(() => lc.close());
    await page.close();
  }
  // VERIFIED=0: skip the fresh pages' first getVerified (quicker runs on the warm path)
  for (let i = 0; i < (process.env.VERIFIED === '0' ? 0 : RUNS); i++) {
    const fresh = await browser.newContext();
    const page = await fresh.newPage();
    if (process.env.SETTLE) await new Promise((r) => setTimeout(r, Number(process.env.SETTLE)));
    await traced(browser, page, `first getVerified, page boots the client ${i}`, async () => {
      return boot(page, { o: { ...opts, storageName: `boot-${i}`, autoStart: false }, key: '00'.repeat(32), read: 'verified' });
    });
    await fresh.close();
  }
  for (let i = 0; i < (process.env.VERIFIED === '0' ? 0 : RUNS); i++) {
    const fresh = await browser.newContext();
    const page = await fresh.newPage();
    await traced(browser, page, `first getVerified ${i}`, async () => {
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
      const run = () => page.evaluate(async (o) => {
        lc.start(o);
        const v = await lc.getVerified('00'.repeat(32));
        return { ms: Math.round(performance.now()), sinceStart: Math.round(v.ms) };
      }, { ...opts, storageName: `fresh-${i}`, autoStart: false });
      // PROFILE_DIR=dir: a CPU profile of the (preloaded) worker from createLightClient to the answer
      return process.env.PROFILE_DIR ? profileWorkers(page, process.env.PROFILE_DIR, `first-verified-${i}`, run) : run();
    });
    await fresh.close();
  }
  // a warm restart 100 commits behind (10 keys each), as bench/browser.bench.ts: live at the head
  if (process.env.MISSED !== '0') {
    const token = (await readFile(join(node.dataDir, TOKEN_FILE), 'utf8')).trim();
    const rnd = seededBytes(18);
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < 100; i++) {
        const puts = Array.from({ length: 10 }, () => ({ key: hex(rnd(32)), value: hex(rnd(64)) }));
        const res = await fetch(`${node.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts }) });
        if (!res.ok) throw new Error(`commit ${i}: HTTP ${res.status}`);
      }
      const head = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };
      if (reloaded) {
        // RELOAD=1: the tab left on about:blank while the writer commits, then opened again
        await traced(browser, reloaded, `warm restart 100 commits behind, page boots the client ${run}`, () => boot(reloaded, { o: opts, key: head.root, read: 'head' }));
        await reloaded.goto('about:blank');
        continue;
      }
      const page = await context.newPage();
      await traced(browser, page, `warm restart 100 commits behind ${run}`, async () => {
        await page.goto(url);
        await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
        const go = () => page.evaluate(
          async ({ o, root }) => {
            lc.start(o);
            for (;;) {
              const s = await lc.synced(120_000);
              if (s.root === root) return { ms: Math.round(performance.now()) };
              await new Promise((res) => setTimeout(res, 5));
            }
          },
          { o: opts, root: head.root },
        );
        return process.env.PROFILE_DIR ? profileWorkers(page, process.env.PROFILE_DIR, `missed-${run}`, go) : go();
      });
      await page.evaluate(() => lc.close());
      await page.close();
    }
  }
} finally {
  await cleanup.run();
}
