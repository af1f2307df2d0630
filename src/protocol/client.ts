/**
 * A typed client for the five proofsync protocols (docs/design.md "Wire protocols"): encode the
 * request, send it on a new stream (stream.ts `request`, bounded and with a deadline), decode
 * the response, and turn an error envelope into a typed error. It verifies nothing: proofs,
 * signatures and MMR batches are checked by the caller against a trusted root (core).
 *
 * Remote errors keep their meaning: a name the core or stream layer defines (`RootNotFound`,
 * `InvalidRequest`, `MinProofSizeTooLarge`, `RateLimited`, `TooManyStreams`, ...) becomes an
 * instance of that class, with `details.remote = true`; any other name becomes a
 * {@link RemoteError} carrying it in `remoteName`.
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { decodeAnnouncement, verifyAnnouncement, type SignedAnnouncement } from '../core/announcement.ts';
import { decodeDelta, type Delta } from '../core/delta.ts';
import * as E from '../core/errors.ts';
import type { MmrRangeProof } from '../core/mmr.ts';
import type { ChangeProof, ChangeProofRequest, RangeProof, RangeProofRequest } from '../core/types.ts';
import {
  decodeChangeProofResponse,
  decodeRangeProofResponse,
  DEFAULT_DECODE_LIMITS,
  encodeChangeProofRequest,
  encodeRangeProofRequest,
  type WireError,
} from './codec.ts';
import { CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL, RANGE_PROTOCOL } from './ids.ts';
import {
  decodeDeltaResponse,
  decodeHeadsResponse,
  decodeLogResponse,
  encodeDeltaRequest,
  encodeHeadsRequest,
  encodeLogRequest,
  MAX_BATCH_RESPONSE_BYTES,
  MAX_DELTA_IDS,
  MAX_HEADS_RESPONSE_BYTES,
  NotFound,
} from './messages.ts';

export { NotFound };
import { RateLimited, request, RequestTimeout, ServerStopping, TooManyStreams, type Dialer, type RequestOptions } from './stream.ts';

/** The server answered with an error whose name this client does not know. */
export class RemoteError extends E.ProofsyncError<{ remote: true; remoteName: string }> {
  override readonly name = 'RemoteError';
  constructor(remoteName: string, message: string) {
    super(`the peer answered ${remoteName}: ${message}`, { remote: true, remoteName });
  }
  /** The name the server gave. */
  get remoteName(): string {
    return this.details!.remoteName;
  }
}
E.registerError(RemoteError, 'RemoteError');

type ErrorClass = new (message: string, details?: Record<string, unknown>) => E.ProofsyncError;
const KNOWN: Record<string, ErrorClass> = {
  MinProofSizeTooLarge: E.MinProofSizeTooLarge,
  InvalidRequest: E.InvalidRequest,
  RootNotFound: E.RootNotFound,
  InsufficientHistory: E.InsufficientHistory,
  NotFound,
  RateLimited,
  TooManyStreams,
  RequestTimeout,
  ServerStopping,
};

/**
 * The typed error for an error envelope.
 *
 * @example
 * const err = remoteError({ type: 'error', name: 'RootNotFound', message: 'unknown root' });
 * err instanceof RootNotFound; // true
 */
export function remoteError(e: WireError): E.ProofsyncError {
  const cls = Object.hasOwn(KNOWN, e.name) ? KNOWN[e.name] : undefined;
  return cls ? new cls(`the peer answered ${e.name}: ${e.message}`, { remote: true }) : new RemoteError(e.name, e.message);
}

/**
 * On Node, stream chunks are `Buffer`s, whose `slice` is a view, not a copy: decoded fields
 * would alias the frame and compare unequal to plain `Uint8Array`s. Decode from a plain view.
 */
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `request` with the response as a plain Uint8Array. */
async function call(node: Dialer, peer: Peer, protocol: string, body: Uint8Array, o: RequestOptions): Promise<Uint8Array> {
  return plain(await request(node, peer, protocol, body, o));
}

export type Peer = PeerId | Multiaddr | Multiaddr[];

export interface CallOptions {
  /** Deadline for the whole exchange, dial included. Default 10,000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type FetchedChangeProof = { type: 'changeProof'; proof: ChangeProof } | { type: 'rangeProof'; proof: RangeProof };

/**
 * A range proof (docs/proofs.md); decoded with at most `req.keyLimit` key-values.
 *
 * @example
 * const proof = await fetchRangeProof(node, addr, { rootHash, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 2 << 20 });
 * verifyRangeProof(proof, { root: rootHash, keyLimit: 2048 });
 */
export async function fetchRangeProof(node: Dialer, peer: Peer, req: RangeProofRequest, o: CallOptions = {}): Promise<RangeProof> {
  const bytes = await call(node, peer, RANGE_PROTOCOL, encodeRangeProofRequest(req), {
    maxResponseBytes: DEFAULT_DECODE_LIMITS.maxBytes,
    ...o,
  });
  // `bytes` is this call's own received frame: the key-values may alias it.
  const res = decodeRangeProofResponse(bytes, { maxKeyValues: Math.min(Math.max(req.keyLimit, 1), DEFAULT_DECODE_LIMITS.maxKeyValues) }, { views: true });
  if (res.type === 'error') throw remoteError(res);
  return res.proof;
}

/** A change proof, or a range proof at the end root when the start root left the history (docs/proofs.md#serving). */
export async function fetchChangeProof(node: Dialer, peer: Peer, req: ChangeProofRequest, o: CallOptions = {}): Promise<FetchedChangeProof> {
  const bytes = await call(node, peer, CHANGE_PROTOCOL, encodeChangeProofRequest(req), {
    maxResponseBytes: DEFAULT_DECODE_LIMITS.maxBytes,
    ...o,
  });
  const res = decodeChangeProofResponse(bytes, { maxKeyValues: Math.min(Math.max(req.keyLimit, 1), DEFAULT_DECODE_LIMITS.maxKeyValues) });
  if (res.type === 'error') throw remoteError(res);
  return res;
}

/**
 * The peer's newest signed announcement, decoded; with `writerPublicKey`, also verified
 * (`InvalidSignature` otherwise).
 *
 * @example
 * const ann = await fetchHeads(node, addr, { writerPublicKey: peerId.publicKey.raw });
 */
export async function fetchHeads(
  node: Dialer,
  peer: Peer,
  o: CallOptions & { db?: Uint8Array; writerPublicKey?: Uint8Array } = {},
): Promise<SignedAnnouncement> {
  const bytes = await call(node, peer, HEADS_PROTOCOL, encodeHeadsRequest({ db: o.db }), {
    maxResponseBytes: MAX_HEADS_RESPONSE_BYTES,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
  });
  const res = decodeHeadsResponse(bytes);
  if (res.type === 'error') throw remoteError(res);
  const ann = decodeAnnouncement(res.announcement);
  return o.writerPublicKey ? verifyAnnouncement(ann, o.writerPublicKey) : ann;
}

export interface FetchedDeltas {
  /** Decoded deltas (ids re-derived from their bytes; signatures NOT checked). */
  deltas: Delta[];
  /** Ids the peer does not hold. */
  missing: Uint8Array[];
  /** The peer's byte budget cut the answer short: ask again for the ids in neither list. */
  truncated: boolean;
}

/** Deltas by id (1..MAX_DELTA_IDS ids). */
export async function fetchDeltas(node: Dialer, peer: Peer, ids: Uint8Array[], o: CallOptions = {}): Promise<FetchedDeltas> {
  if (ids.length === 0 || ids.length > MAX_DELTA_IDS) throw new RangeError(`expected 1..${MAX_DELTA_IDS} ids, got ${ids.length}`);
  const bytes = await call(node, peer, DELTA_PROTOCOL, encodeDeltaRequest({ ids }), { maxResponseBytes: MAX_BATCH_RESPONSE_BYTES, ...o });
  const res = decodeDeltaResponse(bytes);
  if (res.type === 'error') throw remoteError(res);
  if (res.deltas.length + res.missing.length > ids.length) {
    throw new E.UnexpectedResponse(`asked for ${ids.length} deltas, got ${res.deltas.length} and ${res.missing.length} missing`);
  }
  return { deltas: res.deltas.map((d) => decodeDelta(d)), missing: res.missing, truncated: res.truncated };
}

export interface FetchLogRequest {
  start: number;
  end: number;
  /** The log size the proof is against (the announcement's `logSize`). */
  logSize: number;
  /** Also return the pinned nodes at `start`. */
  pinned?: boolean;
}

export interface FetchedLog {
  operations: Uint8Array[];
  proof: MmrRangeProof;
  pinned: Uint8Array[];
}

/**
 * Operations `[start, start + k)` (`1 ≤ k ≤ end - start`) with their MMR proof against the log
 * of `logSize` operations. Check with `verifyRangeProof(root, logSize, start, operations, proof)`.
 */
export async function fetchLog(node: Dialer, peer: Peer, req: FetchLogRequest, o: CallOptions = {}): Promise<FetchedLog> {
  const bytes = await call(
    node,
    peer,
    LOG_PROTOCOL,
    encodeLogRequest({ start: req.start, end: req.end, logSize: req.logSize, pinned: req.pinned ?? false }),
    { maxResponseBytes: MAX_BATCH_RESPONSE_BYTES, ...o },
  );
  const res = decodeLogResponse(bytes);
  if (res.type === 'error') throw remoteError(res);
  if (res.operations.length === 0 || res.operations.length > req.end - req.start) {
    throw new E.UnexpectedResponse(`asked for operations [${req.start}, ${req.end}), got ${res.operations.length}`);
  }
  return { operations: res.operations, proof: { digests: res.proof }, pinned: res.pinned };
}

/**
 * The same calls bound to one libp2p node and one peer.
 *
 * @example
 * const client = new ProofsyncClient(node, multiaddr(addresses.ws));
 * const ann = await client.heads({ writerPublicKey });
 * const proof = await client.range({ rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 2 << 20 });
 */
export class ProofsyncClient {
  readonly node: Dialer;
  readonly peer: Peer;
  readonly defaults: CallOptions;

  constructor(node: Dialer, peer: Peer, defaults: CallOptions = {}) {
    this.node = node;
    this.peer = peer;
    this.defaults = defaults;
  }

  range(req: RangeProofRequest, o: CallOptions = {}): Promise<RangeProof> {
    return fetchRangeProof(this.node, this.peer, req, { ...this.defaults, ...o });
  }

  change(req: ChangeProofRequest, o: CallOptions = {}): Promise<FetchedChangeProof> {
    return fetchChangeProof(this.node, this.peer, req, { ...this.defaults, ...o });
  }

  heads(o: CallOptions & { db?: Uint8Array; writerPublicKey?: Uint8Array } = {}): Promise<SignedAnnouncement> {
    return fetchHeads(this.node, this.peer, { ...this.defaults, ...o });
  }

  deltas(ids: Uint8Array[], o: CallOptions = {}): Promise<FetchedDeltas> {
    return fetchDeltas(this.node, this.peer, ids, { ...this.defaults, ...o });
  }

  log(req: FetchLogRequest, o: CallOptions = {}): Promise<FetchedLog> {
    return fetchLog(this.node, this.peer, req, { ...this.defaults, ...o });
  }
}
