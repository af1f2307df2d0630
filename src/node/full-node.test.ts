/**
 * The full node as clients see it: a real node process with
 * a generated database and a few commits, reached over WebSockets and WebRTC-Direct; every
 * answer is verified with the core against what the writer signed. Hostile requests get typed
 * error frames; one peer's flood is limited while another peer is served.
 */
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAnnouncement, isAnnouncementTag, verifyAnnouncement, type SignedAnnouncement } from '../core/announcement.ts';
import { compareBytes, equalBytes, fromHex, toHex } from '../core/bytes.ts';
import { decodeDelta, verifyDelta } from '../core/delta.ts';
import { verifyPinnedNodes, verifyRangeProof as verifyMmrRange, popcount } from '../core/mmr.ts';
import { verifyChangeProof, verifyRangeProof } from '../core/proof.ts';
import { EMPTY_ROOT, type KeyValue } from '../core/types.ts';
import {
  decodeChangeProofResponse,
  decodeRangeProofResponse,
  encodeRangeProofRequest,
} from '../protocol/codec.ts';
import { fetchChangeProof, fetchDeltas, fetchHeads, fetchLog, fetchRangeProof, ProofsyncClient } from '../protocol/client.ts';
import { databaseTopic, CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL, RANGE_PROTOCOL } from '../protocol/ids.ts';
import { decodeDeltaResponse, decodeHeadsResponse, decodeLogResponse, encodeLogRequest } from '../protocol/messages.ts';
import { encodeVarint, readFrame, request } from '../protocol/stream.ts';
import { generateKeyValues } from './generate.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from './testing/process.ts';

const GENERATED = 2000;
const PEER_STREAMS = 2;
let node: NodeProcess;
let ws: Multiaddr;
let rtc: Multiaddr;
let writerKey: Uint8Array;
let base: KeyValue[];
let baseRoot: Uint8Array;
const clients: ClientNode[] = [];

async function client(): Promise<ClientNode> {
  const c = await createClientNode();
  clients.push(c);
  return c;
}

async function post(dir: string, body: unknown): Promise<{ root: string; deltaId: string; seq: number; logSize: number }> {
  const file = JSON.parse(await readFile(join(dir, 'addresses.json'), 'utf8')) as { http: string };
  const token = (await readFile(join(dir, 'token'), 'utf8')).trim();
  const res = await fetch(`${file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json() as Promise<{ root: string; deltaId: string; seq: number; logSize: number }>;
}

const key = (i: number): string => (0x10 + i).toString(16).padStart(2, '0') + 'ab';

beforeAll(async () => {
  node = await startNodeProcess({
    script: FULL_NODE_SCRIPT,
    args: ['--generate', String(GENERATED), '--peer-streams', String(PEER_STREAMS), '--peer-rate', '40:1', '--serve-timeout', '4000'],
  });
  ws = multiaddr(node.file.ws!);
  rtc = multiaddr(node.file.webrtcDirect!);
  writerKey = peerIdFromString(node.file.peerId).publicKey!.raw;
  base = generateKeyValues(GENERATED, 1);
  const c = await client();
  baseRoot = (await fetchHeads(c, ws, { writerPublicKey: writerKey })).stateRoot;
  // three commits: puts, an overwrite and a delete of a generated key
  await post(node.dataDir, { puts: [{ key: key(0), value: '01' }, { key: key(1), value: '02' }] });
  await post(node.dataDir, { puts: [{ key: key(0), value: '03' }] });
  await post(node.dataDir, { deletes: [toHex(base[5].key)] });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await node?.stop();
});

function stateAfterCommits(): KeyValue[] {
  const m = new Map(base.map((kv) => [toHex(kv.key), kv]));
  m.set(key(0), { key: fromHex(key(0)), value: Uint8Array.of(3) });
  m.set(key(1), { key: fromHex(key(1)), value: Uint8Array.of(2) });
  m.delete(toHex(base[5].key));
  return [...m.values()].sort((a, b) => compareBytes(a.key, b.key));
}

describe('a client over each transport gets answers that verify', () => {
  for (const [label, addr] of [
    ['WebSockets', () => ws],
    ['WebRTC-Direct', () => rtc],
  ] as const) {
    it(`heads, range, change, delta and log over ${label}`, async () => {
      const c = await client();
      const api = new ProofsyncClient(c, addr(), { timeoutMs: 15_000 });

      const ann: SignedAnnouncement = await api.heads();
      verifyAnnouncement(ann, writerKey);
      expect(new TextDecoder().decode(ann.db)).toBe(node.file.db);
      expect(ann.logSize).toBe(3);
      expect(ann.heads).toHaveLength(1);

      // range proofs at the announced root, walking the whole key space in pages
      const expected = stateAfterCommits();
      const got: KeyValue[] = [];
      let start: Uint8Array | undefined;
      for (;;) {
        const proof = await api.range({ rootHash: ann.stateRoot, startKey: start, endKey: undefined, keyLimit: 1024, bytesLimit: 1 << 20 });
        verifyRangeProof(proof, { root: ann.stateRoot, start, keyLimit: 1024 });
        got.push(...(start ? proof.keyValues.filter((kv) => compareBytes(kv.key, start!) >= 0) : proof.keyValues));
        if (proof.keyValues.length < 1024) break;
        const last = proof.keyValues[proof.keyValues.length - 1].key;
        start = Uint8Array.of(...last, 0);
      }
      expect(got.map((kv) => toHex(kv.key))).toEqual(expected.map((kv) => toHex(kv.key)));

      // a change proof from the generated state to the announced root
      const change = await api.change({ startRootHash: baseRoot, endRootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 1 << 20 });
      expect(change.type).toBe('changeProof');
      if (change.type !== 'changeProof') return;
      expect(change.proof.keyChanges).toHaveLength(3);
      await verifyChangeProof(change.proof, {
        root: ann.stateRoot,
        keyLimit: 2048,
        local: (s, e) => base.filter((kv) => (!s || compareBytes(kv.key, s) >= 0) && (!e || compareBytes(kv.key, e) <= 0)),
      });

      // the head delta by id, and its parents back to genesis
      const chain = [];
      let wanted = ann.heads[0];
      for (let i = 0; i < 3; i++) {
        const { deltas, missing } = await api.deltas([wanted]);
        expect(missing).toEqual([]);
        const d = verifyDelta(deltas[0], writerKey);
        expect(d.id).toEqual(wanted);
        chain.unshift(d);
        wanted = d.parents[0];
      }
      expect(wanted).toEqual(EMPTY_ROOT);
      expect(chain.map((d) => d.logIndex)).toEqual([0, 1, 2]);
      expect(chain[2].stateRoot).toEqual(ann.stateRoot);
      const unknown = new Uint8Array(32).fill(7);
      expect(await api.deltas([unknown, ann.heads[0]])).toMatchObject({ missing: [unknown], truncated: false });

      // the log: all of it, then a batch from 1 with the pinned nodes
      const all = await api.log({ start: 0, end: 3, logSize: ann.logSize });
      verifyMmrRange(ann.logRoot, ann.logSize, 0, all.operations, all.proof);
      const tail = await api.log({ start: 1, end: 3, logSize: ann.logSize, pinned: true });
      expect(tail.pinned).toHaveLength(popcount(1));
      verifyPinnedNodes(ann.logRoot, ann.logSize, 1, tail.operations, tail.proof, tail.pinned);
      // and against an older log size (the log is append-only)
      const old = await api.log({ start: 0, end: 2, logSize: 2 });
      expect(old.operations).toEqual(all.operations.slice(0, 2));
    });
  }

  it('fetch-style helpers agree with the bound client', async () => {
    const c = await client();
    const ann = await fetchHeads(c, ws);
    const proof = await fetchRangeProof(c, ws, { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 5, bytesLimit: 1 << 20 });
    expect(proof.keyValues).toHaveLength(5);
    // a start root outside the history: a range proof at the end root (docs/proofs.md#serving)
    const fallback = await fetchChangeProof(c, ws, { startRootHash: new Uint8Array(32).fill(9), endRootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 5, bytesLimit: 1 << 20 });
    expect(fallback.type).toBe('rangeProof');
    expect((await fetchDeltas(c, ws, ann.heads)).deltas).toHaveLength(1);
    expect((await fetchLog(c, ws, { start: 2, end: 3, logSize: 3 })).operations).toHaveLength(1);
  });
});

describe('bad requests get typed error responses', () => {
  const root = (): Promise<Uint8Array> => client().then((c) => fetchHeads(c, ws).then((a) => a.stateRoot));

  it('typed errors from the protocol client', async () => {
    const c = await client();
    const r = await root();
    const range = { rootHash: r, startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1 << 20 };
    await expect(fetchRangeProof(c, ws, { ...range, rootHash: new Uint8Array(32).fill(1) })).rejects.toMatchObject({ name: 'RootNotFound' });
    await expect(fetchRangeProof(c, ws, { ...range, keyLimit: 0 })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchRangeProof(c, ws, { ...range, rootHash: new Uint8Array(31) })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchRangeProof(c, ws, { ...range, startKey: Uint8Array.of(2), endKey: Uint8Array.of(1) })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchRangeProof(c, ws, { ...range, bytesLimit: 10 })).rejects.toMatchObject({ name: 'MinProofSizeTooLarge' });
    await expect(
      fetchChangeProof(c, ws, { startRootHash: r, endRootHash: new Uint8Array(32).fill(1), startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1 << 20 }),
    ).rejects.toMatchObject({ name: 'RootNotFound' });
    await expect(fetchLog(c, ws, { start: 0, end: 10, logSize: 3 })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchLog(c, ws, { start: 0, end: 1, logSize: 99 })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchLog(c, ws, { start: 2, end: 2, logSize: 3 })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await expect(fetchHeads(c, ws, { db: Uint8Array.of(1, 2, 3) })).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('malformed bytes on every protocol: decode errors by name, and the node keeps serving', async () => {
    const c = await client();
    const garbage = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    const call = (p: string, b: Uint8Array): Promise<Uint8Array> => request(c, ws, p, b, { maxResponseBytes: 1 << 16 });
    const range = decodeRangeProofResponse(await call(RANGE_PROTOCOL, garbage));
    expect(range).toMatchObject({ type: 'error', name: 'InvalidVarint' });
    expect(decodeChangeProofResponse(await call(CHANGE_PROTOCOL, Uint8Array.of(0x0b)))).toMatchObject({ type: 'error', name: 'InvalidWireType' });
    expect(decodeHeadsResponse(await call(HEADS_PROTOCOL, Uint8Array.of(0x0a, 0x05, 1)))).toMatchObject({ type: 'error', name: 'TruncatedInput' });
    // a delta id that is not 32 bytes
    expect(decodeDeltaResponse(await call(DELTA_PROTOCOL, Uint8Array.of(0x0a, 0x02, 1, 2)))).toMatchObject({ type: 'error', name: 'InvalidDigestLength' });
    expect(decodeDeltaResponse(await call(DELTA_PROTOCOL, new Uint8Array(0)))).toMatchObject({ type: 'error', name: 'InvalidRequest' });
    // the same field twice
    const twice = new Uint8Array([...encodeLogRequest({ start: 1, end: 2, logSize: 3, pinned: false }), 0x08, 0x01]);
    expect(decodeLogResponse(await call(LOG_PROTOCOL, twice))).toMatchObject({ type: 'error', name: 'DuplicateField' });
    expect((await fetchHeads(c, ws)).logSize).toBe(3);
  });

  it('oversized and truncated frames get error frames', async () => {
    const c = await client();
    // larger than the range protocol's request limit (16 KiB)
    const big = encodeRangeProofRequest({ rootHash: new Uint8Array(32), startKey: new Uint8Array(20_000), endKey: undefined, keyLimit: 1, bytesLimit: 1 });
    expect(decodeRangeProofResponse(await request(c, ws, RANGE_PROTOCOL, big, { maxResponseBytes: 4096 }))).toMatchObject({ type: 'error', name: 'MessageTooLarge' });
    expect(decodeHeadsResponse(await request(c, ws, HEADS_PROTOCOL, new Uint8Array(1000), { maxResponseBytes: 4096 }))).toMatchObject({ type: 'error', name: 'MessageTooLarge' });
    // a frame that promises 100 bytes, sends 3 and closes
    const stream = await c.dialProtocol(ws, RANGE_PROTOCOL);
    const response = readFrame(stream, { maxBytes: 4096, signal: AbortSignal.timeout(10_000) });
    stream.send(Uint8Array.of(...encodeVarint(100), 1, 2, 3));
    await stream.close();
    expect(decodeRangeProofResponse(await response)).toMatchObject({ type: 'error', name: 'TruncatedInput' });
  });
});

describe('per-peer limits', () => {
  it('a flood of streams from one peer is refused while another peer is served', async () => {
    const flooder = await client();
    const other = await client();
    // silent streams hold the flooder's admission slots until the server deadline
    const held = [];
    for (let i = 0; i < PEER_STREAMS; i++) held.push(await flooder.dialProtocol(ws, HEADS_PROTOCOL));
    const deadline = Date.now() + 3_000;
    let refused: unknown;
    while (Date.now() < deadline) {
      refused = await fetchHeads(flooder, ws).catch((err: unknown) => err);
      if ((refused as Error)?.name === 'TooManyStreams') break;
    }
    expect(refused).toMatchObject({ name: 'TooManyStreams' });
    const flood = await Promise.all(Array.from({ length: 8 }, () => fetchHeads(flooder, ws).catch((err: unknown) => err)));
    for (const r of flood) expect(r).toMatchObject({ name: 'TooManyStreams' });
    expect((await fetchHeads(other, ws)).logSize).toBe(3);
    for (const s of held) s.abort(new Error('done'));
  });

  it('a peer past its token bucket is RateLimited; another peer is not', async () => {
    const a = await client();
    const b = await client();
    const results = [];
    for (let i = 0; i < 50; i++) results.push(await fetchHeads(a, ws).then(() => 'ok', (err: Error) => err.name));
    expect(results.filter((r) => r === 'ok').length).toBeGreaterThanOrEqual(40);
    expect(results).toContain('RateLimited');
    expect((await fetchHeads(b, ws)).logSize).toBe(3);
  });
});

describe('the writer', () => {
  it('signs an announcement per commit; gossip-free clients see the new head', async () => {
    const c = await client();
    const before = await fetchHeads(c, ws, { writerPublicKey: writerKey });
    const r = await post(node.dataDir, { puts: [{ key: 'ffff', value: 'ee' }] });
    const after = await fetchHeads(c, ws, { writerPublicKey: writerKey });
    expect(after.seq).toBe(before.seq + 1);
    expect(toHex(after.stateRoot)).toBe(r.root);
    expect(toHex(after.heads[0])).toBe(r.deltaId);
    expect(after.logSize).toBe(r.logSize);
    const { deltas } = await fetchDeltas(c, ws, after.heads);
    expect(deltas[0].parents).toEqual(before.heads);
    expect(equalBytes(deltas[0].stateRoot, after.stateRoot)).toBe(true);
    // roll back for the other tests' expectations is not possible: later tests read logSize >= 4
  });

  it('the HTTP API refuses a wrong token and bad bodies', async () => {
    const file = JSON.parse(await readFile(join(node.dataDir, 'addresses.json'), 'utf8')) as { http: string };
    const token = (await readFile(join(node.dataDir, 'token'), 'utf8')).trim();
    const postRaw = (body: string, auth = token) => fetch(`${file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${auth}` }, body });
    expect((await postRaw('{}', 'wrong')).status).toBe(401);
    expect((await postRaw('not json')).status).toBe(400);
    expect(await (await postRaw('{"puts":[{"key":"zz","value":"00"}]}')).json()).toMatchObject({ error: 'InvalidBody' });
    expect(await (await postRaw('{"puts":[]}')).json()).toMatchObject({ error: 'InvalidRequest' });
    const status = await (await fetch(`${file.http}/v1/status`)).json();
    expect(status).toMatchObject({ peerId: node.file.peerId, writer: true });
    const metrics = await (await fetch(`${file.http}/metrics`)).text();
    expect(metrics).toMatch(/proofsync_commits_total [1-9]/);
    expect(metrics).toMatch(/proofsync_requests_total\{protocol="range",outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(/proofsync_errors_total\{protocol="range",name="RootNotFound"\} [1-9]/);
  });
});

describe('gossip', () => {
  it('each commit publishes its delta and announcement on the database topic', async () => {
    const sub = await createClientNode({ services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) } });
    try {
      const topic = databaseTopic(node.file.db!);
      const received: Uint8Array[] = [];
      let notify = (): void => {};
      sub.services.pubsub.addEventListener('message', (evt) => {
        if (evt.detail.topic !== topic) return;
        received.push(evt.detail.data);
        notify();
      });
      sub.services.pubsub.subscribe(topic);
      await sub.dial(ws);
      // our subscription reaches the node asynchronously: commit until a delta arrives
      const deadline = Date.now() + 20_000;
      let delta: ReturnType<typeof decodeDelta> | undefined;
      let deltaId = '';
      while (!delta) {
        if (Date.now() > deadline) throw new Error('no delta arrived over gossip');
        const arrived = new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 1_000);
        });
        deltaId = (await post(node.dataDir, { puts: [{ key: 'eeee', value: toHex(Uint8Array.of(received.length)) }] })).deltaId;
        await arrived;
        const found = received.filter((m) => m[0] === 0x01).map((m) => decodeDelta(m));
        delta = found.find((d) => toHex(d.id) === deltaId);
      }
      verifyDelta(delta, writerKey);
      const until = Date.now() + 5_000;
      let ann: SignedAnnouncement | undefined;
      while (!ann) {
        ann = received.filter((m) => isAnnouncementTag(m[0])).map((m) => decodeAnnouncement(m)).find((a) => toHex(a.heads[0]) === deltaId);
        if (!ann) {
          if (Date.now() > until) throw new Error('no announcement arrived over gossip');
          await new Promise<void>((resolve) => {
            notify = resolve;
            setTimeout(resolve, 500);
          });
        }
      }
      verifyAnnouncement(ann, writerKey);
      expect(ann.stateRoot).toEqual(delta.stateRoot);
    } finally {
      await sub.stop();
    }
  });
});
