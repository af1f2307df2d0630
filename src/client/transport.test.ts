import { multiaddr } from '@multiformats/multiaddr';
import { describe, expect, it } from 'vitest';
import { browserConnectionGater } from './transport.ts';

const cases: [string, string, boolean, boolean][] = [
  // address, what, denied by default, denied with allowInsecureLoopback
  ['/ip4/127.0.0.1/tcp/4001/ws', 'loopback ws', true, false],
  ['/ip4/127.0.0.1/udp/4001/webrtc-direct', 'loopback webrtc-direct', true, false],
  ['/ip6/::1/tcp/4001/ws', 'ipv6 loopback ws', true, false],
  ['/dns/localhost/tcp/4001/ws', 'localhost ws', true, false],
  ['/ip4/127.0.0.1/tcp/4001/tls/ws', 'loopback wss', true, false],
  ['/dns/localhost/tcp/4001/wss', 'localhost wss', true, false],
  ['/ip4/192.168.1.5/tcp/443/tls/ws', 'LAN wss', true, true],
  ['/ip4/10.0.0.1/udp/4001/webrtc-direct', 'LAN webrtc-direct', true, true],
  ['/ip4/8.8.8.8/tcp/80/ws', 'public plain ws', true, true],
  ['/ip4/8.8.8.8/tcp/443/tls/ws', 'public wss', false, false],
  ['/dns4/node.example.com/tcp/443/wss', 'public dns wss', false, false],
  ['/ip4/8.8.8.8/udp/4001/webrtc-direct', 'public webrtc-direct', false, false],
];

describe('browserConnectionGater', () => {
  const strict = browserConnectionGater();
  const local = browserConnectionGater({ allowInsecureLoopback: true });
  for (const [addr, what, deniedStrict, deniedLocal] of cases) {
    it(`${what}: ${deniedStrict ? 'denied' : 'allowed'} by default, ${deniedLocal ? 'denied' : 'allowed'} for local tests`, async () => {
      expect(await strict.denyDialMultiaddr!(multiaddr(addr))).toBe(deniedStrict);
      expect(await local.denyDialMultiaddr!(multiaddr(addr))).toBe(deniedLocal);
    });
  }
});
