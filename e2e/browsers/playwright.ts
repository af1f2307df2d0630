/**
 * The page interface (page.ts) on Playwright, for Chromium. `openPlaywrightPage` is exported
 * for the Chromium-only parts of the scenarios, which need the Playwright page itself (its
 * context's DevTools session).
 */
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { launchChromium } from '../harness.ts';
import { fromJson, isReady, jsonCall, READY_TIMEOUT_MS, withConsole, type TestBrowser, type TestContext, type TestPage } from './page.ts';

/**
 * Opens `url` in a new page of `context` (a new context of its own when `context` is a
 * `Browser`), recording its console, and waits until it is ready.
 */
export async function openPlaywrightPage(context: Browser | BrowserContext, url: string): Promise<TestPage & { page: Page }> {
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (m: ConsoleMessage) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e: Error) => log.push(`[pageerror] ${e.message}`));
  const t: TestPage & { page: Page } = {
    page,
    browser: 'chromium',
    log,
    evaluate: async (fn, arg) => fromJson(await page.evaluate(jsonCall(fn as never, arg))),
    waitFor: (predicate, arg, timeoutMs = READY_TIMEOUT_MS) =>
      withConsole(log, 'page condition not met', async () => {
        await page.waitForFunction(predicate, arg as never, { timeout: timeoutMs });
      }),
    reload: async () => {
      await page.reload();
      await t.waitFor(isReady);
    },
    // a page from `browser.newPage()` takes its context with it
    close: () => page.close(),
  };
  await page.goto(url);
  await t.waitFor(isReady);
  return t;
}

/** A launched Playwright Chromium behind the page interface; closing it closes `browser`. */
export function chromiumTestBrowser(browser: Browser): TestBrowser {
  return {
    name: 'chromium',
    open: (url) => openPlaywrightPage(browser, url),
    context: async (): Promise<TestContext> => {
      const context = await browser.newContext();
      return { open: (url) => openPlaywrightPage(context, url), close: () => context.close() };
    },
    close: () => browser.close(),
  };
}

/** Headless Chromium (harness.ts `launchChromium`) behind the page interface. */
export async function launchPlaywrightChromium(): Promise<TestBrowser> {
  return chromiumTestBrowser(await launchChromium());
}
