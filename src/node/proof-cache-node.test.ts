/**
 * The proof cache in a real node process: two clients asking the canonical plan at one root get
 * byte-identical answers at the writer's checkpoint, the second's all from the cache (read from
 * /metrics); a node whose writer names no checkpoint keeps nothing.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { equalBytes } from '../core/bytes.ts';
import { verifyRangeProof } from '../core/proof.ts';
import type { RangeProofRequest } from '../core/types.ts';
import { decodeRangeProofResponse, encodeRangeProofRequest } from '../protocol/codec.ts';
import { fetchHeads } from '../protocol/client.ts';
import { RANGE_PROTOCOL } from '../protocol/ids.ts';
import { request } from '../protocol/stream.ts';
import { canonicalParts, canonicalRangeRequest, canonicalResume } from '../sync/state/plan.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from './testing/process.ts';

const dirs: string[] = [];
const running: NodeProcess[] = [];
const clients: ClientNode[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await Promise.allSettled(running.map((n) => n.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function start(args: string[]): Promise<{ node: NodeProcess; ws: Multiaddr }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'proofsync-proof-cache-'));
  dirs.push(dataDir);
  const node = await startNodeProcess({ script: FULL_NODE_SCRIPT, dataDir, args: ['--generate', '6000', '--listen', '/ip4/127.0.0.1/tcp/0/ws', ...args] });
  running.push(node);
  return { node, ws: multiaddr(node.file.ws!) };
}

async function client(): Promise<ClientNode> {
  const c = await createClientNode();
  clients.push(c);
  return c;
}

async function metric(node: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.file.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

/** The canonical plan at `root`, every part followed to its end: the answers' wire bytes in order. */
async function syncPlan(c: ClientNode, ws: Multiaddr, root: Uint8Array): Promise<Uint8Array[]> {
  const answers: Uint8Array[] = [];
  for (const part of canonicalParts()) {
    let req: RangeProofRequest | undefined = canonicalRangeRequest(root, part.start, part.end);
    while (req) {
      const bytes = await request(c, ws, RANGE_PROTOCOL, encodeRangeProofRequest(req), { maxResponseBytes: 2 << 20, timeoutMs: 20_000 });
      const res = decodeRangeProofResponse(bytes);
      if (res.type !== 'rangeProof') throw new Error(`${res.name}: ${res.message}`);
      verifyRangeProof(res.proof, { root, start: req.startKey, end: req.endKey, keyLimit: req.keyLimit });
      answers.push(bytes);
      req = canonicalResume(req, res.proof);
    }
  }
  return answers;
}

describe('proof cache in a node process', () => {
  it('answers the second client at the same root from the cache, byte for byte', { timeout: 120_000 }, async () => {
    // the generated state is the writer's first checkpoint: the root every fresh client syncs to
    const { node, ws } = await start([]);
    const a = await client();
    const heads = await fetchHeads(a, ws);
    const root = heads.checkpoint!.root;
    expect(equalBytes(root, heads.stateRoot)).toBe(true);
    const first = await syncPlan(a, ws, root);
    expect(first.length).toBeGreaterThanOrEqual(64);
    expect(await metric(node, 'proofsync_proof_cache_misses_total')).toBe(first.length);
    expect(await metric(node, 'proofsync_proof_cache_hits_total')).toBe(0);
    const held = await metric(node, 'proofsync_proof_cache_bytes');
    expect(held).toBeGreaterThan(first.reduce((s, b) => s + b.length, 0));

    const second = await syncPlan(await client(), ws, root);
    expect(second.length).toBe(first.length);
    for (let i = 0; i < first.length; i++) expect(equalBytes(second[i], first[i])).toBe(true);
    expect(await metric(node, 'proofsync_proof_cache_hits_total')).toBe(first.length);
    expect(await metric(node, 'proofsync_proof_cache_misses_total')).toBe(first.length);
    expect(await metric(node, 'proofsync_proof_cache_bytes')).toBe(held);

    // limits above the serving caps change nothing in the answer: the same entry answers
    const [part] = canonicalParts();
    const over = { ...canonicalRangeRequest(root, part.start, part.end), keyLimit: 1_000_000, bytesLimit: 100_000_000 };
    const answer = await request(a, ws, RANGE_PROTOCOL, encodeRangeProofRequest(over), { maxResponseBytes: 2 << 20, timeoutMs: 20_000 });
    expect(equalBytes(answer, first[0])).toBe(true);
    expect(await metric(node, 'proofsync_proof_cache_hits_total')).toBe(first.length + 1);
  });

  it('keeps nothing at a root no announcement names as a checkpoint', { timeout: 120_000 }, async () => {
    const { node, ws } = await start(['--checkpoint-every', '0', '--checkpoint-interval', '0']);
    const c = await client();
    const heads = await fetchHeads(c, ws);
    expect(heads.checkpoint).toBeUndefined();
    const root = heads.stateRoot;
    const [part] = canonicalParts();
    const req = encodeRangeProofRequest(canonicalRangeRequest(root, part.start, part.end));
    const once = await request(c, ws, RANGE_PROTOCOL, req, { maxResponseBytes: 2 << 20, timeoutMs: 20_000 });
    const twice = await request(c, ws, RANGE_PROTOCOL, req, { maxResponseBytes: 2 << 20, timeoutMs: 20_000 });
    expect(equalBytes(once, twice)).toBe(true);
    expect(await metric(node, 'proofsync_proof_cache_hits_total')).toBe(0);
    expect(await metric(node, 'proofsync_proof_cache_misses_total')).toBe(0);
    expect(await metric(node, 'proofsync_proof_cache_bytes')).toBe(0);
  });
});
