/**
 * Fetching the writer's operation log over a libp2p node (a replica or a tool in Node): a libp2p
 * node and some peers in, verified operations out. Targets come from the peers' `/heads`
 * answers, verified against the writer's key (the highest `seq` wins), asked again every
 * `headsPollMs` so an open fetch follows the writer; batches come from a `NetworkLogSource`
 * over the same peers.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { equalBytes } from '../../core/bytes.ts';
import { fetchHeads, type Peer } from '../../protocol/client.ts';
import type { Dialer } from '../../protocol/stream.ts';
import { delay } from '../abort.ts';
import { dialerLogPeer, NetworkLogSource } from './network-source.ts';
import { decodeOperation, fetchOperationBatches, type FetchOperationsOptions, type LogOperation, type LogTarget, type RawOperation } from './fetch.ts';

/**
 * Options of `fetchLogOperations` in Node: the libp2p node to dial from, the peers to ask, the
 * writer key to trust, and the fetch's range, storage and limits.
 *
 * @example
 * const options: NodeLogFetchOptions = {
 *   libp2p: await createClientNode(),
 *   peers: [multiaddr('/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooW...')],
 *   writer: '12D3KooW...',
 *   from: 0,
 *   to: 5_000,
 * };
 * for await (const op of fetchLogOperations(options)) console.log(op.index);
 */
export interface NodeLogFetchOptions extends Omit<FetchOperationsOptions, 'source' | 'targets'> {
  /** The libp2p node that dials the peers (`createClientNode` makes one). */
  libp2p: Dialer;
  /** The peers to ask: peer ids or multiaddrs (with `/p2p/<peer id>`). */
  peers: Peer[];
  /** The writer's peer id (Ed25519) or raw 32-byte public key: the only key trusted. */
  writer: string | Uint8Array;
  /** The database id the announcements must name (default: any the writer signs). */
  db?: string;
  /** Ask every peer for its newest announcement this often (default 1,000 ms). */
  headsPollMs?: number;
  /** Deadline per request (default 30,000 ms). */
  timeoutMs?: number;
  /** Invalid answers before a peer is banned (default 3). */
  banAfter?: number;
  /** Called when a peer's answer was invalid; `banned` once it reached `banAfter`. */
  onPenalise?: (peer: string, banned: boolean, reason: unknown) => void;
  /** A source to use instead of one over `peers` (to share it, or read its `stats()`). */
  source?: NetworkLogSource;
}

/** The newest signed log targets the peers know, until `signal` aborts. */
async function* polledTargets(o: NodeLogFetchOptions, writerKey: Uint8Array, signal: AbortSignal): AsyncGenerator<LogTarget> {
  const db = o.db === undefined ? undefined : new TextEncoder().encode(o.db);
  let seq = -1;
  while (!signal.aborted) {
    const answers = await Promise.allSettled(o.peers.map((p) => fetchHeads(o.libp2p, p, { writerPublicKey: writerKey, db, timeoutMs: o.timeoutMs ?? 10_000, signal })));
    for (const a of answers) {
      if (a.status !== 'fulfilled' || (db && !equalBytes(a.value.db, db)) || a.value.seq <= seq) continue;
      seq = a.value.seq;
      if (a.value.logSize > 0) yield { root: a.value.logRoot, size: a.value.logSize, seq };
    }
    // an abort ends the wait and, at the loop's test, the targets
    await delay(o.headsPollMs ?? 1_000, signal).catch(() => undefined);
  }
}

/**
 * Verified raw operations (`{index, bytes}`) in batches, as they arrive; see
 * {@link fetchLogOperations}. For a replica or tool that stores or forwards the wire bytes.
 *
 * @example
 * for await (const batch of fetchLogOperationBatches({ libp2p, peers, writer, from: 0, to: 5_000 })) {
 *   await archive.write(batch.map((op) => ({ type: 'put', key: indexKey(op.index), value: op.bytes })));
 * }
 */
export async function* fetchLogOperationBatches(o: NodeLogFetchOptions): AsyncGenerator<RawOperation[]> {
  const writerKey = typeof o.writer === 'string' ? peerIdFromString(o.writer).publicKey!.raw : o.writer;
  if (!(writerKey instanceof Uint8Array) || writerKey.length !== 32) throw new TypeError('expected the writer as an Ed25519 peer id or 32-byte public key');
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  const source = o.source ?? new NetworkLogSource(
    o.peers.map((p) => dialerLogPeer(o.libp2p, p, String(p))),
    { timeoutMs: o.timeoutMs, banAfter: o.banAfter, onPenalise: o.onPenalise },
  );
  try {
    yield* fetchOperationBatches({ ...o, source, targets: polledTargets(o, writerKey, signal), signal });
  } finally {
    stop.abort(new DOMException('the fetch ended', 'AbortError'));
  }
}

/**
 * Operations `[from, to)` of the writer's log, verified against its signed log roots, decoded,
 * in order, fetched from `peers` (spread, retried, liars penalised). With `to` open the fetch
 * follows newer announcements until it reaches the newest (or, with `follow`, until aborted).
 * With `store` + `persist` every batch is stored with its progress, and a later call resumes.
 *
 * @example
 * for await (const op of fetchLogOperations({ libp2p, peers: [writerAddr, replicaAddr], writer: writerPeerId, from: 0, to: 5000 })) {
 *   console.log(op.index, toHex(op.id), op.actions.length);
 * }
 */
export async function* fetchLogOperations(o: NodeLogFetchOptions): AsyncGenerator<LogOperation> {
  for await (const batch of fetchLogOperationBatches(o)) for (const op of batch) yield decodeOperation(op);
}
