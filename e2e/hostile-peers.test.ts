/**
 * The light client among hostile peers, in Chromium: a malicious js-libp2p node process
 * (hostile-peers/malicious-node.ts) relays an honest full node's answers except for one
 * behaviour, and is listed FIRST in `bootstrap` beside the honest writer. Whatever it does, the
 * sync ends at the writer's root; a peer that sends malformed or oversized answers is banned,
 * with the decode error as the reason, after at most 3 of them (an endless answer may instead be
 * overtaken by a hedge, which charges the peer as slow); a silent one is hedged around.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { multiaddr } from '@multiformats/multiaddr';
import { fetchHeads, fetchRangeProof } from '../src/protocol/client.ts';
import { createClientNode } from '../src/node/host.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { EXPECTED_REASONS } from './hostile-peers/behaviours.ts';
import { startMalicious, syncScenario } from './hostile-peers/scenario.ts';
import { nodeStatus } from './node-api.ts';

/** Small: about 50 requests (keyLimit 128), enough for a hostile peer to be asked. */
const N = 6_000;
// Banned at the first strike, not the default third: a penalised peer is backed off, and this
// 47-request sync, now that freed requests go out before each write, can end before the hostile
// peer answers again (a CI run: 2 strikes at the default 3, sync done, not banned; 1 run in 2
// failed at 2). The strike count itself is unit-tested in src/sync/peers.test.ts.
const TUNING = { keyLimit: 128, requestTimeoutMs: 10_000, banAfter: 1 };
const cleanup = new Cleanup();
let honest: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

beforeAll(async () => {
  [honest, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

async function withPage<T>(f: (page: Page, log: string[]) => Promise<T>): Promise<T> {
  const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
  try {
    return await f(page, log);
  } finally {
    await page.close();
  }
}

describe('light client among hostile peers: malformed and oversized answers', () => {
  for (const behaviour of ['endless', 'huge-prefix', 'many-nodes', 'oversized', 'wrong-type'] as const) {
    it(`${behaviour}: the sync ends at the writer's root; at most ${TUNING.banAfter} answers are taken, each rejected for ${EXPECTED_REASONS[behaviour].join('/')}, and the peer is banned${behaviour === 'endless' ? ' or hedged around' : ''}`, async () => {
      const malicious = await startMalicious(honest, behaviour);
      try {
        const r = await withPage(async (page, log) => {
          try {
            return await syncScenario(page, { honest, malicious, storageName: `hostile-${behaviour}`, tuning: TUNING });
          } catch (err) {
            throw new Error(`sync failed; page:\n${log.slice(-30).join('\n')}\nmalicious:\n${malicious.output().slice(-2000)}`, { cause: err });
          }
        });
        const writer = await nodeStatus(honest);
        const ctx = JSON.stringify({ judged: r.judged, last: r.rec.last && { ...r.rec.last, segments: undefined }, errors: r.rec.errors });
        expect(r.synced.root, ctx).toBe(writer.root);
        expect(r.synced.localRoot, ctx).toBe(writer.root);
        // it did answer with hostile bytes, and each answer it was judged on is named for its fault
        expect(malicious.output(), ctx).toMatch(/^hostile /m);
        // no more hostile answers processed than the ban allows, each rejected for its fault
        expect(r.beforeBan, ctx).toBeLessThanOrEqual(TUNING.banAfter);
        for (const j of r.judged) expect(EXPECTED_REASONS[behaviour], ctx).toContain(j.reason?.split(':')[0]);
        if (behaviour === 'endless') {
          // an endless answer takes the client's whole frame limit to reject: the honest peer's
          // hedge often wins first, and the slow peer is charged a timeout instead of a strike
          expect(r.banned || (r.rec.last?.hedges ?? 0) > 0, ctx).toBe(true);
        } else {
          expect(r.banned, ctx).toBe(true);
          expect(r.judged.length, ctx).toBeGreaterThan(0);
        }
        expect(r.rec.last?.keyValues, ctx).toBe(N);
      } finally {
        await malicious.stop();
      }
    });
  }
});

describe('light client among hostile peers: a silent peer', () => {
  it('never answering, listed first: its requests are hedged to the honest writer and the sync ends at its root, not at a deadline', async () => {
    const malicious = await startMalicious(honest, 'silent');
    try {
      // a deadline far longer than the sync: only hedging lets it finish without waiting for one
      const r = await withPage((page) => syncScenario(page, { honest, malicious, storageName: 'hostile-silent', tuning: { ...TUNING, requestTimeoutMs: 120_000 }, timeoutMs: 100_000 }));
      const writer = await nodeStatus(honest);
      const ctx = JSON.stringify({ judged: r.judged, last: r.rec.last && { ...r.rec.last, segments: undefined } });
      expect(r.synced.root, ctx).toBe(writer.root);
      expect(malicious.output(), ctx).toMatch(/^hostile /m);
      expect(r.rec.last?.hedges, ctx).toBeGreaterThan(0);
      // silence is slowness, not a fault: nothing to ban it for
      expect(r.judged, ctx).toEqual([]);
    } finally {
      await malicious.stop();
    }
  });
});

describe('protocol client against the malicious node (Node, no browser)', () => {
  const cases = [
    { behaviour: 'huge-prefix', reasons: EXPECTED_REASONS['huge-prefix'] },
    { behaviour: 'endless', reasons: EXPECTED_REASONS.endless },
    { behaviour: 'oversized', reasons: EXPECTED_REASONS.oversized },
    { behaviour: 'many-nodes', reasons: EXPECTED_REASONS['many-nodes'] },
    { behaviour: 'wrong-type', reasons: EXPECTED_REASONS['wrong-type'] },
  ] as const;
  for (const c of cases) {
    it(`${c.behaviour}: each answer is rejected with a decode error at the frame limit, before any deadline, and the connection keeps serving`, async () => {
      const malicious = await startMalicious(honest, c.behaviour);
      const client = await createClientNode();
      try {
        const addr = multiaddr(malicious.file.ws!);
        const ann = await fetchHeads(client, addr, { writerPublicKey: undefined });
        const req = { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 128, bytesLimit: 2 << 20 };
        for (let i = 0; i < 3; i++) {
          // a deadline far past the test's: only the frame limit or the decoder can end the request
          const err = await fetchRangeProof(client, addr, req, { timeoutMs: 600_000 }).then(
            () => undefined,
            (e: Error) => e,
          );
          expect(c.reasons, String(err)).toContain(err?.name);
        }
        // the heads protocol is relayed honestly on the same connection: nothing was starved
        expect((await fetchHeads(client, addr)).stateRoot).toEqual(ann.stateRoot);
      } finally {
        await client.stop();
        await malicious.stop();
      }
    });
  }
});
