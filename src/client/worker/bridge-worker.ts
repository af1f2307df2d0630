/**
 * The worker's end of the bridge (worker-messages.ts): requesters for peers whose connections live on
 * the main thread. Each request posts its body (transferred) and waits for the response frame
 * (transferred back); aborting posts a `cancel`. Peer connect/disconnect notices from the main
 * thread become calls to `onPeer`.
 */
import { reviveError } from '../errors.ts';
import type { RemotePeer, RequestOptions } from './peer-calls.ts';
import type { TransportName } from '../../protocol/transports.ts';
import { transferable, type BridgeReply, type BridgeRequest } from './worker-messages.ts';

export interface BridgePeerNotice {
  peer: string;
  status: 'connected' | 'disconnected' | 'failed';
  transport: TransportName;
  addr: string;
  reason?: string;
}

interface Waiting {
  resolve: (bytes: Uint8Array) => void;
  reject: (err: unknown) => void;
}

export class WorkerBridge {
  readonly #port: MessagePort;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #dialed: Promise<void>;
  /** Bytes of response frames received over the bridge. */
  bytesIn = 0;

  constructor(port: MessagePort, onPeer: (notice: BridgePeerNotice) => void) {
    this.#port = port;
    let dialed!: () => void;
    this.#dialed = new Promise((r) => (dialed = r));
    port.onmessage = (m: MessageEvent<BridgeReply>) => {
      const msg = m.data;
      if (msg.type === 'peer') onPeer(msg);
      else if (msg.type === 'dialed') dialed();
      else {
        const w = this.#waiting.get(msg.id);
        if (!w) return; // cancelled
        this.#waiting.delete(msg.id);
        if (msg.type === 'response') {
          this.bytesIn += msg.body.byteLength;
          w.resolve(new Uint8Array(msg.body));
        } else w.reject(reviveError(msg.error));
      }
    };
    port.start();
  }

  /** Resolves once the main thread's first round of dials has settled. */
  dialed(): Promise<void> {
    return this.#dialed;
  }

  peer(id: string, transport: TransportName): RemotePeer {
    return { id, transport, via: 'main', request: (protocol, body, o) => this.request(id, protocol, body, o) };
  }

  request(peer: string, protocol: string, body: Uint8Array, o: RequestOptions): Promise<Uint8Array> {
    if (o.signal?.aborted) return Promise.reject(o.signal.reason);
    const id = this.#nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#waiting.delete(id)) return;
        this.#post({ type: 'cancel', id });
        reject(o.signal!.reason);
      };
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => o.signal?.removeEventListener('abort', onAbort);
      this.#waiting.set(id, {
        resolve: (b) => (done(), resolve(b)),
        reject: (e) => (done(), reject(e)),
      });
      const buf = transferable(body);
      this.#post({ type: 'request', id, peer, protocol, body: buf, maxResponseBytes: o.maxResponseBytes, timeoutMs: o.timeoutMs }, [buf]);
    });
  }

  close(): void {
    for (const w of this.#waiting.values()) w.reject(new DOMException('the bridge closed', 'AbortError'));
    this.#waiting.clear();
    this.#port.close();
  }

  #post(msg: BridgeRequest, transfer: Transferable[] = []): void {
    this.#port.postMessage(msg, transfer);
  }
}
