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
import { Cleanup, launchChromium, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { Recorded, StartOptions } from './light-client/main.ts';

const N = 12_000;
const SEED = 1;
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;
const expected = new Map(generateKeyValues(N, SEED).map((kv) => [toHex(kv.key), toHex(kv.value)]));
const sampleKeys = [...expected.keys()].filter((_, i) => i % 997 === 0);

type Lc = {
  start(o: StartOptions): void;
  recorded(): Recorded;
  synced(timeoutMs: number): Promise<{ root: string; seq: number; localRoot: string; ms: number }>;
  get(key: string, consistency?: 'synced' | 'local'): Promise<string | null>;
  getMany(keys: string[]): Promise<(string | null)[]>;
  getError(key: string): Promise<string>;
  entries(start?: string, end?: string): Promise<{ key: string; value: string }[]>;
  prove(key: string): Promise<{ value: string | null; root: string; seq: number | undefined; nodes: number; checked: boolean }>;
  getVerified(key: string): Promise<{ value: string | null; root: string; seq: number; peer: string; ms: number }>;
  status(): Promise<{ role: string; paused: boolean; seq: number | undefined; synced: string | null; peers: unknown[]; heapUsed: number | undefined }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
};
declare const lc: Lc;

async function status(n: NodeProcess): Promise<{ root: string; seq: number }> {
  return (await fetch(`${n.file.http}/v1/status`)).json() as Promise<{ root: string; seq: number }>;
}

/** Bytes the node has served for range and change proofs (its metrics). */
async function servedBytes(n: NodeProcess): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^proofsync_response_bytes_total\{protocol="(range|change)"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm)) sum += Number(m[2]);
  return sum;
}

async function openClientPage(): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  await page.goto(`${vite.url}/e2e/light-client/index.html`);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, undefined, { timeout: 60_000 });
  return { page, log };
}

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
        const writer = await status(node);
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
