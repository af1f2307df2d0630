/**
 * Hostile traffic on the WebRTC-Direct UDP port of a real node process: random and truncated
 * datagrams, then thousands of well-formed STUN binding requests with fresh ufrags (each of
 * which, unguarded, starts a native peer connection: a thread and ~0.3 MB that stayed), from
 * one and from several source addresses. After each class: the process is alive, a verified
 * `proofsync fetch-range` answer equals the one before, RSS grew by at most 200 MB, and once
 * the handshake deadline has passed the thread count is back near where it started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { verifyRangeProof } from '../../src/core/proof.ts';
import { createClientNode } from '../../src/node/host.ts';
import { FULL_NODE_SCRIPT } from '../../src/node/testing/process.ts';
import { fetchHeads, fetchRangeProof } from '../../src/protocol/client.ts';
import { Cleanup, startNode, type NodeProcess } from '../harness.ts';
import { hostPort, malformedStunDatagrams, procStatus, stunFlood, sumSeries } from './attacks.ts';
import { baseline, fetchRangeCli, isAlive, metricsText, pollUntil, type Baseline } from './node-checks.ts';

const RSS_GROWTH_MB = 200;
const DEADLINE_MS = 3_000;
const MAX_PENDING = 32;
const MAX_PENDING_PER_IP = 8;
// Threads a node holds beyond its idle count once no handshake is pending: libuv's pool and
// node-datachannel's own workers start lazily (idle 12, 17 after a first peer connection).
const THREAD_SLACK = 16;

const cleanup = new Cleanup();
let node: NodeProcess;
let before: Baseline;
let udp: { host: string; port: number };

beforeAll(async () => {
  node = cleanup.add(
    await startNode({
      script: FULL_NODE_SCRIPT,
      args: [
        '--generate', '5000',
        '--webrtc-pending', String(MAX_PENDING),
        '--webrtc-pending-per-ip', String(MAX_PENDING_PER_IP),
        '--webrtc-handshake-timeout', String(DEADLINE_MS),
      ],
    }),
    (n) => n.stop(),
  );
  udp = hostPort(node.file.webrtcDirect!);
  before = await baseline(node);
  expect(before.answer.ok).toBe(true);
  expect(before.answer.keyValues.length).toBeGreaterThan(0);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

async function expectHealthy(): Promise<void> {
  expect(isAlive(node), node.output()).toBe(true);
  expect(await fetchRangeCli(node.file.ws!)).toEqual(before.answer);
  const now = await procStatus(node.child.pid!);
  expect(now.rssMB - before.rssMB).toBeLessThanOrEqual(RSS_GROWTH_MB);
}

async function refused(reason?: string): Promise<number> {
  return sumSeries(await metricsText(node), /^proofsync_webrtc_direct_handshakes_refused_total$/, reason ? new RegExp(`reason="${reason}"`) : undefined);
}

describe('STUN on the WebRTC-Direct port', () => {
  it('random and truncated datagrams are dropped', async () => {
    const datagrams = malformedStunDatagrams(3000);
    const flood = stunFlood(udp.host, udp.port, { count: datagrams.length, make: (i) => datagrams[i] });
    await flood.done;
    await flood.close();
    // none of them names a usable ufrag, so none may reach the handshake gate
    expect(await refused()).toBe(0);
    await expectHealthy();
  });

  it('binding requests with thousands of fresh ufrags from one address: at most the per-IP cap, all expired by the deadline', async () => {
    const flood = stunFlood(udp.host, udp.port, { count: 4000 });
    await flood.done;
    await flood.close();
    // every request past the cap was refused before a peer connection existed
    expect(await refused('per_ip')).toBeGreaterThanOrEqual(4000 - 4 * MAX_PENDING_PER_IP);
    const settled = await pollUntil(
      async () => ({ ...(await procStatus(node.child.pid!)), pending: sumSeries(await metricsText(node), /^proofsync_webrtc_direct_handshakes_pending$/) }),
      (s) => s.pending === 0 && s.threads <= before.threads + THREAD_SLACK,
      DEADLINE_MS * 4,
    );
    expect(settled.pending).toBe(0);
    expect(settled.threads).toBeLessThanOrEqual(before.threads + THREAD_SLACK);
    expect(await refused('expired')).toBeGreaterThan(0);
    await expectHealthy();
  });

  it('binding requests from many addresses: the total cap holds, threads return after the deadline', async () => {
    const sources = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);
    let peakThreads = 0;
    let peakPending = 0;
    const sample = setInterval(() => {
      procStatus(node.child.pid!).then((s) => (peakThreads = Math.max(peakThreads, s.threads)), () => {});
      metricsText(node).then((t) => (peakPending = Math.max(peakPending, sumSeries(t, /^proofsync_webrtc_direct_handshakes_pending$/))), () => {});
    }, 100);
    try {
      for (let wave = 0; wave < 3; wave++) {
        const flood = stunFlood(udp.host, udp.port, { count: 2000, sockets: 16, sources });
        await flood.done;
        await flood.close();
      }
    } finally {
      clearInterval(sample);
    }
    expect(await refused('total')).toBeGreaterThan(0);
    expect(peakPending).toBeLessThanOrEqual(MAX_PENDING);
    // one native thread per pending peer connection, at most
    expect(peakThreads).toBeLessThanOrEqual(before.threads + THREAD_SLACK + MAX_PENDING);
    const settled = await pollUntil(() => procStatus(node.child.pid!), (s) => s.threads <= before.threads + THREAD_SLACK, DEADLINE_MS * 4);
    expect(settled.threads).toBeLessThanOrEqual(before.threads + THREAD_SLACK);
    await expectHealthy();
  });

  it('an honest client still completes a WebRTC-Direct handshake and gets a verified proof', async () => {
    const client = await createClientNode();
    try {
      const addr = multiaddr(node.file.webrtcDirect!);
      const writerKey = peerIdFromString(node.file.peerId).publicKey!.raw;
      const ann = await fetchHeads(client, addr, { writerPublicKey: writerKey, timeoutMs: 30_000 });
      const proof = await fetchRangeProof(client, addr, { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 100, bytesLimit: 1 << 20 }, { timeoutMs: 30_000 });
      expect(() => verifyRangeProof(proof, { root: ann.stateRoot, start: undefined, end: undefined, keyLimit: 100 })).not.toThrow();
      expect(proof.keyValues.length).toBe(100);
      expect(ann.stateRoot).toEqual(Uint8Array.from(Buffer.from(before.answer.root, 'hex')));
    } finally {
      await client.stop();
    }
    await expectHealthy();
  });
});
