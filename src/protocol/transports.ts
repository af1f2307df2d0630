/**
 * The transports proofsync peers speak to each other over: WebSockets (browsers, workers and
 * Node) and WebRTC-Direct (a browser's main thread and Node; `RTCPeerConnection` does not exist
 * in workers). One name for each, shared by the client, its worker bridge and their events.
 */

/** A transport by name, as options, events and the worker bridge carry it. */
export type TransportName = 'websockets' | 'webrtc-direct';

/**
 * The transport a dial address needs.
 *
 * @example
 * transportOf('/ip4/127.0.0.1/udp/9090/webrtc-direct/certhash/uEi.../p2p/12D3...'); // 'webrtc-direct'
 * transportOf('/dns4/node.example/tcp/443/tls/ws/p2p/12D3...'); // 'websockets'
 */
export function transportOf(addr: string): TransportName {
  return addr.includes('/webrtc-direct') ? 'webrtc-direct' : 'websockets';
}
