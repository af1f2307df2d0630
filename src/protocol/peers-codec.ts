/**
 * Wire messages of `/proofsync/1/peers` (docs/wire.md#peers): a full node names other full nodes
 * it knows serve the same database, so a client that reached one node finds the others.
 *
 * ```proto
 * message PeersRequest  { bytes db = 1; }                       // empty: the node's database
 * message PeerInfo      { string id = 1; repeated string addrs = 2; }
 * message PeerList      { repeated PeerInfo peers = 1; }
 * message PeersResponse { oneof result { PeerList list = 1; Error error = 2; } }
 * ```
 * `id` is a libp2p peer id (base58 or CID text), `addrs` multiaddr strings. The answer is
 * untrusted: the decoder bounds the message (`MAX_PEERS_RESPONSE_BYTES`), the peers
 * (`MAX_PEERS`), the addresses per peer (`MAX_PEER_ADDRS`) and every string's length; whether
 * an id parses and an address may be dialed is the client's policy (src/client/discovery.ts).
 */
import { DecodeError, errorClass, MissingField } from '../core/errors.ts';
import { checkCount, fieldOf, lenFieldSize, once, Reader, stringFieldSize, utf8Length, WIRE_LEN, Writer } from './pb.ts';
import { decodeDbRequest, encodeDbRequest } from './messages.ts';
import { errorSize, oneofTwice, readError, writeError, type WireError } from './wire-error-codec.ts';

/** A peer id or an address longer than its bound, or an empty peer id. */
export const InvalidPeerRecord = errorClass(DecodeError, 'InvalidPeerRecord');

/** Most peers in one answer: 16 full nodes is more than a client dials from one answer (discovery.ts dials 8). */
export const MAX_PEERS = 16;
/** Most addresses per peer (a node listens on `/ws`, `/tls/ws` and `/webrtc-direct`, IPv4 and IPv6). */
export const MAX_PEER_ADDRS = 6;
/** Longest peer id: an Ed25519 id is 52 characters, an RSA one up to ~600 — not served by proofsync nodes. */
export const MAX_PEER_ID_CHARS = 128;
/** Longest address: a `/webrtc-direct` address with two certhashes and `/p2p/` is about 250 characters. */
export const MAX_PEER_ADDR_CHARS = 384;
/** Largest answer: every bound above at once, with field headers. */
export const MAX_PEERS_RESPONSE_BYTES = MAX_PEERS * (MAX_PEER_ID_CHARS + 4 + MAX_PEER_ADDRS * (MAX_PEER_ADDR_CHARS + 3) + 4) + 16;
/** Largest request: a database id. */
export const MAX_PEERS_REQUEST_BYTES = 256;

export interface PeersRequest {
  /** The database asked about; absent: the node's own. */
  db?: Uint8Array;
}

/** One full node: its peer id and its dialable addresses. */
export interface PeerInfo {
  id: string;
  addrs: string[];
}

export type PeersResponse = { type: 'peers'; peers: PeerInfo[] } | WireError;

export function encodePeersRequest(q: PeersRequest): Uint8Array {
  return encodeDbRequest(q);
}

export function decodePeersRequest(bytes: Uint8Array, maxBytes = MAX_PEERS_REQUEST_BYTES): PeersRequest {
  return decodeDbRequest(bytes, maxBytes, 'PeersRequest');
}

function peerSize(p: PeerInfo): number {
  let n = stringFieldSize(1, p.id);
  for (const a of p.addrs) n += stringFieldSize(2, a);
  return n;
}

/**
 * Encodes an answer; throws `RangeError` when it breaks the bounds a decoder enforces (a node
 * never sends what its clients would reject).
 *
 * @example
 * encodePeersResponse({ type: 'peers', peers: [{ id: peerId, addrs: ['/ip4/203.0.113.7/tcp/443/tls/ws'] }] });
 */
export function encodePeersResponse(res: PeersResponse): Uint8Array {
  if (res.type === 'error') {
    const w = new Writer(lenFieldSize(2, errorSize(res)));
    writeError(w, 2, res);
    return w.finish();
  }
  if (res.peers.length > MAX_PEERS) throw new RangeError(`at most ${MAX_PEERS} peers per answer, got ${res.peers.length}`);
  for (const p of res.peers) {
    if (p.id.length === 0 || utf8Length(p.id) > MAX_PEER_ID_CHARS) throw new RangeError(`peer id of ${p.id.length} characters`);
    if (p.addrs.length > MAX_PEER_ADDRS) throw new RangeError(`at most ${MAX_PEER_ADDRS} addresses per peer, got ${p.addrs.length}`);
    for (const a of p.addrs) if (utf8Length(a) > MAX_PEER_ADDR_CHARS) throw new RangeError(`address of ${a.length} characters`);
  }
  let list = 0;
  for (const p of res.peers) list += lenFieldSize(1, peerSize(p));
  const w = new Writer(lenFieldSize(1, list)).lenField(1, list);
  for (const p of res.peers) {
    w.lenField(1, peerSize(p)).stringField(1, p.id);
    for (const a of p.addrs) w.stringField(2, a);
  }
  return w.finish();
}

function readPeer(r: Reader): PeerInfo {
  let id = '';
  const addrs: string[] = [];
  let seen = 0;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'PeerInfo');
        r.expect(tag, WIRE_LEN);
        id = r.string();
        if (id.length > MAX_PEER_ID_CHARS) throw new InvalidPeerRecord(`peer id at offset ${start} is ${id.length} characters, at most ${MAX_PEER_ID_CHARS}`, { offset: start });
        break;
      case 2: {
        r.expect(tag, WIRE_LEN);
        checkCount(addrs.length, MAX_PEER_ADDRS, 'PeerInfo.addrs');
        const a = r.string();
        if (a.length > MAX_PEER_ADDR_CHARS) throw new InvalidPeerRecord(`address at offset ${start} is ${a.length} characters, at most ${MAX_PEER_ADDR_CHARS}`, { offset: start });
        addrs.push(a);
        break;
      }
      default:
        r.skip(tag);
    }
  }
  if (id.length === 0) throw new InvalidPeerRecord('a peer without an id', { field: 'id' });
  return { id, addrs };
}

function readPeerList(r: Reader): PeerInfo[] {
  const peers: PeerInfo[] = [];
  while (!r.done) {
    const tag = r.tag();
    if (fieldOf(tag) === 1) {
      r.expect(tag, WIRE_LEN);
      checkCount(peers.length, MAX_PEERS, 'PeerList.peers');
      peers.push(readPeer(r.sub()));
    } else r.skip(tag);
  }
  return peers;
}

/** Decodes an answer strictly; every bound above is a typed `DecodeError`. */
export function decodePeersResponse(bytes: Uint8Array, maxBytes = MAX_PEERS_RESPONSE_BYTES): PeersResponse {
  const r = Reader.of(bytes, maxBytes);
  let result: PeersResponse | undefined;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        if (result !== undefined) oneofTwice('PeersResponse', start);
        r.expect(tag, WIRE_LEN);
        result = { type: 'peers', peers: readPeerList(r.sub()) };
        break;
      case 2:
        if (result !== undefined) oneofTwice('PeersResponse', start);
        r.expect(tag, WIRE_LEN);
        result = readError(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  if (result === undefined) throw new MissingField('PeersResponse has neither a list nor an error', { field: 'result' });
  return result;
}
