/**
 * `/proofsync/1/*` streams from a hostile libp2p peer (real WebSockets, Noise, Yamux) against
 * a real node process: garbage, truncated varints, lengths over every limit, absurd field
 * values, silent streams, 500 concurrent streams, resets mid-answer, and a Yamux data frame
 * declaring 500 MiB. After each class: the node is alive, an honest client gets the same
 * verified range proof as before, and the node's RSS grew by at most 200 MB.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeChangeProofResponse, decodeRangeProofResponse, encodeChangeProofRequest, encodeRangeProofRequest } from '../../src/protocol/codec.ts';
import { CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL, RANGE_PROTOCOL } from '../../src/protocol/ids.ts';
import {
  decodeDeltaResponse,
  decodeHeadsResponse,
  decodeLogResponse,
  encodeDeltaRequest,
  encodeHeadsRequest,
  encodeLogRequest,
  MAX_DELTA_REQUEST_BYTES,
  MAX_HEADS_REQUEST_BYTES,
  MAX_LOG_REQUEST_BYTES,
} from '../../src/protocol/messages.ts';
import { MAX_PROOF_REQUEST_BYTES } from '../../src/node/protocols.ts';
import { encodeVarint } from '../../src/protocol/stream.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../../src/node/testing/process.ts';
import { alive, counter, createAttacker, honestRangeProof, outcome, rssMB, type Attacker, type StreamOutcome } from './attacker-libp2p.ts';

const SERVE_TIMEOUT_MS = 3_000;
const RSS_BOUND_MB = 200;
let node: NodeProcess;
let addr: Multiaddr;
let proofBefore: string;
let rssBefore: number;
const attackers: Attacker[] = [];

async function attacker(): Promise<Attacker> {
  const a = await createAttacker();
  attackers.push(a);
  return a;
}

beforeAll(async () => {
  // every attacker and honest check here dials from 127.0.0.1, past the default 64 sockets per
  // address; that limit has its own test in websocket.test.ts
  node = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--generate', '5000', '--serve-timeout', String(SERVE_TIMEOUT_MS), '--max-connections-per-ip', '1000'], readyTimeoutMs: 60_000 });
  addr = multiaddr(node.file.ws!);
  proofBefore = await honestRangeProof(addr, node.file.peerId);
  rssBefore = rssMB(node.child.pid!);
});
afterAll(async () => {
  await Promise.allSettled(attackers.map((a) => a.stop()));
  await node?.stop();
});

/** The three checks after each attack class. */
async function nodeStillServes(): Promise<void> {
  expect(alive(node.child.pid!), node.output().slice(-2000)).toBe(true);
  // no rejection left for peer-gone.ts's safety net, and no log line per hostile request
  expect(node.output()).not.toMatch(/ignored \d+ stream error|unhandled rejection|error serving/);
  expect(await honestRangeProof(addr, node.file.peerId)).toBe(proofBefore);
  expect(rssMB(node.child.pid!) - rssBefore).toBeLessThanOrEqual(RSS_BOUND_MB);
}

/** Decoders of each protocol's response envelope, to read the error frame's name. */
const decoders: Record<string, (b: Uint8Array) => { type: string; name?: string }> = {
  [RANGE_PROTOCOL]: (b) => decodeRangeProofResponse(b),
  [CHANGE_PROTOCOL]: (b) => decodeChangeProofResponse(b),
  [HEADS_PROTOCOL]: (b) => decodeHeadsResponse(b),
  [DELTA_PROTOCOL]: (b) => decodeDeltaResponse(b),
  [LOG_PROTOCOL]: (b) => decodeLogResponse(b),
};
const maxRequest: Record<string, number> = {
  [RANGE_PROTOCOL]: MAX_PROOF_REQUEST_BYTES,
  [CHANGE_PROTOCOL]: MAX_PROOF_REQUEST_BYTES,
  [HEADS_PROTOCOL]: MAX_HEADS_REQUEST_BYTES,
  [DELTA_PROTOCOL]: MAX_DELTA_REQUEST_BYTES,
  [LOG_PROTOCOL]: MAX_LOG_REQUEST_BYTES,
};

/** The error name in a received frame, 'reset' when the node cut the stream without one. */
function answer(protocol: string, o: StreamOutcome): string {
  if (o.bytes === 0) return o.end === 'open' ? 'no answer' : 'reset';
  let length = 0;
  let i = 0;
  for (let scale = 1; i < o.data.length; i++, scale *= 128) {
    length += (o.data[i] & 0x7f) * scale;
    if ((o.data[i] & 0x80) === 0) break;
  }
  const body = o.data.subarray(i + 1, i + 1 + length);
  if (body.length < length) return 'reset';
  const res = decoders[protocol](body);
  return res.type === 'error' ? res.name! : 'ok';
}

/** Sends `wire` on a new stream, half-closes unless told not to, and reads the node's answer. */
async function send(a: Attacker, protocol: string, wire: Uint8Array, close = true): Promise<string> {
  const stream = await a.open(addr, protocol);
  const result = outcome(stream, SERVE_TIMEOUT_MS + 5_000);
  if (wire.length) stream.send(wire);
  if (close) await stream.close().catch(() => {});
  return answer(protocol, await result);
}

const frame = (body: Uint8Array): Uint8Array => new Uint8Array([...encodeVarint(body.length), ...body]);
/** Seeded bytes (xorshift): the same garbage on every run. */
function garbage(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
const root = (n = 32): Uint8Array => new Uint8Array(n).fill(7);
const ALL = [RANGE_PROTOCOL, CHANGE_PROTOCOL, HEADS_PROTOCOL, DELTA_PROTOCOL, LOG_PROTOCOL];
const DECODE_ERRORS = ['InvalidFieldNumber', 'InvalidDigestLength', 'InvalidWireType', 'TruncatedInput', 'InvalidVarint', 'MessageTooLarge', 'TrailingBytes', 'MissingField', 'InvalidKeyLength', 'TooManyItems', 'InvalidRequest', 'reset'];

type Case = { name: string; protocols: string[]; wire: (protocol: string) => Uint8Array; close?: boolean; expect: string[] };
const cases: Case[] = [
  // garbage
  { name: 'garbage frame body', protocols: ALL, wire: () => frame(garbage(200, 1)), expect: DECODE_ERRORS },
  { name: 'garbage without a frame', protocols: ALL, wire: () => garbage(4096, 2), expect: [...DECODE_ERRORS] },
  // truncated varints
  { name: 'a truncated varint, then end', protocols: ALL, wire: () => Uint8Array.of(0x80), expect: ['TruncatedInput', 'MessageTooLarge'] },
  { name: 'a prefix and half a body, then end', protocols: ALL, wire: () => Uint8Array.of(10, 1, 2, 3), expect: ['TruncatedInput'] },
  // a 64-byte limit (log) proves the frame too large before it sees the non-minimal byte
  { name: 'a non-minimal varint', protocols: ALL, wire: () => Uint8Array.of(0x81, 0x00), expect: ['InvalidVarint', 'MessageTooLarge'] },
  { name: 'nine continuation bytes', protocols: ALL, wire: () => new Uint8Array(9).fill(0xff), expect: ['MessageTooLarge', 'InvalidVarint'] },
  // lengths over every limit
  { name: 'a length one over the request limit', protocols: ALL, wire: (p) => frame(new Uint8Array(maxRequest[p] + 1)), expect: ['MessageTooLarge'] },
  { name: 'a length of 2^31', protocols: ALL, wire: () => encodeVarint(2 ** 31), close: false, expect: ['MessageTooLarge'] },
  { name: 'a length of 2^53 - 1', protocols: ALL, wire: () => encodeVarint(Number.MAX_SAFE_INTEGER), close: false, expect: ['MessageTooLarge'] },
  // absurd field values
  { name: 'a 1 MB key', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(), startKey: new Uint8Array(1 << 20), endKey: undefined, keyLimit: 10, bytesLimit: 1 << 20 })), expect: ['MessageTooLarge'] },
  { name: 'key limit 2^31 on an unknown root', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(), startKey: undefined, endKey: undefined, keyLimit: 2 ** 31, bytesLimit: 2 ** 32 - 1 })), expect: ['RootNotFound', 'InsufficientHistory'] },
  { name: 'key limit 0', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(), startKey: undefined, endKey: undefined, keyLimit: 0, bytesLimit: 1000 })), expect: ['InvalidRequest'] },
  { name: 'a 31-byte root', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(31), startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1000 })), expect: ['InvalidRequest'] },
  { name: 'a 33-byte root', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(33), startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1000 })), expect: ['InvalidRequest'] },
  { name: 'an empty root', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: new Uint8Array(0), startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1000 })), expect: ['InvalidRequest', 'MissingField'] },
  { name: 'start after end', protocols: [RANGE_PROTOCOL], wire: () => frame(encodeRangeProofRequest({ rootHash: root(), startKey: Uint8Array.of(9), endKey: Uint8Array.of(1), keyLimit: 10, bytesLimit: 1000 })), expect: ['InvalidRequest'] },
  {
    name: 'change: roots of 0 and 64 bytes, key limit 2^31',
    protocols: [CHANGE_PROTOCOL],
    wire: () => frame(encodeChangeProofRequest({ startRootHash: new Uint8Array(0), endRootHash: root(64), startKey: undefined, endKey: undefined, keyLimit: 2 ** 31, bytesLimit: 2 ** 32 - 1 })),
    expect: ['InvalidRequest', 'MissingField'],
  },
  { name: 'heads: a database id over the limit', protocols: [HEADS_PROTOCOL], wire: () => frame(encodeHeadsRequest({ db: new Uint8Array(1 << 20) })), expect: ['MessageTooLarge'] },
  { name: 'heads: an unknown database', protocols: [HEADS_PROTOCOL], wire: () => frame(encodeHeadsRequest({ db: root() })), expect: ['NotFound'] },
  { name: 'delta: no ids', protocols: [DELTA_PROTOCOL], wire: () => frame(encodeDeltaRequest({ ids: [] })), expect: ['InvalidRequest'] },
  { name: 'delta: ids of the wrong length', protocols: [DELTA_PROTOCOL], wire: () => frame(encodeDeltaRequest({ ids: [root(31), root(1000)] })), expect: [...DECODE_ERRORS] },
  { name: 'delta: 10,000 ids', protocols: [DELTA_PROTOCOL], wire: () => frame(encodeDeltaRequest({ ids: Array.from({ length: 10_000 }, () => root()) })), expect: ['MessageTooLarge', 'TooManyItems'] },
  { name: 'log: start after end', protocols: [LOG_PROTOCOL], wire: () => frame(encodeLogRequest({ start: 10, end: 1, logSize: 5, pinned: false })), expect: ['InvalidRequest', 'NotFound', 'InvalidRange'] },
  { name: 'log: 2^53 - 1 everywhere', protocols: [LOG_PROTOCOL], wire: () => frame(encodeLogRequest({ start: 0, end: Number.MAX_SAFE_INTEGER, logSize: Number.MAX_SAFE_INTEGER, pinned: true })), expect: ['InvalidRequest', 'NotFound', 'InvalidRange'] },
];

describe('hostile streams against a node process', () => {
  for (const c of cases) {
    for (const protocol of c.protocols) {
      it(`${c.name} on ${protocol}`, async () => {
        const a = await attacker();
        const got = await send(a, protocol, c.wire(protocol), c.close ?? true);
        expect(c.expect, `answer ${got}`).toContain(got);
      });
    }
  }
  it('after garbage, varints, lengths and absurd fields: alive, same proof, bounded RSS', nodeStillServes);

  it('a request followed by 1 MiB more than the stream may buffer is reset and counted', async () => {
    const a = await attacker();
    const before = await counter(node.file.http!, 'proofsync_streams_refused_total', { reason: 'BufferFull' });
    const answers = await Promise.all(
      [HEADS_PROTOCOL, LOG_PROTOCOL].map((p) => send(a, p, new Uint8Array([...frame(encodeHeadsRequest({})), ...garbage(1 << 20, 3)]), false)),
    );
    expect(answers).toEqual(['reset', 'reset']);
    expect(await counter(node.file.http!, 'proofsync_streams_refused_total', { reason: 'BufferFull' })).toBeGreaterThan(before);
    await nodeStillServes();
  });

  it('streams held open silently are cut at the serve deadline', async () => {
    const a = await attacker();
    // nothing sent: each must be cut by the node (at the deadline, or at once by a per-peer
    // limit with an error frame), not left open
    const outcomes = await Promise.all(
      ALL.flatMap((p) => Array.from({ length: 4 }, async () => `${p} ${(await outcome(await a.open(addr, p), SERVE_TIMEOUT_MS + 10_000)).end}`)),
    );
    expect(outcomes.filter((e) => e.endsWith(' open'))).toEqual([]);
    expect(await counter(node.file.http!, 'proofsync_streams_refused_total', { reason: 'RequestTimeout' })).toBeGreaterThanOrEqual(1);
    await nodeStillServes();
  });

  it('500 concurrent streams on one connection: refused past the limits, counted, the node serves', async () => {
    const a = await attacker();
    const req = frame(encodeRangeProofRequest({ rootHash: root(), startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1000 }));
    const opened = await Promise.allSettled(
      Array.from({ length: 500 }, async () => {
        const s = await a.open(addr, RANGE_PROTOCOL);
        const o = outcome(s, SERVE_TIMEOUT_MS + 10_000);
        s.send(req);
        await s.close().catch(() => {});
        return answer(RANGE_PROTOCOL, await o);
      }),
    );
    const answers = opened.map((r) => (r.status === 'fulfilled' ? r.value : 'refused at open'));
    expect(answers.filter((x) => x === 'no answer')).toEqual([]);
    // some got their typed answer, the rest were refused by a limit
    expect(answers.filter((x) => x === 'RootNotFound' || x === 'InsufficientHistory').length).toBeGreaterThan(0);
    expect(answers.filter((x) => x !== 'RootNotFound' && x !== 'InsufficientHistory').length).toBeGreaterThan(0);
    const refused =
      (await counter(node.file.http!, 'proofsync_streams_refused_total', { reason: 'TooManyStreams' })) +
      (await counter(node.file.http!, 'proofsync_streams_refused_total', { reason: 'RateLimited' })) +
      (await counter(node.file.http!, 'proofsync_muxer_refused_total', { reason: 'too_many_streams' }));
    expect(refused).toBeGreaterThan(0);
    await nodeStillServes();
  });

  it('resets mid-answer and right after the request', async () => {
    const a = await attacker();
    const big = frame(encodeRangeProofRequest({ rootHash: new Uint8Array(0), startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 2 << 20 }));
    // the honest root, so the answers are large proofs
    const honest = await honestRoot();
    const wire = frame(encodeRangeProofRequest({ rootHash: honest, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: (2 << 20) - 4096 }));
    expect(big.length).toBeGreaterThan(0);
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const s = await a.open(addr, RANGE_PROTOCOL);
          s.send(wire);
          if (i % 2 === 0) {
            s.abort(new Error('reset right after the request'));
            return;
          }
          await new Promise<void>((resolve) => {
            s.addEventListener('message', () => resolve(), { once: true });
            s.addEventListener('close', () => resolve(), { once: true });
          });
          s.abort(new Error('reset mid-answer'));
        }),
      );
    }
    await nodeStillServes();
  });

  it('a Yamux data frame declaring 500 MiB ends the connection at its header', async () => {
    const a = await attacker();
    const before = await counter(node.file.http!, 'proofsync_muxer_refused_total', { reason: 'frame_too_large' });
    const sent = await a.hugeFrame(addr, 500 * 1024 * 1024, 200 * 1024 * 1024);
    // the connection closed long before the 200 MiB the attacker meant to send
    expect(sent).toBeLessThan(200 * 1024 * 1024);
    expect(await counter(node.file.http!, 'proofsync_muxer_refused_total', { reason: 'frame_too_large' })).toBe(before + 1);
    await nodeStillServes();
  });
});

/** The writer's current root, from its status. */
async function honestRoot(): Promise<Uint8Array> {
  const { root: hex } = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
