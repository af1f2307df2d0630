/**
 * The browser light client end to end (issue 8): headless Chromium loads e2e/light-client/,
 * whose `window.lc` drives `createLightClient` (worker, IndexedDB, libp2p) against real
 * full-node processes. Databases are small (N keys, generated with the node's seed) so the
 * suite stays quick on two cores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { toHex } from '../src/core/bytes.ts';
import { generateKeyValues } from '../src/node/generate.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
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

const openClientPage = (): Promise<{ page: Page; log: string[] }> => openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);

function baseOptions(storageName: string, bootstrap = [node.file.ws!]): StartOptions {
  return { db: node.file.db!, writer: node.file.peerId, bootstrap, storageName };
}

async function start(page: Page, o: StartOptions): Promise<void> {
  await page.evaluate((opts) => lc.start(opts), o);
}

function context(page: { log: string[] }, extra = ''): string {
  return `${extra}\npage:\n${page.log.slice(-40).join('\n')}\nnode:\n${node.output().slice(-3000)}`;
}

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
    it(`syncs the whole database over ${transport}: root equals the writer's, get returns its values`, async () => {
      const { page, log } = await openClientPage();
      try {
        const addr = transport === 'websockets' ? node.file.ws! : node.file.webrtcDirect!;
        await start(page, { ...baseOptions(`full-${transport}`, [addr]) });
        const synced = await page.evaluate(() => lc.synced(90_000));
        const writer = await nodeStatus(node);
        const rec = await page.evaluate(() => lc.recorded());
        const ctx = context({ log }, JSON.stringify({ synced, rec }, null, 1));
        expect(synced.root, ctx).toBe(writer.root);
        expect(synced.localRoot, ctx).toBe(writer.root);
        expect(synced.seq).toBe(writer.seq);
        expect(rec.peers.find((p) => p.status === 'connected'), ctx).toMatchObject({ transport, via: transport === 'websockets' ? 'worker' : 'main' });
        expect(rec.last?.keyValues, ctx).toBe(N);
        expect(rec.errors, ctx).toEqual([]);
        const values = await page.evaluate((keys) => lc.getMany(keys), sampleKeys);
        expect(values).toEqual(sampleKeys.map((k) => expected.get(k)));
        expect(await page.evaluate(() => lc.get('00'.repeat(32)))).toBeNull();
        const proof = await page.evaluate((k) => lc.prove(k), sampleKeys[1]);
        expect(proof).toMatchObject({ value: expected.get(sampleKeys[1]), root: writer.root, seq: writer.seq, checked: true });
        if (process.env.E2E_VERBOSE) console.info(transport, JSON.stringify({ ms: synced.ms, longTasks: rec.longTasks, bytes: rec.last?.bytes }));
      } finally {
        await page.evaluate(() => lc.close()).catch(() => {});
        await page.close();
      }
    });
  }
});

/** Polls the page's recorded events until `ready` holds (a deadline, no fixed sleeps). */
async function waitRecorded(page: Page, ready: (r: Recorded) => boolean, what: string, timeoutMs = 60_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await page.evaluate(() => lc.recorded());
    if (ready(r)) return r;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await page.waitForTimeout(50); // a polling interval, not a wait for the condition
  }
}

describe('light client: resume', () => {
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
      await fresh.page.close();
    }

    const { page, log } = await openClientPage();
    try {
      const before = await servedProofBytes(node);
      await start(page, { ...baseOptions('resume'), ...tuning });
      const mid = await waitRecorded(page, (r) => (r.last?.fraction ?? 0) >= 0.3, 'a third of the sync');
      await page.reload();
      await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
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
      if (process.env.E2E_VERBOSE) console.info('resume', JSON.stringify({ full, total, againPercent: (100 * again) / full, midFraction: mid.last!.fraction }));
      expect(await page.evaluate((k) => lc.get(k), sampleKeys[3])).toBe(expected.get(sampleKeys[3]));
    } finally {
      await page.evaluate(() => lc.close()).catch(() => {});
      await page.close();
    }
  });
});

describe('light client: partial sync', () => {
  it('syncs only a key range, and every stored value is proven by a peer', async () => {
    const { page, log } = await openClientPage();
    try {
      // inclusive [80, 88]: every key starting with 0x80..0x87 (keys are 32 bytes)
      await start(page, { ...baseOptions('partial'), ranges: [{ start: '80', end: '88' }] });
      const synced = await page.evaluate(() => lc.synced(90_000));
      const writer = await nodeStatus(node);
      expect(synced.root).toBe(writer.root);
      expect(synced.localRoot).not.toBe(writer.root);
      const local = await page.evaluate(() => lc.entries());
      const inRange = [...expected].filter(([k]) => k >= '80' && k < '88').sort(([a], [b]) => (a < b ? -1 : 1));
      expect(local.length, context({ log })).toBe(inRange.length);
      expect(local.map((e) => [e.key, e.value])).toEqual(inRange);
      expect(await page.evaluate((es) => lc.verifyAll(es), local)).toEqual([]);
      const outside = [...expected.keys()].find((k) => k < '80')!;
      expect(await page.evaluate((k) => lc.getError(k), outside)).toBe('KeyOutOfScope');
      // getVerified still answers outside the range
      expect((await page.evaluate((k) => lc.getVerified(k), outside)).value).toBe(expected.get(outside));
    } finally {
      await page.evaluate(() => lc.close()).catch(() => {});
      await page.close();
    }
  });
});

describe('light client: getVerified', () => {
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
      if (process.env.E2E_VERBOSE) console.info('first getVerified after', Math.round(present.ms), 'ms');
    } finally {
      await page.evaluate(() => lc.close()).catch(() => {});
      await page.close();
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
      await page.evaluate(() => lc.close()).catch(() => {});
      await page.close();
    }
  });
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
        await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
        return { page, log };
      };
      const a = await open();
      await start(a.page, baseOptions('tabs'));
      await waitRecorded(a.page, (r) => r.roles.includes('syncer'), 'tab A to sync');
      const b = await open();
      await start(b.page, baseOptions('tabs'));
      const bRec = await waitRecorded(b.page, (r) => r.roles.includes('reader'), 'tab B to read');
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
      expect(bAfter.last?.role, context(b)).toBe('reader');
      expect(await b.page.evaluate(() => lc.status().then((s) => s.role))).toBe('reader');
      // closing A hands the lock to B
      await a.page.close();
      await waitRecorded(b.page, (r) => r.roles.includes('syncer'), 'tab B to take over');
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
      await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
      // a real QuotaExceededError from IndexedDB: the origin's quota forced through DevTools
      const cdp = await context2.newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: vite.url, quotaSize: 1_000_000 });
      await start(page, { ...baseOptions('quota'), minFreeBytes: 0, keyLimit: 256 });
      const rec = await waitRecorded(page, (r) => r.errors.some((e) => e.fatal), 'a fatal storage error', 30_000);
      expect(rec.errors.find((e) => e.fatal), context({ log })).toMatchObject({ name: 'StorageQuotaExceeded' });
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
