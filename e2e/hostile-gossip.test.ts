/**
 * Gossip from a hostile peer, end to end: a real writer node committing steadily, a real attacker
 * process (e2e/hostile-peers/gossip-attacker.ts, a js-libp2p node on the database topic) and
 * either a replica node or a light client in headless Chromium (e2e/live/). The attacker floods
 * forged deltas and garbage, replays an announcement of another database signed with the
 * writer's own key, and gossips writer-signed deltas on top of a 100,000-deep chain nobody
 * else has, which it serves over /delta and counts.
 *
 * What must hold: the honest updates keep arriving and applying; the page hears of the attacker
 * through rate-limited `peer` events, not one `error` each; nothing invalid is forwarded to the
 * writer (its own validator counts zero rejects); the deep chain is walked once, not again and
 * again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { Live, LiveRecord, LiveStart } from './live/main.ts';
import { startAttacker } from './hostile-peers/attacker-process.ts';

const cleanup = new Cleanup();
let writer: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

declare const live: Live;

/** The client's gap-fill limit here (default 1,000): a shorter walk keeps the test quick. */
const FILL_LIMIT = 200;

const attackerOf = async (w: NodeProcess, dial: string[] = []) => {
  const a = await startAttacker(w, dial);
  cleanup.add(a.process, (x) => x.stop());
  return a;
};

async function metric(node: NodeProcess, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${node.file.http}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
const rejected = (node: NodeProcess) => metric(node, 'proofsync_gossip_messages_total', 'result="reject"');

async function status(node: NodeProcess): Promise<{ root: string; logSize: number }> {
  return (await fetch(`${node.file.http}/v1/status`)).json() as Promise<{ root: string; logSize: number }>;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200)); // a polling interval, not a wait for the condition
  }
}

beforeAll(async () => {
  [writer, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', '2000', '--simulate-writes', '5'], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/live/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('hostile gossip against a replica', () => {
  it('the replica rejects forged, garbage and foreign gossip in its validator, forwards none of it, and keeps following', async () => {
    const replica = cleanup.add(
      await startNode({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 60_000 }),
      (x) => x.stop(),
    );
    await until('the replica following the writer', async () => ((await status(replica)).logSize > 0 ? true : undefined));
    // one peer per flood: gossipsub graylists a flooder, so its next flood may never be read
    const [flooder, replayer] = await Promise.all([attackerOf(writer, [replica.file.ws!]), attackerOf(writer, [replica.file.ws!])]);
    const writerRejectsBefore = await rejected(writer);
    await Promise.all([flooder.run('invalid 4000'), replayer.run('foreign 2000')]);
    expect(flooder.stats().published.invalid).toBe(4000);
    expect(replayer.stats().published.foreign).toBe(2000);

    // the replica judged them: rejected (gossipsub drops the rest of a graylisted peer's unread)
    const reasons = await until('the replica counting rejects of every kind', async () => {
      const r = {
        badSignature: await metric(replica, 'proofsync_gossip_messages_total', 'reason="bad-signature"'),
        badEncoding: await metric(replica, 'proofsync_gossip_messages_total', 'reason="bad-encoding"'),
        wrongDatabase: await metric(replica, 'proofsync_gossip_messages_total', 'reason="wrong-database"'),
      };
      return r.badSignature > 0 && r.badEncoding > 0 && r.wrongDatabase > 0 ? r : undefined;
    });
    if (process.env.E2E_VERBOSE) console.info('replica rejects', reasons, 'of', 6000, 'published');
    // and it still follows the writer: it reaches the writer's log size of after the flood
    const target = (await status(writer)).logSize;
    await until('the replica caught up with the writer', async () => ((await status(replica)).logSize >= target ? true : undefined));
    // nothing of it was forwarded to the writer: its own validator saw no invalid message
    expect(await rejected(writer)).toBe(writerRejectsBefore);
    await flooder.process.stop();
    await replayer.process.stop();
    await replica.stop();
  });
});

describe('hostile gossip against a light client in the browser', () => {

  async function waitLive(page: Page, ready: (r: LiveRecord) => boolean, what: string, timeoutMs = 60_000): Promise<LiveRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await page.evaluate(() => live.tail(1));
      if (ready(r)) return r;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...r, updates: r.updates.slice(-3), peers: r.peers.slice(-10) })}`);
      await page.waitForTimeout(100); // a polling interval, not a wait for the condition
    }
  }

  it('floods, replays and a 100,000-deep chain: updates still apply, errors stay few, the attacker is named, the chain is walked once', { timeout: 300_000 }, async () => {
    // two attackers: gossipsub graylists a flooder, so the second flood of one peer may never
    // be read at all (as it should be); each kind of offence gets a fresh peer here
    const attacker = await attackerOf(writer);
    const flooder = await attackerOf(writer);
    const attackerId = attacker.process.file.peerId;
    const flooderId = flooder.process.file.peerId;
    const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/live/index.html`);
    try {
      const o: LiveStart = { db: writer.file.db!, writer: writer.file.peerId, bootstrap: [attacker.process.file.ws!, flooder.process.file.ws!, writer.file.ws!], storageName: 'hostile-gossip', live: { maxGapFill: FILL_LIMIT } };
      await page.evaluate((x) => live.start(x), o);
      const t0 = Date.now();
      await page.evaluate(() => live.synced(90_000));
      if (process.env.E2E_VERBOSE) console.info('synced in', Date.now() - t0, 'ms', JSON.stringify(await page.evaluate(() => live.progress())));
      await waitLive(page, (x) => (x.live.at(-1)?.applied ?? 0) >= 3, 'first live deltas');
      const writerRejectsBefore = await rejected(writer);

      await Promise.all([flooder.run('invalid 10000'), attacker.run('foreign 2000')]);
      attacker.send('chain 100000 500');
      const applied = (await page.evaluate(() => live.tail(1))).live.at(-1)?.applied ?? 0;
      // the writer commits 5 a second: 30 more applied, and 5 chain deltas dropped on arrival
      const r = await waitLive(page, (x) => (x.live.at(-1)?.applied ?? 0) >= applied + 30 && (x.pending?.abandoned ?? 0) >= 5, 'live updates during the attack', 150_000);
      const w = await status(writer);
      // the client reaches the writer's log of now (by deltas, or by a catch-up)
      await waitLive(page, (x) => (x.live.at(-1)?.logSize ?? 0) >= w.logSize, "the writer's newest log size at the client", 60_000);

      const s = attacker.stats();
      expect(flooder.stats().published.invalid).toBe(10_000);
      expect(s.published.foreign).toBe(2_000);
      expect(s.published.chain).toBeGreaterThanOrEqual(5);
      // page errors stay few: none of the 12,000 became one
      expect(r.errors.length, JSON.stringify(r.errors)).toBeLessThanOrEqual(2);
      // the attackers are named, each reason at most once per 10 s
      const offences = (peer: string) => r.peers.filter((p) => p.peer === peer && p.reason?.startsWith('gossip:'));
      const kinds = (peer: string) => new Set(offences(peer).map((p) => p.reason!.replace(/ \(.*$/, '').replace(/;.*$/, '')));
      expect([...kinds(attackerId)], JSON.stringify(offences(attackerId))).toContain('gossip: wrong-database');
      expect([...kinds(flooderId)].some((k) => k === 'gossip: bad-signature' || k === 'gossip: bad-encoding'), JSON.stringify(offences(flooderId))).toBe(true);
      for (const peer of [attackerId, flooderId]) expect(offences(peer).length, JSON.stringify(offences(peer))).toBeLessThanOrEqual(30);
      // the chain was walked once: one fill's worth of ids, then its deltas are dropped on
      // arrival; a delta arriving after some that gossipsub dropped unread (the attacker was
      // graylisted meanwhile) costs one id for each of those, down to the remembered part
      expect(s.chainIdsRequested).toBeGreaterThan(0);
      expect(s.chainIdsRequested, JSON.stringify(s)).toBeLessThanOrEqual(2 * FILL_LIMIT);
      expect(r.pending!.abandoned).toBeGreaterThanOrEqual(5);
      // nothing invalid went on through the client to the writer
      expect(await rejected(writer)).toBe(writerRejectsBefore);
      if (process.env.E2E_VERBOSE) {
        const all = await page.evaluate(() => live.recorded());
        console.info('attacker', s, 'offence events', offences(attackerId).length + offences(flooderId).length, 'catch-ups', all.live.filter((l) => l.mode === 'catching-up').map((l) => l.reason), 'fills', all.gapFills.filter((g) => g.phase !== 'started').map((g) => `${g.peer?.slice(-4)} ${g.phase} ${g.reason ?? ''} ${g.fetched}`));
      }
    } catch (err) {
      const all = await page.evaluate(() => live.recorded()).catch(() => undefined);
      const modes = all?.live.filter((l) => l.mode !== 'live' || l.reason).map((l) => `${l.mode}:${l.reason ?? ''}@${l.logSize}`);
      throw new Error(`${(err as Error).message}\nmodes: ${JSON.stringify(modes)}\nfills: ${JSON.stringify(all?.gapFills.slice(-10))}\npage log (tail):\n${log.slice(-60).join('\n')}\nattacker (tail):\n${attacker.process.output().slice(-1500)}`);
    } finally {
      await page.evaluate(() => live.close()).catch(() => {});
      await page.close();
      await attacker.process.stop();
    }
  });
});
