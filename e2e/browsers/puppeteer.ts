/**
 * The page interface (page.ts) on puppeteer-core over WebDriver BiDi, for Firefox ESR
 * (harness.ts `launchFirefox`). Every `open` makes a browser context (a BiDi user context) of
 * its own, so its IndexedDB starts empty as a Playwright `browser.newPage()` does.
 */
import type { Browser, BrowserContext } from 'puppeteer-core';
import { closeFirefox, launchFirefox } from '../harness.ts';
import { fromJson, isReady, jsonCall, READY_TIMEOUT_MS, withConsole, type TestBrowser, type TestContext, type TestPage } from './page.ts';

async function openPuppeteerPage(context: BrowserContext, url: string, closeContext: boolean): Promise<TestPage> {
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${(e as Error).message}`));
  const t: TestPage = {
    browser: 'firefox',
    log,
    evaluate: async (fn, arg) => fromJson(await page.evaluate(jsonCall(fn as never, arg))),
    waitFor: (predicate, arg, timeoutMs = READY_TIMEOUT_MS) =>
      withConsole(log, 'page condition not met', async () => {
        await page.waitForFunction(predicate as never, { timeout: timeoutMs }, arg);
      }),
    reload: async () => {
      await page.reload();
      await t.waitFor(isReady);
    },
    close: () => (closeContext ? context.close() : page.close()),
  };
  await page.goto(url);
  await t.waitFor(isReady);
  return t;
}

/** Headless Firefox ESR behind the page interface. */
export async function launchPuppeteerFirefox(): Promise<TestBrowser> {
  const browser: Browser = await launchFirefox();
  return {
    name: 'firefox',
    open: async (url) => {
      const context = await browser.createBrowserContext();
      try {
        return await openPuppeteerPage(context, url, true);
      } catch (err) {
        await context.close().catch(() => {});
        throw err;
      }
    },
    context: async (): Promise<TestContext> => {
      const context = await browser.createBrowserContext();
      return { open: (url) => openPuppeteerPage(context, url, false), close: () => context.close() };
    },
    close: () => closeFirefox(browser),
  };
}
