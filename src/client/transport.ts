/**
 * The light client's libp2p node for the browser (docs/design.md "Threads"): WebSockets, and
 * WebRTC-Direct where `RTCPeerConnection` exists (the main thread, never a worker), Noise,
 * Yamux, identify and ping. No listeners: a browser only dials.
 *
 * js-libp2p in a browser refuses `ws://` and private addresses by default (measured here).
 * Production keeps that. `allowInsecureLoopback` opens exactly loopback, plain `ws://` to
 * loopback included, for local tests and demos; LAN addresses stay refused.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface';
import { ping, type Ping } from '@libp2p/ping';
import { webRTCDirect } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { TransportName } from '../protocol/transports.ts';

export type BrowserServices = { identify: Identify; ping: Ping };
export type BrowserNode = Libp2p<BrowserServices>;

export interface BrowserNodeOptions {
  /** Allow loopback addresses, `ws://` included. Default false: for local tests only. */
  allowInsecureLoopback?: boolean;
  /** Default: both where `RTCPeerConnection` exists, else WebSockets only (workers). */
  transports?: TransportName[];
  privateKey?: PrivateKey;
}

function hostOf(ma: Multiaddr): { name: string; value: string } | undefined {
  const first = ma.getComponents()[0];
  return first && first.value !== undefined ? { name: first.name, value: first.value } : undefined;
}

/** 127.0.0.0/8, ::1, localhost. */
export function isLoopback(ma: Multiaddr): boolean {
  const host = hostOf(ma);
  if (!host) return false;
  if (host.name === 'ip4') return host.value.startsWith('127.');
  if (host.name === 'ip6') return host.value === '::1' || host.value === '0:0:0:0:0:0:0:1';
  if (host.name === 'dns' || host.name === 'dns4' || host.name === 'dns6') return host.value === 'localhost';
  return false;
}

/** Loopback, RFC 1918, link-local, CGNAT, unique-local and unspecified addresses. */
export function isPrivate(ma: Multiaddr): boolean {
  if (isLoopback(ma)) return true;
  const host = hostOf(ma);
  if (!host) return false;
  if (host.name === 'ip4') {
    const [a, b] = host.value.split('.').map(Number);
    return a === 0 || a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
  }
  if (host.name === 'ip6') {
    const v = host.value.toLowerCase();
    return v === '::' || v.startsWith('fc') || v.startsWith('fd') || /^fe[89ab]/.test(v);
  }
  return false;
}

/** `/ws` without TLS underneath (`/tls/ws` and `/wss` are secure). */
export function isInsecureWebSocket(ma: Multiaddr): boolean {
  const names = ma.getComponents().map((c) => c.name);
  return names.includes('ws') && !names.includes('tls') && !names.includes('wss');
}

/**
 * The browser's dial policy: no plain WebSockets and no private addresses, except loopback
 * when explicitly allowed.
 *
 * @example
 * const gater = browserConnectionGater({ allowInsecureLoopback: location.hostname === 'localhost' });
 */
export function browserConnectionGater(options: { allowInsecureLoopback?: boolean } = {}): ConnectionGater {
  return {
    denyDialMultiaddr: (ma: Multiaddr): boolean => {
      if (options.allowInsecureLoopback && isLoopback(ma)) return false;
      return isInsecureWebSocket(ma) || isPrivate(ma);
    },
  };
}

/**
 * Creates and starts a dial-only libp2p node for the page.
 *
 * @example
 * const node = await createBrowserNode({ allowInsecureLoopback: true });
 * const res = await request(node, multiaddr(addr), '/proofsync/1/heads', req, { maxResponseBytes: 1 << 16 });
 */
export async function createBrowserNode(options: BrowserNodeOptions = {}): Promise<BrowserNode> {
  const hasRTC = typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === 'function';
  const wanted = options.transports ?? (hasRTC ? ['websockets', 'webrtc-direct'] : ['websockets']);
  if (wanted.includes('webrtc-direct') && !hasRTC) {
    throw new TypeError('webrtc-direct needs RTCPeerConnection, which workers lack: dial it from the main thread');
  }
  return createLibp2p<BrowserServices>({
    privateKey: options.privateKey,
    addresses: { listen: [] },
    transports: [...(wanted.includes('websockets') ? [webSockets()] : []), ...(wanted.includes('webrtc-direct') ? [webRTCDirect()] : [])],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: browserConnectionGater({ allowInsecureLoopback: options.allowInsecureLoopback }),
    services: { identify: identify(), ping: ping() },
  });
}
