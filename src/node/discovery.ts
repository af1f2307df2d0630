/**
 * The node's side of peer discovery (docs/sync.md#discovery): which other full nodes serving
 * this database it names in a `/proofsync/1/peers` answer (protocols.ts serves it).
 *
 * A full node needs no announcement of its own to be found: the node already knows its
 * peers through libp2p. A peer is named when it is connected now, is subscribed to the
 * database's gossipsub topic (a full node or a light client of this database), and identify
 * reported that it serves `/proofsync/1/range` (a full node: light clients serve nothing).
 * Replicas connect to the node they follow, so a writer names its replicas, and a replica its
 * writer. Its addresses are the listen addresses it signed in identify's peer record (when it
 * sent one: the peer store also keeps the ephemeral address its dial came from, which no one
 * can dial; measured, naming that first left all 8 bench clients without a replica), kept to those a
 * browser can dial (`/ws`, `/wss`, `/tls/ws`, `/webrtc-direct` with its certhash), with
 * `/p2p/<id>` appended. When more peers qualify than the answer names, a random sample is
 * named, so clients of one node spread over all its replicas.
 */
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { RANGE_PROTOCOL } from '../protocol/ids.ts';
import { MAX_PEER_ADDR_CHARS, MAX_PEER_ADDRS, MAX_PEERS, type PeerInfo } from '../protocol/peers-codec.ts';

/** Peers named per answer by default: a client dials at most 8 discovered nodes (src/client/discovery.ts). */
export const DEFAULT_LISTED_PEERS = 8;

/** What discovery reads of the libp2p node: its connections, its peer store, and gossipsub's subscribers. */
export interface DiscoverySource {
  getPeers(): PeerId[];
  peerStore: { get(id: PeerId): Promise<{ protocols: string[]; addresses: { multiaddr: Multiaddr; isCertified?: boolean }[] }> };
  services: { pubsub: { getSubscribers(topic: string): PeerId[] } };
}

/** Whether a browser can dial `ma`: WebSockets (plain or TLS) over TCP, or WebRTC-Direct with a certhash; never a relay. */
export function browserDialable(ma: Multiaddr): boolean {
  const names = ma.getComponents().map((c) => c.name);
  if (names.includes('p2p-circuit')) return false;
  if (names.includes('webrtc-direct')) return names.includes('certhash') && names.includes('udp');
  return names.includes('tcp') && (names.includes('ws') || names.includes('wss'));
}

/** `ma` ending in `/p2p/<id>` (added when absent); undefined when it names another peer. */
function withPeerId(ma: Multiaddr, id: string): string | undefined {
  const p2p = ma.getComponents().filter((c) => c.name === 'p2p');
  if (p2p.length === 0) return `${ma.toString()}/p2p/${id}`;
  return p2p.length === 1 && p2p[0].value === id ? ma.toString() : undefined;
}

/**
 * The full nodes of this database `libp2p` is connected to, at most `max`, each with at most
 * `MAX_PEER_ADDRS` browser-dialable addresses (peers without one are left out).
 *
 * @example
 * const peers = await servingPeers(host.libp2p, databaseTopic(db), 8);
 */
export async function servingPeers(libp2p: DiscoverySource, topic: string, max = DEFAULT_LISTED_PEERS, random: () => number = Math.random): Promise<PeerInfo[]> {
  const limit = Math.min(Math.max(0, Math.floor(max)), MAX_PEERS);
  if (limit === 0) return [];
  const subscribed = new Set(libp2p.services.pubsub.getSubscribers(topic).map((p) => p.toString()));
  const candidates = libp2p.getPeers().filter((p) => subscribed.has(p.toString()));
  // a random order, so each answer names a different sample when more qualify than fit
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  const out: PeerInfo[] = [];
  for (const peer of candidates) {
    if (out.length >= limit) break;
    const record = await libp2p.peerStore.get(peer).catch(() => undefined);
    if (!record?.protocols.includes(RANGE_PROTOCOL)) continue;
    const id = peer.toString();
    const addrs: string[] = [];
    // only what the peer signed as its own listen addresses (identify's peer record) when it did:
    // the peer store also holds the address a peer's dial came from, an ephemeral port no one can dial
    const certified = record.addresses.filter((a) => a.isCertified);
    for (const { multiaddr } of certified.length ? certified : record.addresses) {
      if (addrs.length >= MAX_PEER_ADDRS) break;
      if (!browserDialable(multiaddr)) continue;
      const a = withPeerId(multiaddr, id);
      if (a && a.length <= MAX_PEER_ADDR_CHARS && !addrs.includes(a)) addrs.push(a);
    }
    if (addrs.length) out.push({ id, addrs });
  }
  return out;
}
