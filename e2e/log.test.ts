/**
 * The history log in the browser (issue 6): headless Chromium loads e2e/log/, whose
 * `window.logPage` runs `client.log.fetch` in the light client's worker against a real writer
 * process that keeps committing. The log is `OPS` operations (a few hundred commits over HTTP:
 * the suite stays quick on two cores; the Node suite and the benchmark fetch more).
 */
import type { Browser, Page } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { toHex } from '../src/core/bytes.ts';
import { decodeDelta } from '../src/core/delta.ts';
import { fetchLog } from '../src/protocol/client.ts';
import { createClientNode, type ClientNode } from '../src/node/host.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { LogFetchResult, LogPage, LogStart } from './log/main.ts';

const OPS = 600;
const cleanup = new Cleanup();
let writer: NodeProcess;
let vite: ViteHandle;
let browser: Browser;
let probe: ClientNode;

declare const logPage: LogPage;

async function commit(n: NodeProcess, i: number): Promise<number> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  const key = (0xe0000000 + i).toString(16).padStart(64, '0');
  const res = await fetch(`${n.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts: [{ key, value: 'e2e0' }] }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { logSize: number }).logSize;
}

async function logSize(): Promise<number> {
  return ((await (await fetch(`${writer.file.http}/v1/status`)).json()) as { logSize: number }).logSize;
}

/** The writer's delta ids `[0, end)`, read straight from it (unverified): the expected answer. */
async function writerIds(end: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < end) {
    const b = await fetchLog(probe, multiaddr(writer.file.ws!), { start: ids.length, end, logSize: end });
    ids.push(...b.operations.map((op) => toHex(decodeDelta(op).id)));
  }
  return ids;
}

async function openPage(): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  await page.goto(`${vite.url}/e2e/log/index.html`);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, undefined, { timeout: 60_000 });
  return { page, log };
}

const startOptions = (storageName: string): LogStart => ({ db: writer.file.db!, writer: writer.file.peerId, bootstrap: [writer.file.ws!], storageName });

beforeAll(async () => {
  [writer, vite, browser, probe] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--simulate-writes', '20'], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/log/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
    createClientNode().then((c) => cleanup.add(c, (x) => x.stop())),
  ]);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while ((await commit(writer, next++)) < OPS);
    }),
  );
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('client.log.fetch in the browser', () => {
  it("returns the writer's operations, verified, following the writer past its size at the start", async () => {
    const { page, log } = await openPage();
    await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-1'));
    const to = (await logSize()) + 10; // reached only through newer announcements
    const r: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, batchSize: 128 }), to);
    expect(r.indices, log.join('\n')).toEqual([...Array(to).keys()]);
    expect(r.ids).toEqual(await writerIds(to));
    expect(r.malformed).toBe(0);
    expect(r.progress).toMatchObject({ next: to, fetched: to, fromStore: 0, rejected: 0 });
    expect(r.targetSizes.length).toBeGreaterThan(1); // the target moved
    await page.evaluate(() => logPage.close());
    await page.close();
  }, 120_000);

  it('a stored fetch stopped part-way resumes after a reload from where it stopped', async () => {
    const { page, log } = await openPage();
    await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-2'));
    const to = OPS;
    const first: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, store: true, batchSize: 64, stopAfter: 200 }), to);
    expect(first.indices).toEqual([...Array(200).keys()]);
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
    await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-2'));
    const second: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, store: true, batchSize: 64 }), to);
    expect(second.indices, log.join('\n')).toEqual([...Array(to).keys()]);
    expect(second.ids).toEqual(await writerIds(to));
    // what was stored (at least the 200 delivered; the worker may have stored a batch or two ahead)
    expect(second.progress!.fromStore).toBeGreaterThanOrEqual(200);
    expect(second.progress!.fromStore + second.progress!.fetched).toBe(to);
    expect(second.progress!.storedUpTo).toBe(to);
    await page.evaluate(() => logPage.close());
    await page.close();
  }, 120_000);
});
