/**
 * The history log end to end in Node: real node processes and the
 * log fetch of src/sync/log/libp2p-fetch.ts in this process. The writer starts with a log of
 * `LOG_OPS` operations (default 100,000) made by `--generate-log` (real commits, each a signed
 * delta carrying its real state root, made in memory by the writer's own code: seconds instead
 * of the ~8 minutes 100,000 HTTP commits take) and keeps committing (`--simulate-writes`), so
 * the target moves. The second node is a replica (`--follow`): it syncs the state from the
 * writer and fills its log over `/log`, verifying every batch against the writer's signed log
 * root, then follows the writer's gossip; it serves the same log because it verified it, not
 * because it was copied. The expected answer is read from the writer and checked on its own:
 * its MMR root, rebuilt with the core, must be the root the writer signed.
 * Every wait is on an event or an HTTP answer.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { peerIdFromString } from '@libp2p/peer-id';
import { webSockets } from '@libp2p/websockets';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../core/bytes.ts';
import { MmrFrontier } from '../core/mmr.ts';
import { MemoryStore } from '../core/store.ts';
import { fetchLogOperationBatches, fetchLogOperations } from '../sync/log/libp2p-fetch.ts';
import type { LogFetchProgress, RawOperation } from '../sync/log/fetch.ts';
import { NetworkLogSource, dialerLogPeer } from '../sync/log/network-source.ts';
import { fetchHeads, fetchLog } from '../protocol/client.ts';
import { LOG_PROTOCOL } from '../protocol/ids.ts';
import { decodeLogRequest, encodeLogError, encodeLogResponse, MAX_LOG_REQUEST_BYTES } from '../protocol/messages.ts';
import { handle } from '../protocol/stream.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, waitForOutput, type NodeProcess } from './testing/process.ts';

const OPS = Number(process.env.LOG_OPS ?? 100_000);
const started: NodeProcess[] = [];
let writer: NodeProcess;
let replica: NodeProcess;
let client: ClientNode;
let writerAddr: Multiaddr;
let replicaAddr: Multiaddr;

async function commit(n: NodeProcess, i: number): Promise<{ logSize: number; root: string }> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  const key = (0xc0000000 + i).toString(16).padStart(64, '0');
  const res = await fetch(`${n.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts: [{ key, value: 'c0de' }] }) });
  expect(res.status).toBe(200);
  return (await res.json()) as { logSize: number; root: string };
}

async function logSize(n: NodeProcess): Promise<number> {
  return ((await (await fetch(`${n.file.http}/v1/status`)).json()) as { logSize: number }).logSize;
}

/** The writer's own operations `[start, end)`, unverified: what the fetch must equal. */
async function writerLog(start: number, end: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  while (start < end) {
    const b = await fetchLog(client, writerAddr, { start, end, logSize: end });
    out.push(...b.operations);
    start += b.operations.length;
  }
  return out;
}

/**
 * The writer's whole log as of its newest signed announcement, checked independently of the
 * fetch under test: the MMR root of the operations, rebuilt with the core, is the signed one.
 */
async function signedWriterLog(): Promise<Uint8Array[]> {
  const ann = await fetchHeads(client, writerAddr, { writerPublicKey: peerIdFromString(writer.file.peerId).publicKey!.raw });
  const ops = await writerLog(0, ann.logSize);
  const frontier = MmrFrontier.fromPeaks(0, []);
  for (const op of ops) frontier.append(op);
  expect(toHex(frontier.root())).toBe(toHex(ann.logRoot));
  return ops;
}

/** Index of the first operation that differs (or of the first missing one), -1 when equal. */
function firstDifference(a: readonly Uint8Array[], b: readonly Uint8Array[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!equalBytes(a[i], b[i])) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

beforeAll(async () => {
  writer = await startNodeProcess({
    script: FULL_NODE_SCRIPT,
    args: ['--generate-log', String(OPS), '--generate-log-keys', '4096', '--simulate-writes', '40'],
    readyTimeoutMs: 240_000,
  });
  started.push(writer);
  let next = 0;
  replica = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 60_000 });
  started.push(replica);
  await waitForOutput(replica, /log filled to \d+/);
  // the replica has applied everything up to a commit made now (a lagging replica cannot
  // serve proofs against the newest log size; it would only be asked and backed off)
  const c = await commit(writer, next++);
  await waitForOutput(replica, new RegExp(`applied log ${c.logSize - 1} root ${c.root}|catch-up done: root ${c.root}`));
  client = await createClientNode();
  writerAddr = multiaddr(writer.file.ws!);
  replicaAddr = multiaddr(replica.file.ws!);
}, 400_000);

afterAll(async () => {
  await client?.stop();
  await Promise.allSettled(started.map((n) => n.stop()));
});

describe('log fetch against node processes', () => {
  it(`fetches ${OPS.toLocaleString('en')}+ operations from two nodes while the writer commits; the target moves; equal to the writer's log`, async () => {
    const size0 = await logSize(writer);
    // a `to` past the writer's current size can only be reached by following new announcements
    const to = size0 + 40;
    const source = new NetworkLogSource([dialerLogPeer(client, writerAddr, 'writer'), dialerLogPeer(client, replicaAddr, 'replica')]);
    const progress: LogFetchProgress[] = [];
    const got: RawOperation[] = [];
    for await (const batch of fetchLogOperationBatches({ libp2p: client, peers: [writerAddr, replicaAddr], source, writer: writer.file.peerId, to, batchSize: 1024, headsPollMs: 250, onProgress: (p) => progress.push(p) })) {
      got.push(...batch);
    }
    expect(got.length).toBe(to);
    expect(got.findIndex((o, i) => o.index !== i)).toBe(-1);
    const expected = (await signedWriterLog()).slice(0, to);
    expect(firstDifference(got.map((o) => o.bytes), expected)).toBe(-1);
    const sizes = new Set(progress.map((p) => p.targetSize).filter((s) => s > 0));
    expect(sizes.size).toBeGreaterThan(1); // the target moved during the fetch
    const stats = Object.fromEntries(source.stats().map((s) => [s.id, s]));
    expect(stats.writer.successes).toBeGreaterThan(0);
    expect(stats.replica.successes).toBeGreaterThan(0); // both nodes served
    expect(progress.at(-1)!.rejected).toBe(0);
  }, 180_000);

  it('decodes operations and resumes a stored fetch (Node API)', async () => {
    const store = new MemoryStore();
    const peers = [writerAddr, replicaAddr];
    const first: number[] = [];
    for await (const op of fetchLogOperations({ libp2p: client, peers, writer: writer.file.peerId, from: 100, to: 400, store, persist: true, batchSize: 64 })) {
      first.push(op.index);
      if (first.length === 150) break;
    }
    let fromStore = 0;
    const all: string[] = [];
    for await (const op of fetchLogOperations({ libp2p: client, peers, writer: writer.file.peerId, from: 100, to: 400, store, persist: true, batchSize: 64, onProgress: (p) => (fromStore = p.fromStore) })) {
      expect(op.actions.length).toBeGreaterThan(0);
      all.push(toHex(op.id));
    }
    expect(all).toHaveLength(300);
    expect(fromStore).toBeGreaterThanOrEqual(150);
    expect(new Set(all).size).toBe(300);
  }, 60_000);

  it('a node that tampers with its answers is penalised and banned; the fetch completes from the writer', async () => {
    const liar: Libp2p = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() },
    });
    try {
      // relays the writer's batches with one operation altered
      await handle(
        liar,
        LOG_PROTOCOL,
        async (req) => {
          const q = decodeLogRequest(req);
          const b = await fetchLog(liar, writerAddr, q);
          const operations = b.operations.slice();
          const i = operations.length >> 1;
          operations[i] = operations[i].slice();
          operations[i][operations[i].length - 1] ^= 0xff;
          return encodeLogResponse({ type: 'batch', operations, proof: b.proof.digests, pinned: b.pinned });
        },
        { maxRequestBytes: MAX_LOG_REQUEST_BYTES, encodeError: encodeLogError },
      );
      const liarAddr = liar.getMultiaddrs()[0];
      const penalties: { peer: string; banned: boolean }[] = [];
      const source = new NetworkLogSource([dialerLogPeer(client, liarAddr, 'liar'), dialerLogPeer(client, writerAddr, 'writer')], {
        banAfter: 2,
        onPenalise: (peer, banned) => penalties.push({ peer, banned }),
      });
      const got: string[] = [];
      for await (const batch of fetchLogOperationBatches({ libp2p: client, peers: [writerAddr], source, writer: writer.file.peerId, to: 1000, batchSize: 100 })) {
        got.push(...batch.map((o) => toHex(o.bytes)));
      }
      expect(got).toEqual((await writerLog(0, 1000)).map(toHex));
      expect(penalties.every((p) => p.peer === 'liar')).toBe(true);
      expect(penalties.some((p) => p.banned)).toBe(true);
    } finally {
      await liar.stop();
    }
  }, 60_000);
});
