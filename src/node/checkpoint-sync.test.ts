/**
 * Checkpoints against a real node process: the writer names one, keeps it servable past a
 * small history window, and two fresh clients that sync to it over WebSockets send byte-identical
 * request sequences (the canonical plan), then catch up to the head by change proofs.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedAnnouncement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { MemoryStore } from '../core/store.ts';
import { MerkleTrie } from '../core/trie.ts';
import type { ChangeProofRequest, RangeProofRequest } from '../core/types.ts';
import { fetchHeads } from '../protocol/client.ts';
import { encodeRangeProofRequest } from '../protocol/codec.ts';
import { syncState } from '../sync/state/driver.ts';
import { networkStateSource, responseSize } from '../sync/state/network-source.ts';
import { CANONICAL_BYTES_LIMIT, CANONICAL_KEY_LIMIT, CANONICAL_PARTS } from '../sync/state/plan.ts';
import type { StateResponse, StateSource } from '../sync/state/source.ts';
import { TargetChannel } from '../sync/state/testing.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from './testing/process.ts';

/** Spread over all 64 parts (about 90 each); two dense parts then need resume chains. */
const GENERATED = 6_000;
const hex2 = (n: number): string => n.toString(16).padStart(4, '0');
/** `count` keys under first byte `first`: more than one canonical answer holds. */
const dense = (first: string, count: number) => Array.from({ length: count }, (_, i) => ({ key: `${first}${hex2(i)}`, value: hex2(i) }));

let node: NodeProcess;
let ws: Multiaddr;
let writerKey: Uint8Array;
const clients: ClientNode[] = [];

async function post(body: unknown): Promise<void> {
  const file = JSON.parse(await readFile(join(node.dataDir, 'addresses.json'), 'utf8')) as { http: string };
  const token = (await readFile(join(node.dataDir, 'token'), 'utf8')).trim();
  const res = await fetch(`${file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
}

/** Every request a sync sends, in order, as the bytes that go on the wire. */
class Recorder implements StateSource {
  readonly id: string;
  readonly ranges: string[] = [];
  readonly limits: [number, number | undefined][] = [];
  readonly changes: ChangeProofRequest[] = [];
  readonly #inner: StateSource;
  constructor(inner: StateSource) {
    this.#inner = inner;
    this.id = inner.id;
  }
  rangeProof(request: RangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    this.ranges.push(toHex(encodeRangeProofRequest(request)));
    this.limits.push([request.keyLimit, request.bytesLimit]);
    return this.#inner.rangeProof(request, o);
  }
  changeProof(request: ChangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    this.changes.push(request);
    return this.#inner.changeProof(request, o);
  }
}

/** A fresh client's sync, as the browser worker does it: the checkpoint, then the head. */
async function freshSync(ann: SignedAnnouncement): Promise<{ source: Recorder; root: Uint8Array; store: MemoryStore }> {
  const c = await createClientNode();
  clients.push(c);
  const checkpoint = ann.checkpoint!.root;
  const source = new Recorder(networkStateSource(c, 'writer', ws, { timeoutMs: 60_000 }));
  const updates = new TargetChannel();
  const store = new MemoryStore();
  const { root } = await syncState({
    store,
    sources: [source],
    target: checkpoint,
    canonicalRoot: checkpoint,
    targetUpdates: updates,
    // one request at a time: the order of the requests is then the plan's alone
    concurrency: 1,
    requestTimeoutMs: 60_000,
    sizeOf: responseSize,
    onProgress: (p) => {
      if (p.phase === 'at-target' && equalBytes(p.target, checkpoint) && !updates.closed) {
        updates.push(ann.stateRoot);
        updates.close();
      }
    },
  });
  return { source, root, store };
}

beforeAll(async () => {
  // checkpoints every 3 commits: at the bulk load and 3 commits on; 2 more commits and history 1
  // (two roots) leave that checkpoint outside the window, served because it is kept beyond it
  node = await startNodeProcess({
    script: FULL_NODE_SCRIPT,
    args: ['--generate', String(GENERATED), '--history', '1', '--checkpoint-every', '3', '--checkpoint-interval', '0'],
    readyTimeoutMs: 120_000,
  });
  ws = multiaddr(node.file.ws!);
  writerKey = peerIdFromString(node.file.peerId).publicKey!.raw;
  await post({ puts: [...dense('41', 4500), ...dense('9c', 2500)] });
  for (let i = 0; i < 4; i++) await post({ puts: [{ key: `${(0x20 + 0x30 * i).toString(16)}0a`, value: `0${i}` }] });
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await node?.stop();
});

describe('a checkpoint on a real node', () => {
  it('two fresh clients send byte-identical requests at the checkpoint, then both reach the head', async () => {
    const c = await createClientNode();
    clients.push(c);
    const ann = await fetchHeads(c, ws, { writerPublicKey: writerKey });
    expect(ann.checkpoint).toBeDefined();
    // named 3 commits after the bulk load's, 2 before the head: outside the window
    expect(ann.checkpoint!.seq).toBe(ann.seq - 2);
    expect(equalBytes(ann.checkpoint!.root, ann.stateRoot)).toBe(false);

    const a = await freshSync(ann);
    const b = await freshSync(ann);
    expect(b.source.ranges).toEqual(a.source.ranges);
    expect(a.source.ranges.length).toBeGreaterThan(CANONICAL_PARTS); // resume chains were followed
    // the plan's limits, whatever the client's own settings
    expect(new Set(a.source.limits.map(String))).toEqual(new Set([String([CANONICAL_KEY_LIMIT, CANONICAL_BYTES_LIMIT])]));
    for (const r of [a, b]) {
      expect(toHex(r.root)).toBe(toHex(ann.stateRoot));
      // the head came by change proofs from the checkpoint
      expect(r.source.changes.length).toBeGreaterThan(0);
      expect(r.source.changes.every((q) => equalBytes(q.startRootHash, ann.checkpoint!.root))).toBe(true);
      expect(toHex((await MerkleTrie.open(r.store)).root)).toBe(toHex(ann.stateRoot));
    }
  }, 180_000);
});
