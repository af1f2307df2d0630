import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { RANGE_PROTOCOL } from '../protocol/ids.ts';
import { MAX_PEER_ADDRS } from '../protocol/peers-codec.ts';
import { browserDialable, servingPeers, type DiscoverySource } from './discovery.ts';

const peers: PeerId[] = await Promise.all(Array.from({ length: 6 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))));
const TOPIC = '/proofsync/1/db/test';

/** A libp2p node as discovery reads it: `records` by peer, subscribers of the topic. */
function source(records: Map<PeerId, { protocols: string[]; addrs: string[] }>, subscribed: PeerId[]): DiscoverySource {
  return {
    getPeers: () => [...records.keys()],
    peerStore: {
      get: async (id) => {
        const r = [...records].find(([p]) => p.equals(id))?.[1];
        if (!r) throw new Error('not found');
        return { protocols: r.protocols, addresses: r.addrs.map((a) => ({ multiaddr: multiaddr(a) })) };
      },
    },
    services: { pubsub: { getSubscribers: () => subscribed } },
  };
}

describe('servingPeers: the full nodes of this database a node names', () => {
  it('names connected subscribers that serve range proofs, with browser-dialable addresses bound to their id', async () => {
    const [replica, light, other, noAddr, liar] = peers;
    const records = new Map([
      [replica, { protocols: [RANGE_PROTOCOL], addrs: ['/ip4/127.0.0.1/tcp/4001/ws', '/ip4/127.0.0.1/tcp/4002', `/ip4/127.0.0.1/tcp/4003/ws/p2p/${replica}`, '/ip4/127.0.0.1/tcp/4004/ws/p2p-circuit/p2p/' + liar] }],
      [light, { protocols: [], addrs: ['/ip4/127.0.0.1/tcp/5001/ws'] }], // a light client serves nothing
      [other, { protocols: [RANGE_PROTOCOL], addrs: ['/ip4/127.0.0.1/tcp/6001/ws'] }], // not on this database's topic
      [noAddr, { protocols: [RANGE_PROTOCOL], addrs: ['/ip4/127.0.0.1/tcp/7001'] }], // nothing a browser dials
      [liar, { protocols: [RANGE_PROTOCOL], addrs: [`/ip4/127.0.0.1/tcp/8001/ws/p2p/${replica}`] }], // only another peer's address
    ]);
    const out = await servingPeers(source(records, [replica, light, noAddr, liar]), TOPIC, 8);
    expect(out).toEqual([{ id: replica.toString(), addrs: [`/ip4/127.0.0.1/tcp/4001/ws/p2p/${replica}`, `/ip4/127.0.0.1/tcp/4003/ws/p2p/${replica}`] }]);
  });

  it('names at most `max` peers, each with at most MAX_PEER_ADDRS addresses, a different sample as the random order varies', async () => {
    const records = new Map(peers.map((p, i) => [p, { protocols: [RANGE_PROTOCOL], addrs: Array.from({ length: 10 }, (_, k) => `/ip4/127.0.0.1/tcp/${1000 + i * 100 + k}/ws`) }]));
    const first = await servingPeers(source(records, peers), TOPIC, 2, () => 0);
    const last = await servingPeers(source(records, peers), TOPIC, 2, () => 0.999);
    expect(first.length).toBe(2);
    expect(first.every((p) => p.addrs.length === MAX_PEER_ADDRS)).toBe(true);
    expect(first.map((p) => p.id)).not.toEqual(last.map((p) => p.id));
    expect(await servingPeers(source(records, peers), TOPIC, 0)).toEqual([]);
  });

  it('names only the addresses a peer signed when it signed some: not the ephemeral port its dial came from', async () => {
    const [replica] = peers;
    const src = source(new Map([[replica, { protocols: [RANGE_PROTOCOL], addrs: [] }]]), [replica]);
    src.peerStore.get = async () => ({
      protocols: [RANGE_PROTOCOL],
      addresses: [
        { multiaddr: multiaddr('/ip4/127.0.0.1/tcp/40871/ws'), isCertified: false },
        { multiaddr: multiaddr('/ip4/127.0.0.1/tcp/4001/ws'), isCertified: true },
      ],
    });
    expect(await servingPeers(src, TOPIC, 8)).toEqual([{ id: replica.toString(), addrs: [`/ip4/127.0.0.1/tcp/4001/ws/p2p/${replica}`] }]);
  });

  it('browserDialable: WebSockets over TCP and WebRTC-Direct with a certhash, never a relay', () => {
    expect(browserDialable(multiaddr('/ip4/1.2.3.4/tcp/1/ws'))).toBe(true);
    expect(browserDialable(multiaddr('/dns4/a.example/tcp/443/tls/ws'))).toBe(true);
    expect(browserDialable(multiaddr('/ip4/1.2.3.4/tcp/1'))).toBe(false);
    expect(browserDialable(multiaddr('/ip4/1.2.3.4/udp/1/webrtc-direct'))).toBe(false);
    expect(browserDialable(multiaddr(`/ip4/1.2.3.4/tcp/1/ws/p2p/${peers[0]}/p2p-circuit`))).toBe(false);
  });
});
