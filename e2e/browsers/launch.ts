/**
 * Launches an engine behind the page interface (page.ts) by name, and registers it with a
 * test file's `Cleanup` so it closes whatever happens.
 *
 * @example
 * describe.each(BROWSERS)('live updates in %s', (name) => {
 *   const browser = useBrowser(name, cleanup);
 *   it('...', async () => { const page = await browser().open(url); ... });
 * });
 */
import { afterAll, beforeAll } from 'vitest';
import type { Cleanup } from '../harness.ts';
import type { BrowserName, TestBrowser } from './page.ts';
import { launchPlaywrightChromium } from './playwright.ts';
import { launchPuppeteerFirefox } from './puppeteer.ts';

export function launchBrowser(name: BrowserName): Promise<TestBrowser> {
  return name === 'chromium' ? launchPlaywrightChromium() : launchPuppeteerFirefox();
}

/**
 * In a `describe` block: launches `name` before its tests and closes it after them (or in
 * `cleanup`, if the block never gets that far), so one engine runs at a time on a 2-core
 * machine. Returns a getter for the launched browser.
 */
export function useBrowser(name: BrowserName, cleanup: Cleanup): () => TestBrowser {
  let browser: TestBrowser | undefined;
  let closed = false;
  const close = async () => {
    if (closed || !browser) return;
    closed = true;
    await browser.close();
  };
  beforeAll(async () => {
    browser = cleanup.add(await launchBrowser(name), close);
  }, 120_000);
  afterAll(close, 60_000);
  return () => {
    if (!browser) throw new Error(`${name} was not launched`);
    return browser;
  };
}
