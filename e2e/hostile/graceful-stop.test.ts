/**
 * Graceful stop under load: a writer node process committing simulated writes, 50 Node libp2p
 * clients fetching and verifying range proofs in a loop, a few hundred idle raw TCP sockets,
 * slow-loris upgrade headers, garbage and a STUN flood. SIGTERM must end the process within
 * 10 s (a behaviour bound: without the stop deadline of stop-deadline.ts an idle socket holds it forever), cleanly
 * (exit 0), and the restart on the same data dir must serve, signed, the root and sequence
 * number the stopped node reported, no older than any head a client saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { toHex } from '../../src/core/bytes.ts';
import { verifyRangeProof } from '../../src/core/proof.ts';
import { createClientNode, type ClientNode } from '../../src/node/host.ts';
import { FULL_NODE_SCRIPT } from '../../src/node/testing/process.ts';
import { fetchHeads, fetchRangeProof } from '../../src/protocol/client.ts';
import { Cleanup, startNode, type NodeProcess } from '../harness.ts';
import { freshUfrag, hostPort, idleSockets, malformedStunDatagrams, slowLoris, stunBindingRequest, stunFlood } from './attacks.ts';
import { pollUntil } from './node-checks.ts';

const CLIENTS = 50;
const IDLE_SOCKETS = 300;
const EXIT_BOUND_MS = 10_000;
const NODE_ARGS = ['--peer-rate', '100000:100000', '--peer-streams', '64'];

const cleanup = new Cleanup();
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'proofsync-graceful-'));
  cleanup.add(dataDir, (d) => rm(d, { recursive: true, force: true }));
});
afterAll(() => cleanup.run(), 60_000);

interface SyncLoop {
  verified: number;
  maxSeq: number;
  failuresBeforeStop: string[];
}

/** One client: signed heads, then a verified range proof at that root from a random key, again and again. */
async function syncLoop(client: ClientNode, addr: ReturnType<typeof multiaddr>, writerKey: Uint8Array, state: SyncLoop, stopping: () => boolean, done: () => boolean): Promise<void> {
  while (!done()) {
    try {
      const ann = await fetchHeads(client, addr, { writerPublicKey: writerKey, timeoutMs: 20_000 });
      state.maxSeq = Math.max(state.maxSeq, ann.seq);
      const startKey = randomBytes(32);
      const proof = await fetchRangeProof(client, addr, { rootHash: ann.stateRoot, startKey, endKey: undefined, keyLimit: 128, bytesLimit: 1 << 20 }, { timeoutMs: 20_000 });
      verifyRangeProof(proof, { root: ann.stateRoot, start: startKey, end: undefined, keyLimit: 128 });
      state.verified++;
    } catch (err) {
      if (!stopping()) state.failuresBeforeStop.push(`${(err as Error).name}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('graceful stop under load', () => {
  it('SIGTERM during an attack with 50 syncing clients: exits cleanly within 10 s, and the restart serves the same signed root', async () => {
    const node: NodeProcess = cleanup.add(
      await startNode({ script: FULL_NODE_SCRIPT, dataDir, args: ['--generate', '5000', '--simulate-writes', '10', ...NODE_ARGS] }),
      (n) => n.stop({ keepDataDir: true }),
    );
    const ws = multiaddr(node.file.ws!);
    const writerKey = peerIdFromString(node.file.peerId).publicKey!.raw;
    const tcp = hostPort(node.file.ws!);
    const udp = hostPort(node.file.webrtcDirect!);

    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => createClientNode()));
    cleanup.add(clients, (cs) => Promise.allSettled(cs.map((c) => c.stop())).then(() => {}));
    let stopping = false;
    let done = false;
    const states: SyncLoop[] = clients.map(() => ({ verified: 0, maxSeq: -1, failuresBeforeStop: [] }));
    const loops = clients.map((c, i) => syncLoop(c, ws, writerKey, states[i], () => stopping, () => done));

    // clients first: every one has verified at least one proof, they are all really syncing
    const ready = await pollUntil(async () => states.filter((s) => s.verified > 0).length, (n) => n === CLIENTS, 120_000, 200);
    expect(ready, states.flatMap((s) => s.failuresBeforeStop).slice(0, 5).join('\n')).toBe(CLIENTS);
    // then the attack, from many loopback addresses (as from many hosts), right up to the SIGTERM
    const sources = Array.from({ length: 30 }, (_, i) => `127.0.0.${i + 2}`);
    const idle = cleanup.add(await idleSockets(tcp.host, tcp.port, IDLE_SOCKETS, { sources }), (a) => a.close());
    const garbage = cleanup.add(await idleSockets(tcp.host, tcp.port, 50, { garbage: true, sources }), (a) => a.close());
    const loris = cleanup.add(await slowLoris(tcp.host, tcp.port, 50, { intervalMs: 500, sources }), (a) => a.close());
    const junk = malformedStunDatagrams(500);
    const flood = cleanup.add(stunFlood(udp.host, udp.port, { count: 1_000_000, perTick: 5, make: (i) => (i % 2 ? junk[i % junk.length] : stunBindingRequest(freshUfrag())) }), (f) => f.close());
    await pollUntil(async () => flood.sent(), (n) => n >= 1000, 10_000, 50);
    expect(idle.connected()).toBeGreaterThan(IDLE_SOCKETS / 2);
    expect(garbage.connected() + loris.connected()).toBeGreaterThan(50);
    expect(flood.sent()).toBeGreaterThanOrEqual(1000);
    const before = states.reduce((n, s) => n + s.verified, 0);
    await pollUntil(async () => states.reduce((n, s) => n + s.verified, 0), (n) => n > before, 30_000, 50);
    // the clients still sync through it
    expect(states.reduce((n, s) => n + s.verified, 0)).toBeGreaterThan(before);

    // The flood goes on through the stop, binding requests with fresh ufrags included: each
    // opens a native peer connection, and closing those or the UDP mux while node-datachannel's
    // threads use them crashed the process (src/node/webrtc-guard.ts, leaveNativeWebRTCToExit).
    stopping = true;
    const exited = new Promise<{ code: number | null; signal: string | null; ms: number }>((resolve) => {
      const t0 = Date.now();
      node.child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0 }));
    });
    node.child.kill('SIGTERM');
    const outcome = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), EXIT_BOUND_MS))]);
    if (outcome === null) node.child.kill('SIGKILL');
    expect(outcome, `no exit within ${EXIT_BOUND_MS} ms:\n${node.output().slice(-3000)}`).not.toBeNull();
    expect(outcome!.code, `${JSON.stringify(outcome)}\n${node.output().slice(-3000)}`).toBe(0);

    done = true;
    await Promise.all(loops);
    await flood.close();
    const m = /^stopped root ([0-9a-f]{64}) seq (\d+)$/m.exec(node.output());
    expect(m, node.output().slice(-3000)).not.toBeNull();
    const [, stoppedRoot, stoppedSeq] = m!;
    const seenSeq = Math.max(...states.map((s) => s.maxSeq));
    expect(Number(stoppedSeq)).toBeGreaterThanOrEqual(seenSeq);

    // the restart: same store, same identity, the root and seq the stopped node reported, signed
    const again = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, dataDir, args: NODE_ARGS }), (n) => n.stop({ keepDataDir: true }));
    const client = clients[0];
    const ann = await fetchHeads(client, multiaddr(again.file.ws!), { writerPublicKey: writerKey, timeoutMs: 30_000 });
    expect(toHex(ann.stateRoot)).toBe(stoppedRoot);
    expect(ann.seq).toBe(Number(stoppedSeq));
    const proof = await fetchRangeProof(client, multiaddr(again.file.ws!), { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 500, bytesLimit: 1 << 20 }, { timeoutMs: 30_000 });
    expect(() => verifyRangeProof(proof, { root: ann.stateRoot, start: undefined, end: undefined, keyLimit: 500 })).not.toThrow();
    expect(proof.keyValues.length).toBe(500);
    await again.stop({ keepDataDir: true });
    await Promise.all([idle.close(), garbage.close(), loris.close()]);
  });
});

