/**
 * End-to-end harness: full-node child processes, a Vite dev server for test pages, and
 * headless Chromium and Firefox, all registered with one `Cleanup` so they stop whatever happens.
 *
 * Scenarios that run in both engines are written once against the page interface in
 * browsers/page.ts (`TestBrowser.open(url)` gives a ready `TestPage`: `evaluate`, `waitFor`,
 * `reload`, `close`, its console in `log`; `TestBrowser.context()` gives tabs sharing storage),
 * with two adapters: Playwright on Chromium (browsers/playwright.ts) and puppeteer-core over
 * WebDriver BiDi on Firefox ESR (browsers/puppeteer.ts). A test file runs them per engine with
 * `describe.each(BROWSERS)` and `useBrowser(name, cleanup)` (browsers/launch.ts), one engine
 * at a time. What only one engine can do (DevTools quota overrides, trusting a certificate by
 * its key) uses that engine's driver directly.
 *
 * @example
 * const cleanup = new Cleanup();
 * afterAll(() => cleanup.run());
 * const node = cleanup.add(await startNode(), (n) => n.stop());
 * const vite = cleanup.add(await startVite(), (v) => v.close());
 * const browser = cleanup.add(await launchChromium(), (b) => b.close());
 * const firefox = cleanup.add(await launchFirefox(), closeFirefox);
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import puppeteer, { type Browser as PuppeteerBrowser } from 'puppeteer-core';
import { createServer, type ViteDevServer } from 'vite';
import { startNodeProcess, type NodeProcess, type StartNodeOptions } from '../src/node/testing/process.ts';

export { ECHO_NODE_SCRIPT } from '../src/node/testing/process.ts';
export type { NodeProcess };

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

/** Disposers run last-in first-out; every one runs even if another throws. */
export class Cleanup {
  private readonly tasks: (() => Promise<void> | void)[] = [];

  add<T>(resource: T, dispose: (resource: T) => Promise<void> | void): T {
    this.tasks.push(() => dispose(resource));
    return resource;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.tasks.length) {
      try {
        await this.tasks.pop()!();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw new AggregateError(errors, `${errors.length} cleanup task(s) failed`);
  }
}

/** Starts a full node process (default: the echo test node) and reads its addresses.json. */
export function startNode(options: StartNodeOptions = {}): Promise<NodeProcess> {
  return startNodeProcess(options);
}

export interface ViteHandle {
  server: ViteDevServer;
  /** Base URL, e.g. http://127.0.0.1:5173 */
  url: string;
  close(): Promise<void>;
}

/**
 * A Vite dev server rooted at the repository on 127.0.0.1 and an ephemeral port. Its dependency
 * cache is private to this server, and the pages to serve are scanned up front so Vite does not
 * discover dependencies mid-test and reload the page.
 */
export async function startVite(options: { pages?: string[]; https?: { cert: string | Buffer; key: string | Buffer } } = {}): Promise<ViteHandle> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'proofsync-vite-'));
  const server = await createServer({
    configFile: false,
    root: REPO_ROOT,
    cacheDir,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null, https: options.https },
    // The SDK's worker and main-thread bridge are entries too: a dependency first met when the
    // worker loads makes Vite re-optimize and answer the worker's imports with 504 (a flaky
    // `WorkerFailed` on a fresh clone).
    optimizeDeps: { entries: [...(options.pages ?? ['e2e/**/*.html']), 'src/client/worker/entry.ts', 'src/client/worker/bridge-main.ts'] },
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0]?.replace(/\/$/, '');
  if (!url) {
    await server.close();
    throw new Error('vite did not report a local URL');
  }
  return {
    server,
    url,
    close: async () => {
      await server.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/**
 * Headless Chromium as Debian ships it; works as root (no sandbox). `trustSpki`: base64 SHA-256
 * hashes of public keys (`spkiHash` in src/node/testing/certificate.ts) whose certificates Chromium accepts
 * although no CA signed them, for exactly those keys: every other certificate is checked as usual.
 */
export function launchChromium(options: { trustSpki?: string[] } = {}): Promise<Browser> {
  const trust = options.trustSpki?.length ? [`--ignore-certificate-errors-spki-list=${options.trustSpki.join(',')}`] : [];
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage', ...trust],
  });
}

/**
 * Headless Firefox as Debian ships it (`firefox-esr`), driven by puppeteer-core over WebDriver
 * BiDi: no driver to download. Puppeteer gives it a fresh temporary profile (with its testing
 * prefs: no updates, no telemetry), deleted on close, and kills it if this process exits first. Close it with `closeFirefox`.
 */
export function launchFirefox(): Promise<PuppeteerBrowser> {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    headless: true,
    protocol: 'webDriverBiDi',
    timeout: 60_000, // a first start on a busy 2-core machine: 7 s measured on a quiet one
  });
}

/** Closes Firefox; if it has not exited within `graceMs` (or the close failed), kills it. */
export async function closeFirefox(browser: PuppeteerBrowser, graceMs = 10_000): Promise<void> {
  const child = browser.process();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([browser.close(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`firefox did not close within ${graceMs} ms`)), graceMs)))]);
  } finally {
    clearTimeout(timer);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Opens a page that records its console and errors, for failure messages. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage();
  const log: string[] = [];
  page.on('console', (m: ConsoleMessage) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e: Error) => log.push(`[pageerror] ${e.message}`));
  await page.goto(url);
  return { page, log };
}

/** `openPage`, then waits until the page's module has set `window.__ready` (its API is installed). */
export async function openReadyPage(browser: Browser, url: string): Promise<{ page: Page; log: string[] }> {
  const opened = await openPage(browser, url);
  await opened.page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, undefined, { timeout: 60_000 });
  return opened;
}

/**
 * Waits for the page to set `window.__result` (a JSON-serialisable value) and returns it.
 * On timeout the error carries the page's console.
 */
export async function pageResult<T>(page: Page, log: string[], timeoutMs = 30_000): Promise<T> {
  try {
    await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: timeoutMs });
  } catch (err) {
    throw new Error(`page gave no result within ${timeoutMs} ms; console:\n${log.join('\n')}`, { cause: err });
  }
  return page.evaluate(() => (window as unknown as { __result: unknown }).__result) as Promise<T>;
}
