/**
 * One hostile-peer scenario, shared by the e2e test (hostile-peers.test.ts) and the benchmark
 * (bench/hostile-peers.bench.ts): a malicious node process (malicious-node.ts) in front of an
 * honest full node, and a light-client page that syncs with the malicious node listed first in
 * `bootstrap`.
 */
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { startNodeProcess, type NodeProcess } from '../../src/node/testing/process.ts';
import type { Lc, Recorded, StartOptions } from '../light-client/main.ts';
import type { Behaviour } from './behaviours.ts';

declare const lc: Lc;

export const MALICIOUS_NODE_SCRIPT = fileURLToPath(new URL('./malicious-node.ts', import.meta.url));

/** Starts a malicious node relaying `honest` except for `behaviour`. */
export function startMalicious(honest: NodeProcess, behaviour: Behaviour, o: { delayMs?: number } = {}): Promise<NodeProcess> {
  const args = [honest.file.ws!, honest.file.db!, behaviour, ...(o.delayMs === undefined ? [] : ['--delay-ms', String(o.delayMs)])];
  return startNodeProcess({ script: MALICIOUS_NODE_SCRIPT, args, readyTimeoutMs: 30_000 });
}

export interface ScenarioResult {
  synced: { root: string; seq: number; localRoot: string; ms: number };
  rec: Recorded;
  /** The `peer` events about the malicious node that judged an answer (penalised, banned), in order. */
  judged: { status: string; reason?: string }[];
  /** Hostile answers the client processed up to and including the ban (all of them if no ban). */
  beforeBan: number;
  banned: boolean;
}

/**
 * Syncs a fresh client on `page` (opened on e2e/light-client/index.html) from `bootstrap` and
 * reports what it made of `malicious` (its peer id), if any.
 */
export async function syncScenario(page: Page, o: { honest: NodeProcess; malicious?: NodeProcess; storageName: string; tuning?: Partial<StartOptions>; timeoutMs?: number }): Promise<ScenarioResult> {
  const bootstrap = [...(o.malicious ? [o.malicious.file.ws!] : []), o.honest.file.ws!];
  const start: StartOptions = { db: o.honest.file.db!, writer: o.honest.file.peerId, bootstrap, storageName: o.storageName, ...o.tuning };
  await page.evaluate((opts) => lc.start(opts), start);
  const synced = await page.evaluate((ms) => lc.synced(ms), o.timeoutMs ?? 120_000);
  const rec = await page.evaluate(() => lc.recorded());
  await page.evaluate(() => lc.close());
  const id = o.malicious?.file.peerId;
  // the state sync's judgements (heads, log and single-key answers are judged elsewhere)
  const judged = rec.peers
    .filter((p) => p.peer === id && (p.status === 'penalised' || p.status === 'banned') && !/^(heads|log|single-key proof):/.test(p.reason ?? ''))
    .map((p) => ({ status: p.status, reason: p.reason }));
  const ban = judged.findIndex((j) => j.status === 'banned');
  return { synced, rec, judged, beforeBan: ban >= 0 ? ban + 1 : judged.length, banned: ban >= 0 };
}
