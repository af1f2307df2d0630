/**
 * `/proofsync/1/delta` from the worker: gap filling's `DeltaSource` (sync/gap-fill.ts) over a peer's
 * `Requester` (worker/peer-calls.ts), so it works whether the connection lives in the worker or
 * on the main thread. Decoding is strict; ids and signatures are checked by the gap filler.
 */
import { toHex } from '../../core/bytes.ts';
import { decodeDelta, type Delta } from '../../core/delta.ts';
import { remoteError } from '../../protocol/client.ts';
import { DELTA_PROTOCOL } from '../../protocol/ids.ts';
import { decodeDeltaResponse, encodeDeltaRequest, MAX_BATCH_RESPONSE_BYTES, MAX_DELTA_IDS } from '../../protocol/messages.ts';
import { UnexpectedResponse } from '../../core/errors.ts';
import type { DeltaSource } from '../../sync/gap-fill.ts';
import type { RemotePeer } from '../worker/peer-calls.ts';

/** One `/delta` exchange: the deltas the peer holds (decoded, unverified) and how it answered. */
export async function requestDeltas(
  peer: Pick<RemotePeer, 'request'>,
  ids: Uint8Array[],
  o: { timeoutMs: number; signal?: AbortSignal },
): Promise<{ deltas: Delta[]; missing: Uint8Array[]; truncated: boolean }> {
  if (ids.length === 0 || ids.length > MAX_DELTA_IDS) throw new RangeError(`expected 1..${MAX_DELTA_IDS} ids, got ${ids.length}`);
  const bytes = await peer.request(DELTA_PROTOCOL, encodeDeltaRequest({ ids }), { maxResponseBytes: MAX_BATCH_RESPONSE_BYTES, ...o });
  const res = decodeDeltaResponse(bytes);
  if (res.type === 'error') throw remoteError(res);
  if (res.deltas.length + res.missing.length > ids.length) {
    throw new UnexpectedResponse(`asked for ${ids.length} deltas, got ${res.deltas.length} and ${res.missing.length} missing`);
  }
  const deltas: Delta[] = [];
  // an undecodable item leaves its id unanswered: the gap filler then stops with peer-lacks-deltas
  for (const d of res.deltas) {
    try {
      deltas.push(decodeDelta(d));
    } catch {
      // hostile bytes
    }
  }
  return { deltas, missing: res.missing, truncated: res.truncated };
}

/**
 * The peer as a `DeltaSource`. A batch the peer's byte budget truncated is asked again for the
 * ids it did not examine, while each answer brings something new.
 *
 * @example
 * const r = await fillGaps(dag.missingParents(), { source: peerDeltaSource(peer, 10_000), writerPublicKey, knows });
 */
export function peerDeltaSource(peer: Pick<RemotePeer, 'request'>, timeoutMs: number): DeltaSource {
  return {
    async fetch(ids, { signal }) {
      const out: Delta[] = [];
      for (let i = 0; i < ids.length; i += MAX_DELTA_IDS) {
        let want = ids.slice(i, i + MAX_DELTA_IDS);
        for (;;) {
          const r = await requestDeltas(peer, want, { timeoutMs, signal });
          out.push(...r.deltas);
          if (!r.truncated || r.deltas.length === 0) break;
          // ids answered neither way were not examined: ask for them again
          const seen = new Set([...r.deltas.map((d) => toHex(d.id)), ...r.missing.map(toHex)]);
          want = want.filter((id) => !seen.has(toHex(id)));
          if (want.length === 0) break;
        }
      }
      return out;
    },
  };
}
