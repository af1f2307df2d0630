/**
 * The browser light client in a second engine (issue 8): headless Firefox (Debian's
 * `firefox-esr`, driven by puppeteer-core over WebDriver BiDi) loads the same test page as
 * light-client.test.ts and runs its full-sync, reload and `getVerified` cases against a real
 * full-node process. WebSockets only: Firefox does not complete a WebRTC-Direct dial to a
 * loopback node (measured: the dial times out), so that transport stays Chromium's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { toHex } from '../src/core/bytes.ts';
import { generateKeyValues } from '../src/node/generate.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, closeFirefox, launchFirefox, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { Lc, Recorded, StartOptions } from './light-client/main.ts';
import { nodeStatus, servedProofBytes, setMisbehaving } from './node-api.ts';

const N = 12_000;
const SEED = 1;
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;
const expected = new Map(generateKeyValues(N, SEED).map((kv) => [toHex(kv.key), toHex(kv.value)]));
const sampleKeys = [...expected.keys()].filter((_, i) => i % 997 === 0);

declare const lc: Lc;

/** A new tab (its own context, so its storage starts empty) on the test page, once it is ready. */
async function openClientPage(): Promise<{ page: Page; log: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${(e as Error).message}`));
  await page.goto(`${vite.url}/e2e/light-client/index.html`);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, { timeout: 60_000 });
  return { page, log };
}

async function closePage(page: Page): Promise<void> {
  await page.evaluate(() => lc.close()).catch(() => {});
  await page.browserContext().close();
}

function baseOptions(storageName: string): StartOptions {
  return { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName };
}

async function start(page: Page, o: StartOptions): Promise<void> {
  await page.evaluate((opts) => lc.start(opts), o);
}

function context(page: { log: string[] }, extra = ''): string {
  return `${extra}\npage:\n${page.log.slice(-40).join('\n')}\nnode:\n${node.output().slice(-3000)}`;
}

/** Polls the page's recorded events until `ready` holds (a deadline, no fixed sleeps). */
async function waitRecorded(page: Page, ready: (r: Recorded) => boolean, what: string, timeoutMs = 60_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await page.evaluate(() => lc.recorded());
    if (ready(r)) return r;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a polling interval, not a wait for the condition
  }
}

beforeAll(async () => {
  [node, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchFirefox().then((b) => cleanup.add(b, (x) => closeFirefox(x))),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('firefox: full sync', () => {
  it("syncs the whole database over websockets: root equals the writer's, get returns its values", async () => {
    const { page, log } = await openClientPage();
    try {
      await start(page, baseOptions('full'));
      const synced = await page.evaluate(() => lc.synced(90_000));
      const writer = await nodeStatus(node);
      const rec = await page.evaluate(() => lc.recorded());
      const ctx = context({ log }, JSON.stringify({ synced, rec }, null, 1));
      expect(synced.root, ctx).toBe(writer.root);
      expect(synced.localRoot, ctx).toBe(writer.root);
      expect(synced.seq).toBe(writer.seq);
      expect(rec.peers.find((p) => p.status === 'connected'), ctx).toMatchObject({ transport: 'websockets', via: 'worker' });
      expect(rec.last?.keyValues, ctx).toBe(N);
      expect(rec.errors, ctx).toEqual([]);
      const values = await page.evaluate((keys) => lc.getMany(keys), sampleKeys);
      expect(values).toEqual(sampleKeys.map((k) => expected.get(k)));
      expect(await page.evaluate(() => lc.get('00'.repeat(32)))).toBeNull();
      const proof = await page.evaluate((k) => lc.prove(k), sampleKeys[1]);
      expect(proof).toMatchObject({ value: expected.get(sampleKeys[1]), root: writer.root, seq: writer.seq, checked: true });
      if (process.env.E2E_VERBOSE) console.info('firefox full sync', JSON.stringify({ ms: synced.ms, bytes: rec.last?.bytes }));
    } finally {
      await closePage(page);
    }
  });
});

describe('firefox: resume', () => {
  it('a reload in the middle of a sync resumes; under 2% of the bytes are fetched again', async () => {
    // small requests so that a reload lands mid-sync and little is in flight when it does
    const tuning = { keyLimit: 64, concurrency: 2 };
    const fresh = await openClientPage();
    let full: number;
    try {
      const before = await servedProofBytes(node);
      await start(fresh.page, { ...baseOptions('resume-reference'), ...tuning });
      await fresh.page.evaluate(() => lc.synced(90_000));
      full = (await servedProofBytes(node)) - before;
    } finally {
      await closePage(fresh.page);
    }

    const { page, log } = await openClientPage();
    try {
      const before = await servedProofBytes(node);
      await start(page, { ...baseOptions('resume'), ...tuning });
      const mid = await waitRecorded(page, (r) => (r.last?.fraction ?? 0) >= 0.3, 'a third of the sync');
      await page.reload();
      await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, { timeout: 60_000 });
      await start(page, { ...baseOptions('resume'), ...tuning });
      const synced = await page.evaluate(() => lc.synced(90_000));
      const after = await page.evaluate(() => lc.recorded());
      const total = (await servedProofBytes(node)) - before;
      const again = total - full;
      const ctx = context({ log }, JSON.stringify({ full, total, again, mid: mid.last, after: after.last }));
      expect(synced.root, ctx).toBe((await nodeStatus(node)).root);
      expect(mid.last!.fraction, ctx).toBeLessThan(1);
      // the second session fetched only what was missing
      expect(after.last!.keyValues, ctx).toBeLessThan(N * 0.75);
      expect(again / full, ctx).toBeLessThan(0.02);
      if (process.env.E2E_VERBOSE) console.info('firefox resume', JSON.stringify({ full, total, againPercent: (100 * again) / full, midFraction: mid.last!.fraction }));
      expect(await page.evaluate((k) => lc.get(k), sampleKeys[3])).toBe(expected.get(sampleKeys[3]));
    } finally {
      await closePage(page);
    }
  });
});

describe('firefox: getVerified', () => {
  it('answers from a peer, proven against the signed root, before the local sync has finished', async () => {
    const { page, log } = await openClientPage();
    try {
      // a slow sync (small requests, one at a time) so the answers come first
      await start(page, { ...baseOptions('verified'), keyLimit: 32, concurrency: 1 });
      const key = sampleKeys[5];
      const present = await page.evaluate((k) => lc.getVerified(k), key);
      const absent = await page.evaluate((k) => lc.getVerified(k), 'ff'.repeat(31) + '00');
      const rec = await page.evaluate(() => lc.recorded());
      const writer = await nodeStatus(node);
      expect(rec.synced, context({ log })).toEqual([]);
      expect(present).toMatchObject({ value: expected.get(key), root: writer.root, seq: writer.seq, peer: node.file.peerId });
      expect(absent.value).toBeNull();
      if (process.env.E2E_VERBOSE) console.info('firefox: first getVerified after', Math.round(present.ms), 'ms');
    } finally {
      await closePage(page);
    }
  });

  it('rejects a tampered single-key proof with InvalidRemoteProof and penalises the peer', async () => {
    const { page, log } = await openClientPage();
    try {
      // no sync: only the single-key questions reach the node while it lies
      await start(page, { ...baseOptions('tampered'), autoStart: false });
      const key = sampleKeys[2];
      // an honest answer first: the announcement is known and the peer connected
      expect((await page.evaluate((k) => lc.getVerified(k), key)).value).toBe(expected.get(key));
      await setMisbehaving(node, true);
      let error: string;
      try {
        error = await page.evaluate((k) => lc.getVerifiedError(k), key);
      } finally {
        await setMisbehaving(node, false);
      }
      const rec = await page.evaluate(() => lc.recorded());
      expect(error, context({ log }, JSON.stringify(rec.peers))).toBe('InvalidRemoteProof');
      expect(rec.peers.find((p) => p.status === 'penalised')).toMatchObject({ peer: node.file.peerId, reason: expect.stringMatching(/^single-key proof: /) });
      // the same peer, honest again, is believed again
      expect((await page.evaluate((k) => lc.getVerified(k), key)).value).toBe(expected.get(key));
    } finally {
      await closePage(page);
    }
  });
});
