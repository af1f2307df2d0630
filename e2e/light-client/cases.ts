/**
 * Light-client cases that run the same in every engine: Chromium (light-client.test.ts, driven
 * by Playwright) and Firefox (firefox.test.ts, driven by puppeteer-core). A test file opens the
 * pages with its driver and hands them over as `CasePage`s; the cases drive `window.lc`
 * (main.ts) against one real full-node process.
 */
import { expect } from 'vitest';
import { toHex } from '../../src/core/bytes.ts';
import { generateKeyValues } from '../../src/node/generate.ts';
import type { NodeProcess } from '../harness.ts';
import { nodeStatus, servedProofBytes, setMisbehaving } from '../node-api.ts';
import type { Lc, Recorded, StartOptions } from './main.ts';
import type { TransportName } from '../../src/protocol/transports.ts';

declare const lc: Lc;

/** A ready test page, whichever driver opened it. */
export interface CasePage {
  /** The page's console (and errors), for failure messages. */
  readonly log: string[];
  /** Runs `fn(arg)` in the page and returns its result. */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /** Reloads the page and waits until it is ready again. */
  reloadReady(): Promise<void>;
  /** Closes the client (if started) and the page. */
  close(): Promise<void>;
}

/** Keys of the node's generated database (small, so the suites stay quick on two cores). */
export const CASE_KEYS = 12_000;

/** The database a node started with `--generate CASE_KEYS` holds (the node's seed, 1), hex, and some of its keys. */
export function caseDatabase(): { expected: Map<string, string>; sampleKeys: string[] } {
  const expected = new Map(generateKeyValues(CASE_KEYS, 1).map((kv) => [toHex(kv.key), toHex(kv.value)]));
  return { expected, sampleKeys: [...expected.keys()].filter((_, i) => i % 997 === 0) };
}

/**
 * A driver's page as a `CasePage`: `drive` runs a function in it, reloads it until it is ready
 * again, and closes it (or its context).
 */
export function casePage<P>(
  page: P,
  log: string[],
  drive: { evaluate(fn: never, arg: unknown): Promise<unknown>; reloadReady(): Promise<void>; close(): Promise<unknown> },
): CasePage & { page: P } {
  const c: CasePage & { page: P } = {
    page,
    log,
    evaluate: (fn, arg) => drive.evaluate(fn as never, arg) as never,
    reloadReady: () => drive.reloadReady(),
    close: async () => {
      await c.evaluate(() => lc.close()).catch(() => {});
      await drive.close();
    },
  };
  return c;
}

/** The node and the database the cases run against, and how to open a fresh page. */
export interface CaseEnv {
  node: NodeProcess;
  /** Keys in the node's generated database. */
  n: number;
  /** The generated database, hex key → hex value. */
  expected: Map<string, string>;
  /** Some of its keys. */
  sampleKeys: string[];
  /** A new page with empty storage, ready. */
  open(): Promise<CasePage>;
}

export function baseOptions(env: CaseEnv, storageName: string, bootstrap = [env.node.file.ws!]): StartOptions {
  return { db: env.node.file.db!, writer: env.node.file.peerId, bootstrap, storageName };
}

export async function start(page: CasePage, o: StartOptions): Promise<void> {
  await page.evaluate((opts) => lc.start(opts), o);
}

/** A failure message: `extra`, then the page's console and the node's output. */
export function context(env: CaseEnv, page: { log: string[] }, extra = ''): string {
  return `${extra}\npage:\n${page.log.slice(-40).join('\n')}\nnode:\n${env.node.output().slice(-3000)}`;
}

/** Polls the page's recorded events until `ready` holds (a deadline, no fixed sleeps). */
export async function waitRecorded(page: CasePage, ready: (r: Recorded) => boolean, what: string, timeoutMs = 60_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await page.evaluate(() => lc.recorded());
    if (ready(r)) return r;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a polling interval, not a wait for the condition
  }
}

/**
 * A full sync over one transport: the synced root is the writer's, every key-value arrived,
 * `get` returns the database's values and `prove` a checked proof. `via`: where the connection
 * lives (the worker, or the page for WebRTC).
 */
export async function fullSync(env: CaseEnv, o: { transport: TransportName; address: string; via: 'worker' | 'main'; storageName: string }): Promise<void> {
  const page = await env.open();
  try {
    await start(page, baseOptions(env, o.storageName, [o.address]));
    const synced = await page.evaluate(() => lc.synced(90_000));
    const writer = await nodeStatus(env.node);
    const rec = await page.evaluate(() => lc.recorded());
    const ctx = context(env, page, JSON.stringify({ synced, rec }, null, 1));
    expect(synced.root, ctx).toBe(writer.root);
    expect(synced.localRoot, ctx).toBe(writer.root);
    expect(synced.seq).toBe(writer.seq);
    expect(rec.peers.find((p) => p.status === 'connected'), ctx).toMatchObject({ transport: o.transport, via: o.via });
    expect(rec.last?.keyValues, ctx).toBe(env.n);
    expect(rec.errors, ctx).toEqual([]);
    const values = await page.evaluate((keys) => lc.getMany(keys), env.sampleKeys);
    expect(values).toEqual(env.sampleKeys.map((k) => env.expected.get(k)));
    expect(await page.evaluate(() => lc.get('00'.repeat(32)))).toBeNull();
    const proof = await page.evaluate((k) => lc.prove(k), env.sampleKeys[1]);
    expect(proof).toMatchObject({ value: env.expected.get(env.sampleKeys[1]), root: writer.root, seq: writer.seq, checked: true });
    if (process.env.E2E_VERBOSE) console.info(o.storageName, JSON.stringify({ ms: synced.ms, longTasks: rec.longTasks, bytes: rec.last?.bytes }));
  } finally {
    await page.close();
  }
}

/** A reload in the middle of a sync resumes it: under 2% of a full sync's bytes are fetched again. */
export async function resumeAfterReload(env: CaseEnv, storageName: string): Promise<void> {
  // small requests so that a reload lands mid-sync and little is in flight when it does
  const tuning = { keyLimit: 64, concurrency: 2 };
  const fresh = await env.open();
  let full: number;
  try {
    const before = await servedProofBytes(env.node);
    await start(fresh, { ...baseOptions(env, `${storageName}-reference`), ...tuning });
    await fresh.evaluate(() => lc.synced(90_000));
    full = (await servedProofBytes(env.node)) - before;
  } finally {
    await fresh.close();
  }

  const page = await env.open();
  try {
    const before = await servedProofBytes(env.node);
    await start(page, { ...baseOptions(env, storageName), ...tuning });
    const mid = await waitRecorded(page, (r) => (r.last?.fraction ?? 0) >= 0.3, 'a third of the sync');
    await page.reloadReady();
    await start(page, { ...baseOptions(env, storageName), ...tuning });
    const synced = await page.evaluate(() => lc.synced(90_000));
    const after = await page.evaluate(() => lc.recorded());
    const total = (await servedProofBytes(env.node)) - before;
    const again = total - full;
    const ctx = context(env, page, JSON.stringify({ full, total, again, mid: mid.last, after: after.last }));
    expect(synced.root, ctx).toBe((await nodeStatus(env.node)).root);
    expect(mid.last!.fraction, ctx).toBeLessThan(1);
    // the second session fetched only what was missing
    expect(after.last!.keyValues, ctx).toBeLessThan(env.n * 0.75);
    expect(again / full, ctx).toBeLessThan(0.02);
    if (process.env.E2E_VERBOSE) console.info(storageName, JSON.stringify({ full, total, againPercent: (100 * again) / full, midFraction: mid.last!.fraction }));
    expect(await page.evaluate((k) => lc.get(k), env.sampleKeys[3])).toBe(env.expected.get(env.sampleKeys[3]));
  } finally {
    await page.close();
  }
}

/** `getVerified` answers from a peer, proven against the signed root, before the local sync ends. */
export async function verifiedBeforeSync(env: CaseEnv, storageName: string): Promise<void> {
  const page = await env.open();
  try {
    // a slow sync (small requests, one at a time) so the answers come first
    await start(page, { ...baseOptions(env, storageName), keyLimit: 32, concurrency: 1 });
    const key = env.sampleKeys[5];
    const present = await page.evaluate((k) => lc.getVerified(k), key);
    const absent = await page.evaluate((k) => lc.getVerified(k), 'ff'.repeat(31) + '00');
    const rec = await page.evaluate(() => lc.recorded());
    const writer = await nodeStatus(env.node);
    expect(rec.synced, context(env, page)).toEqual([]);
    expect(present).toMatchObject({ value: env.expected.get(key), root: writer.root, seq: writer.seq, peer: env.node.file.peerId });
    expect(absent.value).toBeNull();
    if (process.env.E2E_VERBOSE) console.info(storageName, 'first getVerified after', Math.round(present.ms), 'ms');
  } finally {
    await page.close();
  }
}

/** A tampered single-key proof gives `InvalidRemoteProof` and penalises the peer; honest again, it is believed again. */
export async function tamperedProof(env: CaseEnv, storageName: string): Promise<void> {
  const page = await env.open();
  try {
    // no sync: only the single-key questions reach the node while it lies
    await start(page, { ...baseOptions(env, storageName), autoStart: false });
    const key = env.sampleKeys[2];
    // an honest answer first: the announcement is known and the peer connected
    expect((await page.evaluate((k) => lc.getVerified(k), key)).value).toBe(env.expected.get(key));
    await setMisbehaving(env.node, true);
    let error: string;
    try {
      error = await page.evaluate((k) => lc.getVerifiedError(k), key);
    } finally {
      await setMisbehaving(env.node, false);
    }
    const rec = await page.evaluate(() => lc.recorded());
    expect(error, context(env, page, JSON.stringify(rec.peers))).toBe('InvalidRemoteProof');
    expect(rec.peers.find((p) => p.status === 'penalised')).toMatchObject({ peer: env.node.file.peerId, reason: expect.stringMatching(/^single-key proof: /) });
    // the same peer, honest again, is believed again
    expect((await page.evaluate((k) => lc.getVerified(k), key)).value).toBe(env.expected.get(key));
  } finally {
    await page.close();
  }
}
