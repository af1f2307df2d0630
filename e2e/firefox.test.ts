/**
 * The browser light client in a second engine: headless Firefox (Debian's
 * `firefox-esr`, driven by puppeteer-core over WebDriver BiDi) loads the same test page as
 * light-client.test.ts and runs its full-sync, reload and `getVerified` cases against a real
 * full-node process. WebSockets only: Firefox does not complete a WebRTC-Direct dial to a
 * loopback node (measured: the dial times out), so that transport stays Chromium's. The cases
 * themselves are shared with light-client.test.ts (light-client/cases.ts).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, closeFirefox, launchFirefox, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { CASE_KEYS, caseDatabase, casePage, fullSync, resumeAfterReload, tamperedProof, verifiedBeforeSync, type CaseEnv, type CasePage } from './light-client/cases.ts';

const db = caseDatabase();
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

const ready = (page: Page) => page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, { timeout: 60_000 });

/** A new tab (its own context, so its storage starts empty) on the test page, once it is ready. */
async function openClientPage(): Promise<CasePage> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${(e as Error).message}`));
  await page.goto(`${vite.url}/e2e/light-client/index.html`);
  await ready(page);
  const reloadReady = async () => {
    await page.reload();
    await ready(page);
  };
  return casePage(page, log, { evaluate: (fn, arg) => page.evaluate(fn, arg), reloadReady, close: () => context.close() });
}

const env = (): CaseEnv => ({ node, n: CASE_KEYS, ...db, open: openClientPage });

beforeAll(async () => {
  [node, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(CASE_KEYS)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchFirefox().then((b) => cleanup.add(b, (x) => closeFirefox(x))),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('firefox: full sync', () => {
  it("syncs the whole database over websockets: root equals the writer's, get returns its values", () =>
    fullSync(env(), { transport: 'websockets', address: node.file.ws!, via: 'worker', storageName: 'full' }));
});

describe('firefox: resume', () => {
  it('a reload in the middle of a sync resumes; under 2% of the bytes are fetched again', () => resumeAfterReload(env(), 'resume'));
});

describe('firefox: getVerified', () => {
  it('answers from a peer, proven against the signed root, before the local sync has finished', () => verifiedBeforeSync(env(), 'verified'));

  it('rejects a tampered single-key proof with InvalidRemoteProof and penalises the peer', () => tamperedProof(env(), 'tampered'));
});
