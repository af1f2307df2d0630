/**
 * The browser light client end to end: headless Chromium loads e2e/light-client/,
 * whose `window.lc` drives `createLightClient` (worker, IndexedDB, libp2p) against real
 * full-node processes. Databases are small (N keys, generated with the node's seed) so the
 * suite stays quick on two cores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { baseOptions, CASE_KEYS, caseDatabase, casePage, context, fullSync, resumeAfterReload, start, tamperedProof, verifiedBeforeSync, waitRecorded, type CaseEnv, type CasePage } from './light-client/cases.ts';
import type { Lc } from './light-client/main.ts';
import { nodeStatus } from './node-api.ts';

const N = CASE_KEYS;
const { expected, sampleKeys } = caseDatabase();
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

declare const lc: Lc;

const ready = (page: Page) => page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);

/** A Playwright page as the shared cases drive it (`page`: the page itself, for what only Chromium does). */
function chromiumPage(page: Page, log: string[]): CasePage & { page: Page } {
  const reloadReady = async () => {
    await page.reload();
    await ready(page);
  };
  return casePage(page, log, { evaluate: (fn, arg) => page.evaluate(fn, arg), reloadReady, close: () => page.close() });
}

async function openClientPage(): Promise<CasePage & { page: Page }> {
  const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
  return chromiumPage(page, log);
}

const env = (): CaseEnv => ({ node, n: N, expected, sampleKeys, open: openClientPage });

beforeAll(async () => {
  [node, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('light client: full sync', () => {
  for (const transport of ['websockets', 'webrtc-direct'] as const) {
    it(`syncs the whole database over ${transport}: root equals the writer's, get returns its values`, () =>
      fullSync(env(), {
        transport,
        address: transport === 'websockets' ? node.file.ws! : node.file.webrtcDirect!,
        // WebRTC lives on the page's thread (workers have no RTCPeerConnection)
        via: transport === 'websockets' ? 'worker' : 'main',
        storageName: `full-${transport}`,
      }));
  }
});

describe('light client: resume', () => {
  it('a reload in the middle of a sync resumes; under 2% of the bytes are fetched again', () => resumeAfterReload(env(), 'resume'));
});

describe('light client: partial sync', () => {
  it('syncs only a key range, and every stored value is proven by a peer', async () => {
    const page = await openClientPage();
    try {
      // inclusive [80, 88]: every key starting with 0x80..0x87 (keys are 32 bytes)
      await start(page, { ...baseOptions(env(), 'partial'), ranges: [{ start: '80', end: '88' }] });
      const synced = await page.evaluate(() => lc.synced(90_000));
      const writer = await nodeStatus(node);
      expect(synced.root).toBe(writer.root);
      expect(synced.localRoot).not.toBe(writer.root);
      const local = await page.evaluate(() => lc.entries());
      const inRange = [...expected].filter(([k]) => k >= '80' && k < '88').sort(([a], [b]) => (a < b ? -1 : 1));
      expect(local.length, context(env(), page)).toBe(inRange.length);
      expect(local.map((e) => [e.key, e.value])).toEqual(inRange);
      expect(await page.evaluate((es) => lc.verifyAll(es), local)).toEqual([]);
      const outside = [...expected.keys()].find((k) => k < '80')!;
      expect(await page.evaluate((k) => lc.getError(k), outside)).toBe('KeyOutOfScope');
      // getVerified still answers outside the range
      expect((await page.evaluate((k) => lc.getVerified(k), outside)).value).toBe(expected.get(outside));
    } finally {
      await page.close();
    }
  });
});

describe('light client: getVerified', () => {
  it('answers from a peer, proven against the signed root, before the local sync has finished', () => verifiedBeforeSync(env(), 'verified'));

  it('rejects a tampered single-key proof with InvalidRemoteProof and penalises the peer', () => tamperedProof(env(), 'tampered'));
});

describe('light client: two tabs', () => {
  it('one tab syncs, both read; the reader takes over when the syncer closes', async () => {
    const context2 = await browser.newContext();
    try {
      const open = async () => {
        const page = await context2.newPage();
        const log: string[] = [];
        page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
        await page.goto(`${vite.url}/e2e/light-client/index.html`);
        await ready(page);
        return chromiumPage(page, log);
      };
      const a = await open();
      await start(a, baseOptions(env(), 'tabs'));
      await waitRecorded(a, (r) => r.roles.includes('syncer'), 'tab A to sync');
      const b = await open();
      await start(b, baseOptions(env(), 'tabs'));
      const bRec = await waitRecorded(b, (r) => r.roles.includes('reader'), 'tab B to read');
      expect(bRec.roles).not.toContain('syncer');
      const [sa, sb] = await Promise.all([a.page.evaluate(() => lc.synced(90_000)), b.page.evaluate(() => lc.synced(90_000))]);
      const writer = await nodeStatus(node);
      expect(sa.root).toBe(writer.root);
      expect(sb.root).toBe(writer.root);
      const key = sampleKeys[7];
      expect(await a.page.evaluate((k) => lc.get(k), key)).toBe(expected.get(key));
      expect(await b.page.evaluate((k) => lc.get(k), key)).toBe(expected.get(key));
      // B downloaded nothing itself: its progress events are A's, relayed
      const bAfter = await b.page.evaluate(() => lc.recorded());
      expect(bAfter.last?.role, context(env(), b)).toBe('reader');
      expect(await b.page.evaluate(() => lc.status().then((s) => s.role))).toBe('reader');
      // closing A hands the lock to B
      await a.page.close();
      await waitRecorded(b, (r) => r.roles.includes('syncer'), 'tab B to take over');
      const proof = await b.page.evaluate((k) => lc.prove(k), key);
      expect(proof).toMatchObject({ value: expected.get(key), root: writer.root, checked: true });
      await b.page.evaluate(() => lc.close());
    } finally {
      await context2.close();
    }
  });
});

describe('light client: storage quota', () => {
  it('a quota too small for the sync gives StorageQuotaExceeded; the replica stays consistent and readable', async () => {
    const context2 = await browser.newContext();
    try {
      const page = await context2.newPage();
      const log: string[] = [];
      page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
      await page.goto(`${vite.url}/e2e/light-client/index.html`);
      await ready(page);
      const client = chromiumPage(page, log);
      // a real QuotaExceededError from IndexedDB: the origin's quota forced through DevTools
      const cdp = await context2.newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: vite.url, quotaSize: 1_000_000 });
      await start(client, { ...baseOptions(env(), 'quota'), minFreeBytes: 0, keyLimit: 256 });
      const rec = await waitRecorded(client, (r) => r.errors.some((e) => e.fatal), 'a fatal storage error', 30_000);
      expect(rec.errors.find((e) => e.fatal), context(env(), client)).toMatchObject({ name: 'StorageQuotaExceeded' });
      // what was committed is whole: a proof from the local trie verifies against its root
      const stored = await page.evaluate(() => lc.entries('local'));
      expect(stored.length).toBeGreaterThan(0);
      expect(stored.length).toBeLessThan(N);
      for (const e of stored.filter((_, i) => i % 50 === 0)) expect(e.value).toBe(expected.get(e.key));
      const proof = await page.evaluate((k) => lc.prove(k), stored[0].key);
      expect(proof).toMatchObject({ value: stored[0].value, checked: true });
      expect(await page.evaluate((k) => lc.get(k, 'local'), stored[1].key)).toBe(stored[1].value);
      await page.evaluate(() => lc.close());
    } finally {
      await context2.close();
    }
  });
});
