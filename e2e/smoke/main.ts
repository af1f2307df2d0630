/**
 * Smoke page: dials the node given in the query (`?ws=<multiaddr>&rtc=<multiaddr>`) over each
 * transport with its own browser node (libp2p would otherwise reuse the first connection),
 * sends one echo request each, and publishes the outcome as `window.__result`.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { createBrowserNode } from '../../src/client/transport.ts';
import { decodeResponse, ECHO } from '../../src/node/testing/echo-protocol.ts';
import { request } from '../../src/protocol/stream.ts';
import type { TransportName } from '../../src/protocol/transports.ts';

interface Outcome {
  ok: boolean;
  echoed?: string;
  remoteAddr?: string;
  error?: string;
  ms: number;
}

async function echoOver(addr: string, transport: TransportName): Promise<Outcome> {
  const started = performance.now();
  const node = await createBrowserNode({ allowInsecureLoopback: true, transports: [transport] });
  try {
    const text = `hello over ${transport}`;
    const body = await request(node, multiaddr(addr), ECHO, new TextEncoder().encode(text), { maxResponseBytes: 4096, timeoutMs: 15_000 });
    const res = decodeResponse(body);
    return {
      ok: res.ok && new TextDecoder().decode(res.payload) === text,
      echoed: res.ok ? new TextDecoder().decode(res.payload) : `${res.name}: ${res.message}`,
      remoteAddr: node.getConnections()[0]?.remoteAddr.toString(),
      ms: Math.round(performance.now() - started),
    };
  } catch (err) {
    return { ok: false, error: `${(err as Error).name}: ${(err as Error).message}`, ms: Math.round(performance.now() - started) };
  } finally {
    await node.stop();
  }
}

async function strictRefusal(addr: string): Promise<string> {
  // production defaults: a loopback ws:// dial must be refused by the gater
  const node = await createBrowserNode({ transports: ['websockets'] });
  try {
    await request(node, multiaddr(addr), ECHO, new Uint8Array(1), { maxResponseBytes: 16, timeoutMs: 5_000 });
    return 'dialed';
  } catch (err) {
    return (err as Error).name;
  } finally {
    await node.stop();
  }
}

const params = new URLSearchParams(location.search);
const result = {
  ws: await echoOver(params.get('ws')!, 'websockets'),
  webrtcDirect: await echoOver(params.get('rtc')!, 'webrtc-direct'),
  strict: await strictRefusal(params.get('ws')!),
  hasRTCPeerConnection: typeof RTCPeerConnection === 'function',
};
document.getElementById('out')!.textContent = JSON.stringify(result, null, 2);
(window as unknown as { __result: unknown }).__result = result;
