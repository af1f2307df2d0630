/**
 * The browser light client end to end, in Chromium (Playwright) and in Firefox ESR
 * (puppeteer-core over WebDriver BiDi): e2e/light-client/, whose `window.lc` drives
 * `createLightClient` (worker, IndexedDB, libp2p) against a real full-node process. The
 * scenarios are written once (light-client/cases.ts) against the page interface
 * (browsers/page.ts). The database is small (CASE_KEYS keys, generated with the node's seed) so
 * the suite stays quick on two cores; the two engines run one after the other, against the same
 * node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { useBrowser } from './browsers/launch.ts';
import { BROWSERS, type BrowserName } from './browsers/page.ts';
import { openPlaywrightPage } from './browsers/playwright.ts';
import { Cleanup, launchChromium, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { baseOptions, CASE_KEYS, caseDatabase, clientPage, context, fullSync, partialSync, resumeAfterReload, start, tamperedProof, twoTabs, verifiedBeforeSync, waitRecorded, type CaseEnv } from './light-client/cases.ts';
import type { Lc } from './light-client/main.ts';
import type { TransportName } from '../src/protocol/transports.ts';

const N = CASE_KEYS;
const { expected, sampleKeys } = caseDatabase();
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;

declare const lc: Lc;

const pageUrl = () => `${vite.url}/e2e/light-client/index.html`;

beforeAll(async () => {
  [node, vite] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

/**
 * The transports each engine syncs over. Firefox: WebSockets only, because these tests keep to
 * loopback and Firefox's ICE cannot reach a loopback node. Firefox ESR 153 accepts everything
 * WebRTC-Direct needs (the munged ufrag/password in its own offer, the answer built from the
 * multiaddr with the node's certificate fingerprint) and a full sync over WebRTC-Direct passes
 * against the same node listening on the machine's LAN address; but with the node at 127.0.0.1
 * it gathers no loopback candidate (not even with `media.peerconnection.ice.loopback`) and
 * never pairs its LAN host candidates with the loopback remote one, so its check list is empty
 * and ICE fails once the 5 s trickle grace period ends (MOZ_LOG=mtransport:5: "no streams with
 * non-empty check lists"). Chromium pairs them and connects.
 */
const TRANSPORTS: Record<BrowserName, TransportName[]> = {
  chromium: ['websockets', 'webrtc-direct'],
  firefox: ['websockets'],
};

describe.each(BROWSERS)('light client in %s', (name) => {
  const browser = useBrowser(name, cleanup);
  const env = (): CaseEnv => ({ node, n: N, expected, sampleKeys, browser: browser(), url: pageUrl() });

  describe('full sync', () => {
    for (const transport of TRANSPORTS[name]) {
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

  describe('resume', () => {
    it('a reload in the middle of a sync resumes; only the answers in flight or being written are fetched again', () => resumeAfterReload(env(), 'resume'));
  });

  describe('partial sync', () => {
    it('syncs only a key range, and every stored value is proven by a peer', () => partialSync(env(), 'partial'));
  });

  describe('getVerified', () => {
    it('answers from a peer, proven against the signed root, before the local sync has finished', () => verifiedBeforeSync(env(), 'verified'));

    it('rejects a tampered single-key proof with InvalidRemoteProof and penalises the peer', () => tamperedProof(env(), 'tampered'));
  });

  describe('two tabs', () => {
    it('one tab syncs, both read; the reader takes over when the syncer closes', () => twoTabs(env(), 'tabs'));
  });
});

// Chromium only: the quota is forced through the DevTools protocol (Storage.overrideQuotaForOrigin),
// which Firefox does not speak; Firefox's own quota is a share of the free disk, too large to reach
// with a test database.
describe('light client in chromium only: storage quota', () => {
  it('a quota too small for the sync gives StorageQuotaExceeded; the replica stays consistent and readable', async () => {
    const chromium = await launchChromium();
    try {
      const browserContext = await chromium.newContext();
      const opened = await openPlaywrightPage(browserContext, pageUrl());
      const page = clientPage(opened);
      // a real QuotaExceededError from IndexedDB: the origin's quota forced through DevTools
      const cdp = await browserContext.newCDPSession(opened.page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: vite.url, quotaSize: 1_000_000 });
      await start(page, { ...baseOptions({ node }, 'quota'), minFreeBytes: 0, keyLimit: 256 });
      const rec = await waitRecorded(page, (r) => r.errors.some((e) => e.fatal), 'a fatal storage error', 30_000);
      expect(rec.errors.find((e) => e.fatal), context({ node }, page)).toMatchObject({ name: 'StorageQuotaExceeded' });
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
      await chromium.close();
    }
  });
});

// Chromium only: the page's own read of the store (src/client/idb/store-reader.ts) is the same
// code in every engine; e2e/idb.test.ts covers its semantics, this the client's use of it.
describe('light client in chromium only: warm restart', () => {
  it('a reloaded page answers a local get from the stored state before its worker is ready; the values match', async () => {
    const chromium = await launchChromium();
    try {
      const browserContext = await chromium.newContext();
      const page = clientPage(await openPlaywrightPage(browserContext, pageUrl()));
      const keys = [...sampleKeys.slice(0, 6), 'ff'.repeat(31) + '00'];
      const want = keys.map((k) => expected.get(k) ?? null);
      await start(page, baseOptions({ node }, 'warm'));
      await page.evaluate(() => lc.synced(60_000));
      await page.evaluate(() => lc.close());

      // a worker that never answers: every value comes from the page's own read
      await page.reload();
      await start(page, { ...baseOptions({ node }, 'warm'), stallWorker: true });
      const alone = await page.evaluate(async (ks) => Promise.all(ks.map((k) => lc.get(k, 'local'))), keys);
      expect(alone, context({ node }, page)).toEqual(want);
      expect(await page.evaluate(() => performance.getEntriesByName('proofsync:page-read').length)).toBe(keys.length);

      // the real worker: the first answers race it, later ones (its store open) are its own
      await page.reload();
      await start(page, baseOptions({ node }, 'warm'));
      expect(await page.evaluate(async (ks) => Promise.all(ks.map((k) => lc.get(k, 'local'))), keys)).toEqual(want);
      await page.evaluate(() => lc.synced(60_000));
      const marks = await page.evaluate(() => performance.getEntriesByName('proofsync:page-read').length);
      expect(await page.evaluate(async (ks) => Promise.all(ks.map((k) => lc.get(k, 'local'))), keys)).toEqual(want);
      expect(await page.evaluate(() => performance.getEntriesByName('proofsync:page-read').length)).toBe(marks);
      await page.evaluate(() => lc.close());

      // no store yet: the page's read finds none (and creates none), the worker answers and creates it
      await page.reload();
      await start(page, { ...baseOptions({ node }, 'warm-fresh'), autoStart: false });
      expect(await page.evaluate((k) => lc.get(k, 'local'), keys[0])).toBeNull();
      const dbs = await page.evaluate(async () => (await indexedDB.databases()).map((d) => `${d.name}@${d.version}`));
      expect(dbs).toContain('warm-fresh@2');
      await page.evaluate(() => lc.close());
    } finally {
      await chromium.close();
    }
  });
});
