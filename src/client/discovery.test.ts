import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import { encodePeersResponse, type PeerInfo } from '../protocol/peers-codec.ts';
import { dialTargets, MAX_ADDRS_TRIED, PeerDiscovery, type DiscoveryDeps } from './discovery.ts';

const ids = await Promise.all(Array.from({ length: 40 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()));
const [SELF, FROM, ...OTHERS] = ids;
const ws = (id: string, port = 4001, host = '203.0.113.7') => `/ip4/${host}/tcp/${port}/ws/p2p/${id}`;
const info = (id: string, addrs = [ws(id)]): PeerInfo => ({ id, addrs });
const base = { self: SELF, known: () => false, allowed: (ma: Multiaddr) => !ma.toString().includes('/ip4/10.') };

describe('dialTargets: what of an untrusted answer may be dialed', () => {
  it('drops bad ids, this client, the answering node, repeats, known peers, and addresses of another peer or refused by the policy', () => {
    const [a, b, c, d, e] = OTHERS;
    const answer: PeerInfo[] = [
      info('not-a-peer-id'),
      info(SELF),
      info(FROM),
      info(a, [ws(b), '/not/a/multiaddr', `/ip4/10.0.0.1/tcp/1/ws/p2p/${a}`, ws(a, 1), ws(a, 2), ws(a, 3)]),
      info(a, [ws(a, 9)]),
      info(b, [`/ip4/203.0.113.7/tcp/4001/ws`]), // no /p2p/: not bound to the id
      info(c, [`${ws(c)}/p2p/${d}`]), // two ids
      info(d),
      info(e, [ws(e, 1, '10.1.2.3')]), // the policy refuses it: nothing left
    ];
    const out = dialTargets(answer, FROM, { ...base, known: (id) => id === d });
    expect(out.map((t) => t.id)).toEqual([a]);
    expect(out[0].addrs.map(String)).toEqual([ws(a, 1), ws(a, 2)]);
    expect(out[0].addrs.length).toBe(MAX_ADDRS_TRIED);
  });
});

/** A `dial` whose outcomes the test settles by hand. */
function dialer() {
  const pending: { id: string; settle: (ok: boolean) => void }[] = [];
  const dialed: string[] = [];
  const dial: DiscoveryDeps['dial'] = (_ma, id) =>
    new Promise<boolean>((resolve) => {
      dialed.push(id);
      pending.push({ id, settle: resolve });
    });
  return { pending, dialed, dial };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('PeerDiscovery: bounded however long or often a node answers', () => {
  it('holds at most maxPeers discovered nodes, dials at most maxConcurrentDials at once and maxDials ever', async () => {
    const d = dialer();
    const disc = new PeerDiscovery({ maxPeers: 3, maxDials: 5, maxConcurrentDials: 2 }, { ...base, dial: d.dial });
    disc.offer(FROM, OTHERS.map((id) => info(id)));
    expect(d.dialed.length).toBe(2);
    // both fail: their slots and dials are spent, two more start
    d.pending.shift()!.settle(false);
    d.pending.shift()!.settle(false);
    await tick();
    expect(d.dialed.length).toBe(4);
    for (const p of d.pending.splice(0)) p.settle(true);
    await tick();
    // 2 held, 1 dial left in the budget
    expect(disc.held).toBe(3);
    expect(d.dialed.length).toBe(5);
    expect(disc.dialsLeft).toBe(0);
    d.pending.shift()!.settle(true);
    await tick();
    // another answer, and a disconnect: nothing more is ever dialed
    disc.offer(OTHERS[0], OTHERS.slice(20).map((id) => info(id)));
    disc.disconnected(d.dialed[2]);
    await tick();
    expect(d.dialed.length).toBe(5);
    expect(disc.held).toBe(2);
  });

  it('asks each node once; an error answer or a failed request is reported, never thrown, and dials nothing', async () => {
    const d = dialer();
    const errors: string[] = [];
    const disc = new PeerDiscovery({}, { ...base, dial: d.dial, onError: (from, err) => errors.push(`${from}: ${(err as Error).name}`) });
    let asked = 0;
    const refusing = {
      id: FROM,
      request: async () => {
        asked++;
        return encodePeersResponse({ type: 'error', name: 'NotFound', message: 'no such database' });
      },
    };
    await disc.ask(refusing);
    await disc.ask(refusing);
    expect(asked).toBe(1);
    await disc.ask({ id: OTHERS[0], request: async () => new Uint8Array([0xff, 0xff, 0xff]) });
    await disc.ask({ id: OTHERS[1], request: () => Promise.reject(Object.assign(new Error('no'), { name: 'UnsupportedProtocolError' })) });
    expect(errors).toEqual([`${FROM}: NotFound`, expect.stringMatching(new RegExp(`^${OTHERS[0]}: `)), `${OTHERS[1]}: UnsupportedProtocolError`]);
    expect(d.dialed).toEqual([]);
  });

  it('dials what a good answer names, on its first allowed address', async () => {
    const tried: string[] = [];
    const disc = new PeerDiscovery({}, { ...base, dial: async (ma) => (tried.push(ma.toString()), true) });
    await disc.ask({ id: FROM, request: async () => encodePeersResponse({ type: 'peers', peers: [info(OTHERS[5], [ws(OTHERS[5], 1, '10.0.0.9'), ws(OTHERS[5], 7)])] }) });
    await tick();
    expect(tried).toEqual([ws(OTHERS[5], 7)]);
    expect(disc.held).toBe(1);
  });
});
