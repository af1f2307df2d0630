/**
 * The proofsync calls the worker makes (`/range`, `/change`, `/heads`), over a `Requester`: a
 * function that moves one request frame to a peer and returns its response frame. A peer
 * whose connection lives in the worker (WebSockets) gets a requester on the worker's libp2p
 * node; one whose connection lives on the main thread (WebRTC-Direct) gets a requester that
 * posts the bytes over the bridge port (bridge-worker.ts). Either way decoding, and every
 * check against a signed root, happens here in the worker: the same codecs and limits as the
 * protocol client (src/protocol/client.ts), whose error mapping (`remoteError`) is reused.
 */
import type { Multiaddr } from '@multiformats/multiaddr';
import type { PeerId } from '@libp2p/interface';
import { decodeAnnouncement, verifyAnnouncementAsync, type VerifiedAnnouncement } from '../../core/announcement.ts';
import type { ChangeProofRequest, RangeProof, RangeProofRequest } from '../../core/types.ts';
import { remoteError } from '../../protocol/client.ts';
import {
  decodeChangeProofResponse,
  decodeRangeProofResponse,
  DEFAULT_DECODE_LIMITS,
  encodeChangeProofRequest,
  encodeRangeProofRequest,
} from '../../protocol/codec.ts';
import { CHANGE_PROTOCOL, HEADS_PROTOCOL, RANGE_PROTOCOL } from '../../protocol/ids.ts';
import { decodeHeadsResponse, encodeHeadsRequest, MAX_HEADS_RESPONSE_BYTES } from '../../protocol/messages.ts';
import { request, type Dialer } from '../../protocol/stream.ts';
import type { StateResponse, StateSource } from '../../sync/state/source.ts';
import type { TransportName } from '../../protocol/transports.ts';

export interface RequestOptions {
  maxResponseBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** One request frame out, one response frame back (stream.ts framing), or a typed error. */
export type Requester = (protocol: string, body: Uint8Array, options: RequestOptions) => Promise<Uint8Array>;


/** A connected full node as the worker sees it. */
export interface RemotePeer {
  /** Its peer id. */
  readonly id: string;
  readonly transport: TransportName;
  /** Where its connection lives. */
  readonly via: 'worker' | 'main';
  readonly request: Requester;
}

/** A requester on a libp2p node that holds the connection itself. */
export function libp2pRequester(node: Dialer, peer: PeerId | Multiaddr): Requester {
  return async (protocol, body, o) => {
    const bytes = await request(node, peer, protocol, body, o);
    // On Node, chunks may be Buffers whose slices alias the frame: decode from a plain view.
    return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** `/proofsync/1/range`, decoded with at most `req.keyLimit` key-values. Not verified here. */
export async function requestRangeProof(peer: RemotePeer, req: RangeProofRequest, o: { timeoutMs: number; signal?: AbortSignal }): Promise<RangeProof> {
  const bytes = await peer.request(RANGE_PROTOCOL, encodeRangeProofRequest(req), { maxResponseBytes: DEFAULT_DECODE_LIMITS.maxBytes, ...o });
  // views into the frame, which nothing else holds (as protocol/client.ts does on Node): a copy
  // per key and value was 400,000 small arrays per 200,000 keys for the collector, and hashing a
  // value copy first moved it off V8's heap (sha256.ts `toModule`: 488 ms of a 200k-key sync's
  // worker profile, BENCH_PROFILE of `npm run bench -- browser`, against 393 ms of hashing)
  const res = decodeRangeProofResponse(bytes, { maxKeyValues: Math.min(Math.max(req.keyLimit, 1), DEFAULT_DECODE_LIMITS.maxKeyValues) }, { views: true });
  if (res.type === 'error') throw remoteError(res);
  return res.proof;
}

/** The peer's newest announcement, verified against the writer's Ed25519 public key. */
export async function requestHeads(peer: RemotePeer, writerPublicKey: Uint8Array, o: { timeoutMs: number; signal?: AbortSignal; db?: Uint8Array }): Promise<VerifiedAnnouncement> {
  const bytes = await peer.request(HEADS_PROTOCOL, encodeHeadsRequest({ db: o.db }), { maxResponseBytes: MAX_HEADS_RESPONSE_BYTES, timeoutMs: o.timeoutMs, signal: o.signal });
  const res = decodeHeadsResponse(bytes);
  if (res.type === 'error') throw remoteError(res);
  return verifyAnnouncementAsync(decodeAnnouncement(res.announcement), writerPublicKey);
}

/** The sync's `StateSource` for one peer (as sync/state/network-source.ts, over a `Requester`). */
export function peerStateSource(peer: RemotePeer, timeoutMs: number): StateSource {
  return {
    id: peer.id,
    async rangeProof(req: RangeProofRequest, { signal }: { signal?: AbortSignal }): Promise<StateResponse> {
      return { type: 'range', proof: await requestRangeProof(peer, req, { timeoutMs, signal }) };
    },
    async changeProof(req: ChangeProofRequest, { signal }: { signal?: AbortSignal }): Promise<StateResponse> {
      const bytes = await peer.request(CHANGE_PROTOCOL, encodeChangeProofRequest(req), { maxResponseBytes: DEFAULT_DECODE_LIMITS.maxBytes, timeoutMs, signal });
      const res = decodeChangeProofResponse(bytes, { maxKeyValues: Math.min(Math.max(req.keyLimit, 1), DEFAULT_DECODE_LIMITS.maxKeyValues) });
      if (res.type === 'error') throw remoteError(res);
      return res.type === 'changeProof' ? { type: 'change', proof: res.proof } : { type: 'range', proof: res.proof };
    },
  };
}
