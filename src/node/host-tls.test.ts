import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { addressesFile, createHost } from './host.ts';
import { loadOrCreateIdentity } from './identity.ts';
import { selfSignedCertificate, type TestCertificate } from './testing/certificate.ts';

let dir: string;
let cert: TestCertificate;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'host-tls-'));
  cert = await selfSignedCertificate();
});
afterAll(async () => {
  await Promise.all([rm(dir, { recursive: true, force: true }), cert?.remove()]);
});

describe('createHost with a TLS certificate', () => {
  it('adds a /tls/ws listener to the defaults: addresses.json names it as wss, ws stays the plain one', async () => {
    const host = await createHost({ dataDir: dir, privateKey: await loadOrCreateIdentity(dir), tls: { cert: cert.cert, key: cert.key } });
    await host.stop();
    const { file } = host;
    expect(file.wss).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/tls/ws/p2p/${file.peerId}$`));
    expect(file.ws).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${file.peerId}$`));
    expect(file.webrtcDirect).not.toBeNull();
    expect(file.addresses).toHaveLength(3);
  });

  it('with only a /tls/ws listen address, ws names it too (clients that read ws still find the node)', async () => {
    const host = await createHost({ dataDir: dir, privateKey: await loadOrCreateIdentity(dir), listen: ['/ip4/127.0.0.1/tcp/0/tls/ws'], tls: { cert: cert.cert, key: cert.key } });
    await host.stop();
    expect(host.file.wss).toMatch(/\/tls\/ws\/p2p\//);
    expect(host.file.ws).toBe(host.file.wss);
    expect(host.file.webrtcDirect).toBeNull();
  });

  it('a public name announced for two listeners: addresses.json holds just it, as wss', async () => {
    const host = await createHost({
      dataDir: dir,
      privateKey: await loadOrCreateIdentity(dir),
      listen: ['/ip4/127.0.0.1/tcp/0/tls/ws', '/ip4/127.0.0.1/tcp/0/ws'],
      announce: ['/dns4/node.example.com/tcp/443/tls/ws'],
      tls: { cert: cert.cert, key: cert.key },
    });
    await host.stop();
    expect(host.file.addresses).toEqual([`/dns4/node.example.com/tcp/443/tls/ws/p2p/${host.file.peerId}`]);
    expect(host.file.wss).toBe(host.file.addresses[0]);
  });

  it('without a certificate there is no wss address', async () => {
    const host = await createHost({ dataDir: dir, privateKey: await loadOrCreateIdentity(dir), listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    await host.stop();
    expect(host.file.wss).toBeNull();
    expect(host.file.ws).toMatch(/\/tcp\/\d+\/ws\/p2p\//);
  });

  it('addressesFile: secure means /tls/ws, /tls/sni/<name>/ws or /wss; ws prefers the plain one', () => {
    const id = '12D3KooWRv7mhz1114m2Zm65KNjjfAY4d4YWEjot6FH9QbMJbQBe';
    const file = (...as: string[]) => addressesFile(peerIdFromString(id), as.map((a) => multiaddr(a)));
    const sni = '/ip4/1.2.3.4/tcp/4001/tls/sni/1-2-3-4.k51qzi5uqu5d.libp2p.direct/ws';
    expect(file(sni, '/ip4/1.2.3.4/tcp/4001/ws')).toMatchObject({ ws: '/ip4/1.2.3.4/tcp/4001/ws', wss: sni });
    expect(file('/dns4/a.example/tcp/443/wss')).toMatchObject({ ws: '/dns4/a.example/tcp/443/wss', wss: '/dns4/a.example/tcp/443/wss' });
    expect(file('/ip4/1.2.3.4/udp/4001/webrtc-direct')).toMatchObject({ ws: null, wss: null });
  });
});
