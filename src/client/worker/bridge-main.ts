/**
 * The main thread's end of the bridge (worker-messages.ts): a dial-only libp2p node for connections a
 * worker cannot hold (WebRTC-Direct needs `RTCPeerConnection`; WebSockets too when the client
 * is told to keep them here). It only moves bytes: each `request` from the worker is one
 * framed exchange (stream.ts `request`) whose response frame goes back as a transferred
 * `ArrayBuffer`. No decoding, hashing or verification happens on this thread.
 *
 * Loaded with a dynamic `import()` by light-client.ts, only when some bootstrap address needs
 * it, so a page that syncs over WebSockets alone never loads libp2p on its main thread.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { serializeError } from '../errors.ts';
import { request } from '../../protocol/stream.ts';
import { createBrowserNode, type BrowserNode } from '../transport.ts';
import { transferable, type BridgeReply, type BridgeRequest } from './worker-messages.ts';
import { transportOf, type TransportName } from '../../protocol/transports.ts';

export interface MainBridgeOptions {
  /** Multiaddrs (with `/p2p/<id>`) this thread dials. */
  dial: string[];
  allowInsecureLoopback: boolean;
}


export class MainBridge {
  readonly #port: MessagePort;
  readonly #node: BrowserNode;
  readonly #inFlight = new Map<number, AbortController>();
  readonly #transports = new Map<string, TransportName>();
  /** Bytes of response frames relayed to the worker. */
  bytesOut = 0;

  private constructor(port: MessagePort, node: BrowserNode) {
    this.#port = port;
    this.#node = node;
    port.onmessage = (m: MessageEvent<BridgeRequest>) => this.#onMessage(m.data);
    port.start();
  }

  /**
   * Starts the node, serves the worker's requests on `port`, and dials `options.dial`,
   * reporting each outcome to the worker and then `dialed`.
   */
  static async start(port: MessagePort, options: MainBridgeOptions): Promise<MainBridge> {
    const transports = [...new Set(options.dial.map(transportOf))];
    const node = await createBrowserNode({ allowInsecureLoopback: options.allowInsecureLoopback, transports });
    const bridge = new MainBridge(port, node);
    node.addEventListener('peer:disconnect', (e) => {
      const peer = e.detail.toString();
      const transport = bridge.#transports.get(peer);
      if (transport) bridge.#post({ type: 'peer', peer, status: 'disconnected', transport, addr: '' });
    });
    void Promise.all(options.dial.map((addr) => bridge.#dial(addr))).then(() => bridge.#post({ type: 'dialed' }));
    return bridge;
  }

  async #dial(addr: string): Promise<void> {
    const transport = transportOf(addr);
    try {
      const ma = multiaddr(addr);
      const conn = await this.#node.dial(ma, { signal: AbortSignal.timeout(15_000) });
      this.#transports.set(conn.remotePeer.toString(), transport);
      this.#post({ type: 'peer', peer: conn.remotePeer.toString(), status: 'connected', transport, addr });
    } catch (err) {
      const peer = addr.match(/\/p2p\/([^/]+)/)?.[1] ?? addr;
      this.#post({ type: 'peer', peer, status: 'failed', transport, addr, reason: `${(err as Error).name}: ${(err as Error).message}` });
    }
  }

  #onMessage(msg: BridgeRequest): void {
    if (msg.type === 'cancel') {
      this.#inFlight.get(msg.id)?.abort(new DOMException('cancelled by the worker', 'AbortError'));
      this.#inFlight.delete(msg.id);
      return;
    }
    const controller = new AbortController();
    this.#inFlight.set(msg.id, controller);
    request(this.#node, peerIdFromString(msg.peer), msg.protocol, new Uint8Array(msg.body), {
      maxResponseBytes: msg.maxResponseBytes,
      timeoutMs: msg.timeoutMs,
      signal: controller.signal,
    }).then(
      (bytes) => {
        if (!this.#inFlight.delete(msg.id)) return;
        const body = transferable(bytes);
        this.bytesOut += body.byteLength;
        this.#post({ type: 'response', id: msg.id, body }, [body]);
      },
      (err: unknown) => {
        if (!this.#inFlight.delete(msg.id)) return;
        this.#post({ type: 'failure', id: msg.id, error: serializeError(err) });
      },
    );
  }

  #post(msg: BridgeReply, transfer: Transferable[] = []): void {
    this.#port.postMessage(msg, transfer);
  }

  async stop(): Promise<void> {
    for (const c of this.#inFlight.values()) c.abort(new DOMException('the client closed', 'AbortError'));
    this.#inFlight.clear();
    this.#port.close();
    await this.#node.stop();
  }
}
