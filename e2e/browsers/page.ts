/**
 * The small page interface the cross-browser scenarios are written against: a scenario opens
 * test pages, runs functions in them, reloads and closes them, and reads their console, without
 * knowing which engine or driver is underneath. Two adapters implement it: Playwright on
 * Chromium (playwright.ts) and puppeteer-core over WebDriver BiDi on Firefox (puppeteer.ts);
 * `launchBrowser` (launch.ts) picks one by name.
 *
 * @example
 * const browser = await launchBrowser('firefox');
 * const page = await browser.open(`${vite.url}/e2e/live/index.html`); // ready: window.__ready
 * const r = await page.evaluate((n) => live.tail(n), 1);
 * await page.close();
 * await browser.close();
 */

/** The engines the cross-browser scenarios run in. */
export type BrowserName = 'chromium' | 'firefox';

/** Every engine, in the order the scenarios run them. */
export const BROWSERS: readonly BrowserName[] = ['chromium', 'firefox'];

/** How long a test page may take to load and set `window.__ready` (a cold Vite on a busy 2-core machine). */
export const READY_TIMEOUT_MS = 60_000;

/** A test page, loaded and ready (its module has set `window.__ready`). */
export interface TestPage {
  /** The engine it runs in. */
  readonly browser: BrowserName;
  /** Its console messages and uncaught errors, `[type] text`, for failure messages. */
  readonly log: string[];
  /** Runs `fn(arg)` in the page and returns its result; both cross as JSON (`jsonCall`), so both must be JSON-serialisable. */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /** Waits until `predicate(arg)`, run in the page, is truthy; the error carries the page's console. */
  waitFor<A = undefined>(predicate: (arg: A) => unknown, arg?: A, timeoutMs?: number): Promise<void>;
  /** Reloads the page and waits until it is ready again. */
  reload(): Promise<void>;
  /** Closes the page (and its own storage context, if it has one). */
  close(): Promise<void>;
}

/** Pages that share one origin's storage, as tabs of one browser profile do. */
export interface TestContext {
  open(url: string): Promise<TestPage>;
  close(): Promise<void>;
}

export interface TestBrowser {
  readonly name: BrowserName;
  /** A page in a context of its own: its storage starts empty. */
  open(url: string): Promise<TestPage>;
  /** A context whose pages share storage. */
  context(): Promise<TestContext>;
  close(): Promise<void>;
}

/** True once a test page's module has installed its API (every e2e page sets it last). */
export const isReady = (): boolean => (globalThis as unknown as { __ready?: boolean }).__ready === true;

/**
 * `fn(arg)` as an expression for a driver's string `evaluate`, its result as a JSON string (or
 * undefined). One string crosses the driver instead of a tree of remote values: a result of
 * 100,000 ids took 23 s in Firefox over WebDriver BiDi and 11 s in Chromium as values, 5.5 s and
 * 6.4 s as one string (a loaded 2-core machine; e2e/log.test.ts returns such results).
 */
export function jsonCall(fn: (arg: never) => unknown, arg: unknown): string {
  return `(async () => { const v = await (${fn.toString()})(${arg === undefined ? '' : JSON.stringify(arg)}); return v === undefined ? undefined : JSON.stringify(v); })()`;
}

/** The value `jsonCall`'s expression returned. */
export function fromJson<R>(s: unknown): R {
  return (s === undefined ? undefined : JSON.parse(s as string)) as R;
}

/** `wait()`, its error carrying `log` (the page's console) when it fails. */
export async function withConsole<T>(log: readonly string[], what: string, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}\npage console:\n${log.slice(-40).join('\n')}`, { cause: err });
  }
}
