import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { RootNotFound, UnexpectedResponse } from '../../core/errors.ts';
import { LOG_PROTOCOL } from '../../protocol/ids.ts';
import { decodeLogRequest, encodeLogError, encodeLogResponse } from '../../protocol/messages.ts';
import type { FetchedLog, FetchLogRequest } from '../../protocol/client.ts';
import { runLogSync } from './driver.ts';
import { MemoryLogSource } from './memory-source.ts';
import { NetworkLogSource, requesterLogPeer, type LogPeer } from './network-source.ts';

const op = (i: number): Uint8Array => sha256(new TextEncoder().encode(`net op ${i}`));
const ops = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => op(i));
const hex = (xs: Uint8Array[]): string[] => xs.map(toHex);

/** A scripted peer over an honest log; `edit` may rewrite or refuse its n-th answer. */
function peer(id: string, log: MemoryLogSource, edit: (res: FetchedLog, n: number) => FetchedLog = (r) => r): LogPeer & { calls: number } {
  const p = {
    id,
    calls: 0,
    async fetch(req: FetchLogRequest): Promise<FetchedLog> {
      const res = log.serve({ leafCount: req.logSize, start: req.start, maxOps: req.end - req.start, withPinned: req.pinned ?? false });
      return edit({ operations: res.ops, proof: res.proof, pinned: res.pinned ?? [] }, p.calls++);
    },
  };
  return p;
}

const tamper = (r: FetchedLog): FetchedLog => {
  const operations = r.operations.slice();
  operations[0] = operations[0].slice();
  operations[0][0] ^= 1;
  return { ...r, operations };
};

describe('NetworkLogSource', () => {
  const cases: { name: string; peers: (log: MemoryLogSource) => LogPeer[]; penalised: string[]; banned: string[] }[] = [
    { name: 'two honest peers share the work', peers: (l) => [peer('a', l), peer('b', l)], penalised: [], banned: [] },
    { name: 'a peer that tampers every answer is banned; the other completes', peers: (l) => [peer('a', l), peer('liar', l, tamper)], penalised: ['liar'], banned: ['liar'] },
    {
      name: 'a peer whose log is shorter (RootNotFound) is backed off, never penalised',
      peers: (l) => [peer('a', l), peer('short', l, () => { throw new RootNotFound('no log of that size'); })],
      penalised: [],
      banned: [],
    },
    {
      name: 'a wrong operation count from the protocol client penalises',
      peers: (l) => [peer('a', l), peer('counts', l, () => { throw new UnexpectedResponse('asked for 1, got 0'); })],
      penalised: ['counts'],
      banned: ['counts'],
    },
    {
      name: 'tampered pinned nodes penalise',
      // first in the book, so it is asked for the boundary batch
      peers: (l) => [peer('pins', l, (r) => (r.pinned.length ? { ...r, pinned: r.pinned.map(() => new Uint8Array(32)) } : r)), peer('a', l)],
      penalised: ['pins'],
      banned: [],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const log = new MemoryLogSource(ops(300));
      const penalised: string[] = [];
      const banned: string[] = [];
      const peers = c.peers(log);
      const source = new NetworkLogSource(peers, {
        banAfter: 2,
        onPenalise: (id, ban) => {
          if (!penalised.includes(id)) penalised.push(id);
          if (ban) banned.push(id);
        },
      });
      const lower = c.name.includes('pinned') ? 77 : 0;
      const result = await runLogSync({ source, target: log.target(lower), fetchBatchSize: 16, maxOutstanding: 4, maxRetries: 8 });
      expect(hex(result.ops!)).toEqual(hex(ops(300).slice(lower)));
      expect(penalised).toEqual(c.penalised);
      expect(banned).toEqual(c.banned);
      if (c.name.startsWith('two honest')) {
        for (const s of source.stats()) expect(s.successes).toBeGreaterThan(0);
      }
    });
  }

  it('every peer banned: the fetch fails with NoPeers instead of hanging', async () => {
    const log = new MemoryLogSource(ops(40));
    const source = new NetworkLogSource([peer('liar', log, tamper)], { banAfter: 1 });
    await expect(runLogSync({ source, target: log.target(), fetchBatchSize: 8, maxOutstanding: 1 })).rejects.toMatchObject({ name: 'SyncStalled' });
  });

  it('a peer that does not serve the log protocol is asked once, then never again', async () => {
    const log = new MemoryLogSource(ops(120));
    const refusing = peer('gossip-only', log, () => {
      throw Object.assign(new Error('Protocol selection failed - could not negotiate /proofsync/1/log'), { name: 'UnsupportedProtocolError' });
    });
    const fast = peer('a', log);
    // an honest peer that takes 20 ms an answer: a refuser on a back-off would be back in time
    const honest: LogPeer = { id: 'a', fetch: async (req, o) => (await new Promise((r) => setTimeout(r, 20)), fast.fetch(req, o)) };
    const source = new NetworkLogSource([refusing, honest], { banAfter: 1 });
    const result = await runLogSync({ source, target: log.target(), fetchBatchSize: 8, maxOutstanding: 2, maxRetries: 2 });
    expect(hex(result.ops!)).toEqual(hex(ops(120)));
    expect(refusing.calls).toBe(1);
    expect(source.stats().find((s) => s.id === 'gossip-only')).toMatchObject({ banned: false, invalid: 0 });
  });

  it('requesterLogPeer: encodes the request, decodes the batch, maps error envelopes', async () => {
    const log = new MemoryLogSource(ops(20));
    const seen: string[] = [];
    const p = requesterLogPeer('r', async (protocol, body) => {
      seen.push(protocol);
      const q = decodeLogRequest(body);
      if (q.logSize > 20) return encodeLogError('RootNotFound', 'too big');
      const res = log.serve({ leafCount: q.logSize, start: q.start, maxOps: q.end - q.start, withPinned: q.pinned });
      return encodeLogResponse({ type: 'batch', operations: res.ops, proof: res.proof.digests, pinned: res.pinned ?? [] });
    });
    const got = await p.fetch({ start: 3, end: 9, logSize: 20, pinned: true }, { timeoutMs: 1000 });
    expect(hex(got.operations)).toEqual(hex(ops(20).slice(3, 9)));
    expect(got.pinned.length).toBe(2); // popcount(3)
    expect(seen).toEqual([LOG_PROTOCOL]);
    await expect(p.fetch({ start: 0, end: 1, logSize: 21 }, { timeoutMs: 1000 })).rejects.toBeInstanceOf(RootNotFound);
  });
});
