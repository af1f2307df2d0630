/**
 * A replica started after the writer named a checkpoint serves that checkpoint (docs/sync.md#checkpoints):
 * its first sync goes by the checkpoint root and keeps it, so a fresh client's canonical sync to
 * the checkpoint is answered by the replica alone, not refused with `RootNotFound` until the
 * writer names the next one. Real node processes; the writer keeps a history window of one
 * commit, so the checkpoint is outside it (kept beyond it, change proofs from it served too).
 * A checkpoint the writer does not serve (it keeps none beyond its window) ends each attempt
 * by it at the writer's first `RootNotFound`, and the sync goes to the head as before.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedAnnouncement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { verifyRangeProof } from '../core/proof.ts';
import { MemoryStore } from '../core/store.ts';
import { fetchHeads } from '../protocol/client.ts';
import { syncState } from '../sync/state/driver.ts';
import { networkStateSource, responseSize } from '../sync/state/network-source.ts';
import { canonicalParts, canonicalRangeRequest } from '../sync/state/plan.ts';
import type { ChangeProofRequest, RangeProofRequest } from '../core/types.ts';
import type { StateResponse, StateSource } from '../sync/state/source.ts';
import { TargetChannel } from '../sync/state/testing.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, waitForOutput, type NodeProcess } from './testing/process.ts';

const GENERATED = 20_000;
const started: NodeProcess[] = [];
const clients: ClientNode[] = [];
let writer: NodeProcess;
let writerKey: Uint8Array;
let replica: NodeProcess;
let checkpoint: Uint8Array;
let client: ClientNode;

/** One canonical request at `root` to `n`, verified (throws `RootNotFound` when `n` lacks it). */
async function rangeAt(n: NodeProcess, root: Uint8Array): Promise<number> {
  const part = canonicalParts()[0];
  const request = canonicalRangeRequest(root, part.start, part.end);
  const answer = await networkStateSource(client, 'node', multiaddr(n.file.ws!), { timeoutMs: 30_000 }).rangeProof(request, {});
  if (answer.type !== 'range') throw new Error('not a range proof');
  verifyRangeProof(answer.proof, { root, start: request.startKey, end: request.endKey, keyLimit: request.keyLimit });
  return answer.proof.keyValues.length;
}

async function start(args: string[], dataDir?: string): Promise<NodeProcess> {
  const n = await startNodeProcess({ script: FULL_NODE_SCRIPT, args, dataDir, readyTimeoutMs: 120_000 });
  started.push(n);
  return n;
}

async function commit(n: NodeProcess, i: number): Promise<{ logIndex: number; root: string }> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  // a put and a change of a generated key's neighbourhood: the head differs from the checkpoint
  const body = { puts: [{ key: `c0${i.toString(16).padStart(4, '0')}`, value: `0${i}` }] };
  const res = await fetch(`${n.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  const r = (await res.json()) as { logSize: number; root: string };
  return { logIndex: r.logSize - 1, root: r.root };
}

async function statusRoot(n: NodeProcess): Promise<string> {
  return ((await (await fetch(`${n.file.http}/v1/status`)).json()) as { root: string }).root;
}

/** Counts what a source was asked and how it answered. */
class Counting implements StateSource {
  readonly id: string;
  ranges = 0;
  changes: { request: ChangeProofRequest; answer: StateResponse['type'] }[] = [];
  readonly #inner: StateSource;
  constructor(inner: StateSource) {
    this.#inner = inner;
    this.id = inner.id;
  }
  rangeProof(request: RangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    this.ranges++;
    return this.#inner.rangeProof(request, o);
  }
  async changeProof(request: ChangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    const r = await this.#inner.changeProof(request, o);
    this.changes.push({ request, answer: r.type });
    return r;
  }
}

beforeAll(async () => {
  // a checkpoint at the bulk load and 3 commits on; 2 more commits and a window of one commit
  // leave it outside the writer's window (kept beyond it)
  writer = await start(['--generate', String(GENERATED), '--history', '1', '--checkpoint-every', '3', '--checkpoint-interval', '0']);
  writerKey = peerIdFromString(writer.file.peerId).publicKey!.raw;
  for (let i = 0; i < 5; i++) await commit(writer, i);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await Promise.allSettled(started.map((n) => n.stop()));
});

describe('a replica and the checkpoint named before it started', () => {
  it('serves range proofs at the checkpoint right after its first sync, and a fresh canonical sync from it alone reaches the head', async () => {
    const c = await createClientNode();
    clients.push(c);
    client = c;
    const ann: SignedAnnouncement = await fetchHeads(c, multiaddr(writer.file.ws!), { writerPublicKey: writerKey });
    expect(ann.checkpoint).toBeDefined();
    expect(ann.checkpoint!.seq).toBe(ann.seq - 2);
    checkpoint = ann.checkpoint!.root;
    expect(equalBytes(checkpoint, ann.stateRoot)).toBe(false);

    replica = await start(['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!]);
    await waitForOutput(replica, /^.* following /m);
    expect(await statusRoot(replica)).toBe(await statusRoot(writer));
    expect(await statusRoot(replica)).toBe(toHex(ann.stateRoot));

    // one canonical request at the checkpoint: a verified answer, not RootNotFound
    const ws: Multiaddr = multiaddr(replica.file.ws!);
    const part = canonicalParts()[0];
    const request = canonicalRangeRequest(checkpoint, part.start, part.end);
    const answer = await networkStateSource(c, 'replica', ws, { timeoutMs: 30_000 }).rangeProof(request, {});
    expect(answer.type).toBe('range');
    if (answer.type !== 'range') return;
    expect(answer.proof.keyValues.length).toBeGreaterThan(0);
    verifyRangeProof(answer.proof, { root: checkpoint, start: request.startKey, end: request.endKey, keyLimit: request.keyLimit });
    expect(replica.output()).toContain(`kept checkpoint ${toHex(checkpoint)}`);

    // a fresh client's sync, from the replica alone: the checkpoint by the canonical plan, then
    // the head by change proofs from the checkpoint
    const source = new Counting(networkStateSource(c, 'replica', ws, { timeoutMs: 30_000 }));
    const updates = new TargetChannel();
    const store = new MemoryStore();
    const { root, progress } = await syncState({
      store,
      sources: [source],
      target: checkpoint,
      canonicalRoot: checkpoint,
      targetUpdates: updates,
      concurrency: 4,
      requestTimeoutMs: 30_000,
      maxAttempts: 3,
      sizeOf: responseSize,
      onProgress: (p) => {
        if (p.phase === 'at-target' && equalBytes(p.target, checkpoint)) {
          updates.push(ann.stateRoot);
          updates.close();
        }
      },
    });
    expect(toHex(root)).toBe(toHex(ann.stateRoot));
    expect(progress.proofsRejected).toBe(0);
    expect(progress.keyValuesReceived).toBeGreaterThanOrEqual(GENERATED);
    expect(source.changes.length).toBeGreaterThan(0);
    for (const ch of source.changes) {
      expect(toHex(ch.request.startRootHash)).toBe(toHex(checkpoint));
      expect(ch.answer).toBe('change');
    }
  }, 180_000);

  it('still serves it after a catch-up: the catch-up extends the history instead of starting it afresh', async () => {
    await replica.stop({ keepDataDir: true });
    // 2 commits (a checkpoint at the first, which the replica never holds), past --max-gap 1
    for (let i = 5; i < 7; i++) await commit(writer, i);
    replica = await start(['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!, '--max-gap', '1'], replica.dataDir);
    await waitForOutput(replica, /catch-up done: root/);
    // a commit applied after the catch-up: the catch-up has finished
    const c = await commit(writer, 7);
    await waitForOutput(replica, new RegExp(`applied log ${c.logIndex} root ${c.root}`));
    expect(await statusRoot(replica)).toBe(c.root);
    expect(await rangeAt(replica, checkpoint)).toBeGreaterThan(0);
    expect(replica.output()).toMatch(/catch-up done: root/);
    expect(replica.output()).toMatch(/history kept across the catch-up/);
  }, 120_000);
});

describe('a replica and a checkpoint the writer no longer serves', () => {
  it('gives up on the checkpoint at the writer\'s RootNotFound and syncs to the head', async () => {
    // --checkpoints-kept 0: the announcement names a checkpoint 2 commits back, outside the window
    const w = await start(['--generate', '2000', '--history', '1', '--checkpoint-every', '3', '--checkpoint-interval', '0', '--checkpoints-kept', '0']);
    for (let i = 0; i < 5; i++) await commit(w, i);
    const replica = await start(['--follow', w.file.peerId, '--bootstrap', w.file.ws!]);
    await waitForOutput(replica, /^.* following /m);
    const out = replica.output();
    expect(out.match(/the writer no longer serves checkpoint seq \d+/g)).toHaveLength(2);
    expect(out).toContain('to the head, by no checkpoint');
    expect(out).toContain('the sync went by no checkpoint');
    expect(out).not.toContain('kept checkpoint');
    expect(await statusRoot(replica)).toBe(await statusRoot(w));
  }, 120_000);
});
