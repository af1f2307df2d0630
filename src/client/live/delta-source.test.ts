/**
 * `/delta` as a gap-fill source over a scripted `Requester`: byte-budget truncation is asked
 * again, remote errors keep their names, hostile items are skipped (and so left unanswered).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../../core/bytes.ts';
import { encodeDelta, signDelta } from '../../core/delta.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { DELTA_PROTOCOL } from '../../protocol/ids.ts';
import { decodeDeltaRequest, encodeDeltaResponse } from '../../protocol/messages.ts';
import { peerDeltaSource } from './delta-source.ts';

const sk = sha256(new TextEncoder().encode('delta source writer'));
const deltas = Array.from({ length: 6 }, (_, i) =>
  signDelta({ parents: [EMPTY_ROOT], actions: [{ key: Uint8Array.of(i), value: Uint8Array.of(i) }], hlc: { wallMs: i, counter: 0 }, stateRoot: new Uint8Array(32).fill(i), logIndex: i }, sk),
);

/** A peer that answers at most `budget` deltas per request (then `truncated`), from `held`. */
function peer(held = deltas, budget = Infinity, extra?: (ids: Uint8Array[]) => Uint8Array[]) {
  const asked: number[] = [];
  return {
    asked,
    request: async (protocol: string, body: Uint8Array) => {
      expect(protocol).toBe(DELTA_PROTOCOL);
      const { ids } = decodeDeltaRequest(body);
      asked.push(ids.length);
      const out: Uint8Array[] = [];
      const missing: Uint8Array[] = [];
      let truncated = false;
      for (const id of ids) {
        if (out.length >= budget) {
          truncated = true;
          break;
        }
        const d = held.find((x) => equalBytes(x.id, id));
        if (d) out.push(encodeDelta(d));
        else missing.push(id);
      }
      return encodeDeltaResponse({ type: 'batch', deltas: [...out, ...(extra?.(ids) ?? [])], missing, truncated });
    },
  };
}

describe('peerDeltaSource', () => {
  it('asks again for the ids a truncated answer did not examine', async () => {
    const p = peer(deltas, 2);
    const got = await peerDeltaSource(p, 1000).fetch(deltas.map((d) => d.id), {});
    expect(got.map((d) => toHex(d.id))).toEqual(deltas.map((d) => toHex(d.id)));
    expect(p.asked).toEqual([6, 4, 2]);
  });

  it('missing ids are not asked again', async () => {
    const p = peer(deltas.slice(0, 2), 1);
    const got = await peerDeltaSource(p, 1000).fetch(deltas.slice(0, 3).map((d) => d.id), {});
    expect(got).toHaveLength(2);
  });

  it('skips undecodable items (the gap filler sees them unanswered)', async () => {
    const p = { request: async () => encodeDeltaResponse({ type: 'batch', deltas: [encodeDelta(deltas[0]), Uint8Array.of(1, 2, 3)], missing: [], truncated: false }) };
    const got = await peerDeltaSource(p, 1000).fetch(deltas.slice(0, 2).map((d) => d.id), {});
    expect(got.map((d) => toHex(d.id))).toEqual([toHex(deltas[0].id)]);
  });

  it('more items than ids asked is an UnexpectedResponse', async () => {
    const p = peer(deltas.slice(0, 1), Infinity, () => [Uint8Array.of(1, 2, 3)]);
    await expect(peerDeltaSource(p, 1000).fetch(deltas.slice(0, 2).map((d) => d.id), {})).rejects.toMatchObject({ name: 'UnexpectedResponse' });
  });

  it('a remote error keeps its name', async () => {
    const p = { request: async () => encodeDeltaResponse({ type: 'error', name: 'RateLimited', message: 'slow down' }) };
    await expect(peerDeltaSource(p, 1000).fetch([deltas[0].id], {})).rejects.toMatchObject({ name: 'RateLimited' });
  });
});
