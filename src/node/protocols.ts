/**
 * The node's protocol handlers (docs/design.md "Wire protocols"): range and
 * change proofs with the validation, clamps and halving rule of docs/proofs.md#serving (serve.ts), deltas
 * by id, the newest signed announcement, and log batches with MMR proofs (docs/mmr.md).
 *
 * Every request goes through `handle` (stream.ts): a bounded request frame, a deadline, one
 * per-peer admission state shared by all five protocols (concurrent streams and a token
 * bucket), and a typed error frame in the protocol's own envelope for every failure.
 * Reads take the database's shared lock so no proof mixes two commits.
 */
import { equalBytes } from '../core/bytes.ts';
import { InvalidRequest } from '../core/errors.ts';
import {
  decodeChangeProofRequest,
  decodeRangeProofRequest,
  encodeChangeProofResponse,
  encodeRangeProofRequest,
  encodeRangeProofResponse,
} from '../protocol/codec.ts';
import { CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL, RANGE_PROTOCOL } from '../protocol/ids.ts';
import {
  decodeDeltaRequest,
  decodeHeadsRequest,
  decodeLogRequest,
  encodeDeltaError,
  encodeDeltaResponse,
  encodeHeadsError,
  encodeHeadsResponse,
  encodeLogError,
  encodeLogResponse,
  MAX_DELTA_REQUEST_BYTES,
  MAX_HEADS_REQUEST_BYTES,
  MAX_LOG_OPS,
  MAX_LOG_REQUEST_BYTES,
  NotFound,
  RESPONSE_BYTE_BUDGET,
} from '../protocol/messages.ts';
import { PeerLimits, type RateLimit } from '../protocol/peer-limits.ts';
import { MAX_BYTE_LIMIT, MAX_KEY_LIMIT, serveChangeProof, serveRangeProof } from '../protocol/serve.ts';
import { ProofQueue } from './proof-queue.ts';
import { handle, type RefusalReason, type Registrar, type RequestHandler } from '../protocol/stream.ts';
import type { MerkleDatabase } from '../core/database.ts';
import type { NodeMetrics } from './metrics.ts';
import type { ProofCache } from './proof-cache.ts';
import { requestKey } from '../sync/state/plan.ts';
import type { OperationLog } from './operation-log.ts';
import type { RwLock } from '../core/rwlock.ts';

/** Largest proof request: two roots, two keys of up to 4 KiB, limits. */
export const MAX_PROOF_REQUEST_BYTES = 16 * 1024;

/**
 * Limits of the node's protocol handlers: streams and rate per peer, the per-stream deadline,
 * and proofs served at once. Every field has a default; `FullNodeOptions.limits` takes it.
 *
 * @example
 * const node = await startFullNode({ dataDir, limits: { maxConcurrentPerPeer: 4, ratePerPeer: { burst: 50, perSecond: 20 } } });
 */
export interface ServeLimits {
  /** Streams one peer may have in flight across all protocols. Default 8. */
  maxConcurrentPerPeer?: number;
  /** Token bucket per peer across all protocols. Default burst 200, 100/s. */
  ratePerPeer?: RateLimit;
  /** Server deadline per stream. Default 10,000 ms. */
  timeoutMs?: number;
  /** libp2p's cap on inbound streams per connection and protocol. Default 32. */
  maxInboundStreams?: number;
  /** Range and change proofs served at once, across peers, the rest in arrival order (proof-queue.ts). Default 2. */
  maxConcurrentProofs?: number;
}

export interface ServedState {
  db: MerkleDatabase;
  log: OperationLog;
  lock: RwLock;
  /** This node's database id (announcement `db`). */
  dbId: Uint8Array;
  /** The newest signed announcement's wire bytes, if this node has one. */
  announcement(): Uint8Array | undefined;
  metrics: NodeMetrics;
  /**
   * Encoded range-proof answers shared by all peers (proof-cache.ts), kept for requests whose
   * root `isCheckpointRoot` accepts. Absent: every answer is built.
   */
  proofCache?: { cache: ProofCache; isCheckpointRoot(root: Uint8Array): boolean };
  onError?: (err: unknown, context: { protocol: string }) => void;
}

/**
 * Registers the five protocols; returns a function that unregisters them.
 *
 * @example
 * const unregister = await serveProtocols(host.libp2p, { db, log, lock, dbId, announcement: () => bytes, metrics });
 */
export async function serveProtocols(libp2p: Registrar, state: ServedState, limits: ServeLimits = {}): Promise<() => Promise<void>> {
  const peerLimits = new PeerLimits({
    maxConcurrent: limits.maxConcurrentPerPeer ?? 8,
    rate: limits.ratePerPeer ?? { burst: 200, perSecond: 100 },
  });
  const common = {
    limits: peerLimits,
    timeoutMs: limits.timeoutMs ?? 10_000,
    maxInboundStreams: limits.maxInboundStreams ?? 32,
    onError: (err: unknown, c: { protocol: string }) => state.onError?.(err, c),
    onRefused: (reason: RefusalReason, c: { protocol: string }) =>
      state.metrics.streamsRefused.inc({ protocol: c.protocol.slice(c.protocol.lastIndexOf('/') + 1), reason }),
  };
  const { metrics } = state;
  const proofs = new ProofQueue(limits.maxConcurrentProofs ?? 2);

  /** Times the handler and counts its outcome; errors are rethrown for `handle` to frame. */
  const measured = (protocol: string, fn: RequestHandler): RequestHandler => {
    const short = protocol.slice(protocol.lastIndexOf('/') + 1);
    return async (req, ctx) => {
      const end = metrics.requestSeconds.startTimer({ protocol: short });
      try {
        const res = await fn(req, ctx);
        metrics.requests.inc({ protocol: short, outcome: 'ok' });
        metrics.responseBytes.inc({ protocol: short }, res.length);
        return res;
      } catch (err) {
        metrics.requests.inc({ protocol: short, outcome: 'error' });
        metrics.errors.inc({ protocol: short, name: (err as Error)?.name ?? 'Error' });
        throw err;
      } finally {
        end();
      }
    };
  };

  const stops: (() => Promise<void>)[] = [];
  stops.push(
    await handle(
      libp2p,
      RANGE_PROTOCOL,
      measured(RANGE_PROTOCOL, async (bytes, { signal }) => {
        const req = decodeRangeProofRequest(bytes, { maxBytes: MAX_PROOF_REQUEST_BYTES });
        const build = async (): Promise<Uint8Array> => {
          // a request whose peer reset or timed out while it queued is dropped, not served
          const proof = await proofs.run(async () => {
            signal.throwIfAborted();
            return state.lock.read(() => serveRangeProof(state.db, req));
          });
          return encodeRangeProofResponse({ type: 'rangeProof', proof });
        };
        const cached = state.proofCache;
        if (!cached || !cached.isCheckpointRoot(req.rootHash)) return build();
        // keyed by the decoded request re-encoded with its limits clamped as serving clamps them:
        // requests that get the same answer share it, and limits above the caps (which change
        // nothing) give an attacker no fresh keys; the canonical plan's limits are the caps
        const key = { ...req, keyLimit: Math.min(req.keyLimit, MAX_KEY_LIMIT), bytesLimit: Math.min(req.bytesLimit, MAX_BYTE_LIMIT) };
        return cached.cache.getOrBuild(requestKey(key), encodeRangeProofRequest(key), build);
      }),
      { ...common, maxRequestBytes: MAX_PROOF_REQUEST_BYTES, encodeError: (name, message) => encodeRangeProofResponse({ type: 'error', name, message }) },
    ),
  );
  stops.push(
    await handle(
      libp2p,
      CHANGE_PROTOCOL,
      measured(CHANGE_PROTOCOL, async (bytes, { signal }) => {
        const req = decodeChangeProofRequest(bytes, { maxBytes: MAX_PROOF_REQUEST_BYTES });
        const res = await proofs.run(async () => {
          signal.throwIfAborted();
          return state.lock.read(() => serveChangeProof(state.db, req));
        });
        return encodeChangeProofResponse(res);
      }),
      { ...common, maxRequestBytes: MAX_PROOF_REQUEST_BYTES, encodeError: (name, message) => encodeChangeProofResponse({ type: 'error', name, message }) },
    ),
  );
  stops.push(
    await handle(
      libp2p,
      HEADS_PROTOCOL,
      measured(HEADS_PROTOCOL, (bytes) => {
        const req = decodeHeadsRequest(bytes);
        if (req.db && !equalBytes(req.db, state.dbId)) throw new NotFound('this node does not serve that database');
        const ann = state.announcement();
        if (!ann) throw new NotFound('this node has no signed announcement yet');
        return encodeHeadsResponse({ type: 'announcement', announcement: ann });
      }),
      { ...common, maxRequestBytes: MAX_HEADS_REQUEST_BYTES, encodeError: encodeHeadsError },
    ),
  );
  stops.push(
    await handle(
      libp2p,
      DELTA_PROTOCOL,
      measured(DELTA_PROTOCOL, async (bytes, { signal }) => {
        const { ids } = decodeDeltaRequest(bytes);
        if (ids.length === 0) throw new InvalidRequest('a delta request needs at least one id');
        const deltas: Uint8Array[] = [];
        const missing: Uint8Array[] = [];
        let budget = RESPONSE_BYTE_BUDGET;
        let truncated = false;
        for (const id of ids) {
          signal.throwIfAborted();
          const d = await state.log.delta(id);
          if (!d) missing.push(id);
          else if (deltas.length > 0 && d.length > budget) {
            truncated = true;
            break;
          } else {
            deltas.push(d);
            budget -= d.length;
          }
        }
        return encodeDeltaResponse({ type: 'batch', deltas, missing, truncated });
      }),
      { ...common, maxRequestBytes: MAX_DELTA_REQUEST_BYTES, encodeError: encodeDeltaError },
    ),
  );
  stops.push(
    await handle(
      libp2p,
      LOG_PROTOCOL,
      measured(LOG_PROTOCOL, async (bytes) => {
        const req = decodeLogRequest(bytes);
        const batch = await state.log.batch(req, { maxOps: MAX_LOG_OPS, maxBytes: RESPONSE_BYTE_BUDGET });
        return encodeLogResponse({ type: 'batch', operations: batch.operations, proof: batch.proof.digests, pinned: batch.pinned });
      }),
      { ...common, maxRequestBytes: MAX_LOG_REQUEST_BYTES, encodeError: encodeLogError },
    ),
  );
  return async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
}
