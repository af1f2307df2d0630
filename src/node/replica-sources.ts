/**
 * Where a replica node gets what it does not have (state sync, and gap filling while it follows):
 * state proofs from every connected peer that serves them, deltas by id from the peer that
 * gossiped a delta with missing parents, and the history log's operations it skipped (a sync
 * or a catch-up jumps over deltas). Nothing here is trusted: proofs are verified by the sync,
 * deltas by `fillGaps` (re-derived id, writer signature), log operations here (each batch's
 * MMR proof against the signed announcement's `logRoot`, and each operation a delta whose
 * `logIndex` is its position).
 */
import type { PeerId } from '@libp2p/interface';
import { equalBytes, toHex } from '../core/bytes.ts';
import { decodeDelta, type Delta } from '../core/delta.ts';
import { mmrSize, verifyRangeProof } from '../core/mmr.ts';
import { UnexpectedResponse } from '../core/errors.ts';
import type { VerifiedAnnouncement } from '../core/announcement.ts';
import type { DeltaSource } from '../sync/gap-fill.ts';
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
 * `peer`. Each batch must verify against `ann` (its `logRoot` over `logSize ≥ end`
 * operations, signed by the writer), and each operation be a delta at its own position; a
 * batch is written in one LevelDB batch with its delta index entries. The MMR proof is what
 * authenticates the operations (the writer signed the root over them), so the deltas' own
 * signatures are not checked again: measured, the portable Ed25519 verifier manages 250
 * deltas/s here, which would stretch a replica's fill of a 100,000-operation log to minutes. When the
 * log reaches `ann.logSize`, its root must equal `ann.logRoot`.
 */
export async function fillLog(
  o: { libp2p: HostNode; peer: PeerId; store: NodeStore; log: OperationLog; writerPublicKey: Uint8Array; timeoutMs: number; signal?: AbortSignal },
  ann: VerifiedAnnouncement,
  end: number,
): Promise<void> {
  const { log } = o;
  if (end > ann.logSize) throw new RangeError(`log end ${end} is past the announced log size ${ann.logSize}`);
  const fetchAt = (start: number) => fetchLog(o.libp2p, o.peer, { start, end, logSize: ann.logSize }, { timeoutMs: o.timeoutMs, signal: o.signal });
  let next = log.size < end ? fetchAt(log.size) : undefined;
  while (next) {
    const start = log.size;
    const batch = await next;
    // ask for the following batch while this one is checked and written (the peer answers
    // ahead; a failure below drops it)
    next = start + batch.operations.length < end ? fetchAt(start + batch.operations.length) : undefined;
    next?.catch(() => {});
    // the MMR nodes the batch adds, as the verification computes them (not hashed twice)
    const nodes = new Map<number, Uint8Array>();
    const [lo, hi] = [mmrSize(start), mmrSize(start + batch.operations.length)];
    try {
      verifyRangeProof(ann.logRoot, ann.logSize, start, batch.operations, batch.proof, (pos, d) => {
        if (pos >= lo && pos < hi) nodes.set(pos, d);
      });
    } catch (err) {
      throw new UnexpectedResponse(`log operations [${start}, ${start + batch.operations.length}) do not verify against the announced log root: ${(err as Error).message}`, {}, { cause: err });
    }
    const entries = batch.operations.map((element, i) => {
      const d = decodeDelta(element);
      if (d.logIndex !== start + i) throw new UnexpectedResponse(`log operation ${start + i} is a delta with logIndex ${d.logIndex}`);
      return { id: d.id, element };
    });
    const staged = log.stageMany(entries, (pos) => nodes.get(pos));
    await o.store.state.write([...underPrefix(LOG_PREFIX, staged.logOps), ...underPrefix(DELTA_PREFIX, staged.deltaOps)]);
    log.applyStagedMany(staged);
  }
  if (log.size === ann.logSize && !equalBytes(log.root(), ann.logRoot)) {
    throw new UnexpectedResponse(`the log's root ${toHex(log.root())} differs from the announced ${toHex(ann.logRoot)}`);
  }
}
