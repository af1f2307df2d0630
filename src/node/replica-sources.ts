/**
 * Where a replica node gets what it does not have (issue 4 "In Node", issue 5 "Gap filling"):
 * state proofs from every connected peer that serves them, deltas by id from the peer that
 * gossiped a delta with missing parents, and the history log's operations it skipped (a sync
 * or a catch-up jumps over deltas). Nothing here is trusted: proofs are verified by the sync,
 * deltas by `fillGaps` (re-derived id, writer signature), log operations here (each is a delta
 * signed by the writer whose `logIndex` must be its position; the MMR root is then compared
 * with the signed announcement's `logRoot`).
 */
import type { PeerId } from '@libp2p/interface';
import { equalBytes, toHex } from '../core/bytes.ts';
import { decodeDelta, verifyDelta, type Delta } from '../core/delta.ts';
import { UnexpectedResponse } from '../core/errors.ts';
import type { VerifiedAnnouncement } from '../core/announcement.ts';
import type { DeltaSource } from '../client/gap-fill.ts';
import { fetchDeltas, fetchLog } from '../protocol/client.ts';
import { MAX_DELTA_IDS } from '../protocol/messages.ts';
import { RANGE_PROTOCOL } from '../protocol/ids.ts';
import type { HostNode } from './host.ts';
import { DELTA_PREFIX, LOG_PREFIX, underPrefix, type NodeStore } from './node-store.ts';
import type { OperationLog } from './operation-log.ts';

/** Connected peers that serve the proofsync protocols (identify told us), plus `known` ones. */
export async function servingPeers(libp2p: HostNode, known: ReadonlySet<string>): Promise<PeerId[]> {
  const out: PeerId[] = [];
  for (const peer of libp2p.getPeers()) {
    if (known.has(peer.toString())) {
      out.push(peer);
      continue;
    }
    try {
      const p = await libp2p.peerStore.get(peer);
      if (p.protocols.includes(RANGE_PROTOCOL)) out.push(peer);
    } catch {
      // not in the peer store yet: identify has not run
    }
  }
  return out;
}

/**
 * `/proofsync/1/delta` from one peer as gap filling's `DeltaSource`: at most MAX_DELTA_IDS ids
 * per request, asking again for what a truncated answer left out. Ids the peer lacks are left
 * out of the result (gap filling then reports `peer-lacks-deltas`).
 */
export function deltaSource(libp2p: HostNode, peer: PeerId, timeoutMs: number): DeltaSource {
  return {
    async fetch(ids, { signal }): Promise<Delta[]> {
      const out: Delta[] = [];
      let rest = ids;
      while (rest.length > 0) {
        const batch = rest.slice(0, MAX_DELTA_IDS);
        const r = await fetchDeltas(libp2p, peer, batch, { timeoutMs, signal });
        out.push(...r.deltas);
        if (!r.truncated) rest = rest.slice(batch.length);
        else {
          const answered = new Set([...r.deltas.map((d) => toHex(d.id)), ...r.missing.map(toHex)]);
          const left = batch.filter((id) => !answered.has(toHex(id)));
          if (left.length === batch.length) break; // no progress: leave the rest unanswered
          rest = left.concat(rest.slice(batch.length));
        }
      }
      return out;
    },
  };
}

/**
 * Appends the writer's log operations `[log.size, end)` fetched over `/proofsync/1/log` from
 * `peer` (proved against `ann`, whose `logSize` must be at least `end`). Each operation must be
 * a writer-signed delta at its own position; each is written with its delta index entry. When
 * the log reaches `ann.logSize`, its root must equal `ann.logRoot`.
 */
export async function fillLog(
  o: { libp2p: HostNode; peer: PeerId; store: NodeStore; log: OperationLog; writerPublicKey: Uint8Array; timeoutMs: number; signal?: AbortSignal },
  ann: VerifiedAnnouncement,
  end: number,
): Promise<void> {
  const { log } = o;
  if (end > ann.logSize) throw new RangeError(`log end ${end} is past the announced log size ${ann.logSize}`);
  while (log.size < end) {
    const batch = await fetchLog(o.libp2p, o.peer, { start: log.size, end, logSize: ann.logSize }, { timeoutMs: o.timeoutMs, signal: o.signal });
    for (const op of batch.operations) {
      const d = verifyDelta(decodeDelta(op), o.writerPublicKey);
      if (d.logIndex !== log.size) throw new UnexpectedResponse(`log operation ${log.size} is a delta with logIndex ${d.logIndex}`);
      const staged = log.stage(d.id, op);
      await o.store.state.write([...underPrefix(LOG_PREFIX, staged.logOps), ...underPrefix(DELTA_PREFIX, staged.deltaOps)]);
      log.applyStaged(staged, op);
    }
  }
  if (log.size === ann.logSize && !equalBytes(log.root(), ann.logRoot)) {
    throw new UnexpectedResponse(`the log's root ${toHex(log.root())} differs from the announced ${toHex(ann.logRoot)}`);
  }
}
