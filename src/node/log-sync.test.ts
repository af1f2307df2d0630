/**
 * The history log end to end in Node (issue 6 "Node end to end"): real node processes (a
 * writer that keeps committing and a replica that fills its log from it) and the log fetch of
 * src/client/log/node.ts in this process. The run is `LOG_OPS` operations (default 2,000, not
 * the 100,000: a writer commits a few hundred per second on these machines; set
 * `LOG_OPS=100000` to run the full size). Every wait is on an event or an HTTP answer.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { webSockets } from '@libp2p/websockets';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../core/bytes.ts';
import { MemoryStore } from '../core/store.ts';
import { fetchLogOperationBatches, fetchLogOperations } from '../client/log/node.ts';
import type { LogFetchProgress, RawOperation } from '../client/log/fetch.ts';
import { NetworkLogSource, dialerLogPeer } from '../client/log-sync/network-source.ts';
import { fetchLog } from '../protocol/client.ts';
import { LOG_PROTOCOL } from '../protocol/ids.ts';
import { decodeLogRequest, encodeLogError, encodeLogResponse, MAX_LOG_REQUEST_BYTES } from '../protocol/messages.ts';
import { handle } from '../protocol/stream.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from './testing/process.ts';

const OPS = Number(process.env.LOG_OPS ?? 2_000);
const started: NodeProcess[] = [];
let writer: NodeProcess;
let replica: NodeProcess;
let client: ClientNode;
let writerAddr: Multiaddr;
let replicaAddr: Multiaddr;

/** Resolves with the first match of `re` in the node's output (an event, not a poll). */
function waitFor(n: NodeProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(n.output());
      if (!m) return;
      n.child.stdout!.off('data', check);
      n.child.stderr!.off('data', check);
      n.child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (): void => reject(new Error(`node exited while waiting for ${re}:\n${n.output().slice(-3000)}`));
    n.child.stdout!.on('data', check);
    n.child.stderr!.on('data', check);
    n.child.once('exit', onExit);
    check();
  });
}

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
async function writerLog(start: number, end: number): Promise<string[]> {
  const out: string[] = [];
  while (start < end) {
    const b = await fetchLog(client, writerAddr, { start, end, logSize: end });
    out.push(...b.operations.map(toHex));
    start += b.operations.length;
  }
  return out;
}

beforeAll(async () => {
  writer = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--simulate-writes', '40'], readyTimeoutMs: 60_000 });
  started.push(writer);
  // the bulk of the log: commits over HTTP, 8 at a time (the writer serialises them)
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while ((await commit(writer, next++)).logSize < OPS);
    }),
  );
  replica = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 60_000 });
  started.push(replica);
  await waitFor(replica, /log filled to \d+/);
  // the replica has applied everything up to a commit made now (a lagging replica cannot
  // serve proofs against the newest log size; it would only be asked and backed off)
  const c = await commit(writer, next++);
  await waitFor(replica, new RegExp(`applied log ${c.logSize - 1} root ${c.root}|catch-up done: root ${c.root}`));
  client = await createClientNode();
  writerAddr = multiaddr(writer.file.ws!);
  replicaAddr = multiaddr(replica.file.ws!);
}, 300_000);

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
    for await (const batch of fetchLogOperationBatches({ libp2p: client, peers: [writerAddr, replicaAddr], source, writer: writer.file.peerId, to, batchSize: 128, headsPollMs: 250, onProgress: (p) => progress.push(p) })) {
      got.push(...batch);
    }
    expect(got.map((o) => o.index)).toEqual([...Array(to).keys()]);
    expect(got.map((o) => toHex(o.bytes))).toEqual(await writerLog(0, to));
    const sizes = new Set(progress.map((p) => p.targetSize).filter((s) => s > 0));
    expect(sizes.size).toBeGreaterThan(1); // the target moved during the fetch
    const stats = Object.fromEntries(source.stats().map((s) => [s.id, s]));
    expect(stats.writer.successes).toBeGreaterThan(0);
    expect(stats.replica.successes).toBeGreaterThan(0); // both nodes served
    expect(progress.at(-1)!.rejected).toBe(0);
  }, 120_000);

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
      expect(got).toEqual(await writerLog(0, 1000));
      expect(penalties.every((p) => p.peer === 'liar')).toBe(true);
      expect(penalties.some((p) => p.banned)).toBe(true);
    } finally {
      await liar.stop();
    }
  }, 60_000);
});
