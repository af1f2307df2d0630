/**
 * A bound on WebRTC-Direct handshakes. `@libp2p/webrtc`'s listener answers every STUN binding
 * request that carries a fresh ufrag by creating a native peer connection (node-datachannel:
 * one thread and ~0.3 MB each) before anything about the sender is known, with no cap. A few
 * thousand datagrams (0.5 MB) from one host made ~2,500 threads and ~790 MB of RSS
 * (`npm exec -- node` a flood of 4,000 binding requests; e2e/hostile/stun.test.ts measures it).
 *
 * This module wraps `webRTCDirect()` and, on each listener it creates, replaces the one method
 * the UDP mux callback calls per unknown ufrag (`incomingConnection`) with a gate:
 * - at most `maxPending` handshakes in flight, and `maxPendingPerIp` from one remote address;
 *   a STUN request over either is dropped before a peer connection exists (the browser's ICE
 *   agent retransmits, so an honest client that arrives during a flood still gets in later);
 * - each admitted handshake has `handshakeTimeoutMs` to become a libp2p connection, after which
 *   its abort signal fires and the listener closes the half-open peer connection.
 * libp2p's connection manager has no hook here: the peer connection is created before its
 * upgrader sees anything, and its `inboundUpgradeTimeout` (10 s) only ends each one late.
 *
 * The wrapper checks at start-up that the internals it relies on exist and throws
 * {@link WebRTCGuardUnsupported} otherwise, so a dependency upgrade fails loudly rather than
 * silently unguarded.
 */
import { webRTCDirect, type WebRTCDirectTransportComponents, type WebRTCTransportDirectInit } from '@libp2p/webrtc';
import type { CreateListenerOptions, Listener, Transport } from '@libp2p/interface';
import { ProofsyncError, errorClass } from '../core/errors.ts';
import { addressBucket, withDefaults } from './limits.ts';

/** The installed `@libp2p/webrtc` lacks an internal the guard needs: the node must not start unguarded. */
export const WebRTCGuardUnsupported = errorClass(ProofsyncError, 'WebRTCGuardUnsupported');

export interface WebRTCGuardLimits {
  /** Handshakes in flight at once, over all remote addresses. Default 64. */
  maxPending?: number;
  /** Handshakes in flight from one remote IP address. Default 16. */
  maxPendingPerIp?: number;
  /** Time from the STUN request to an upgraded libp2p connection. Default 5,000 ms; at least 1,000 ms applies. */
  handshakeTimeoutMs?: number;
}

export interface WebRTCGuardOptions extends WebRTCGuardLimits {
  /** A STUN request was dropped: too many handshakes in flight in total or from its IP. */
  onRefused?: (reason: 'total' | 'per_ip') => void;
  /** An admitted handshake did not finish within the deadline and was closed. */
  onExpired?: () => void;
  /** Handshakes in flight changed. */
  onPending?: (pending: number) => void;
}

// Each pending handshake holds one native thread and ~0.3 MB: 64 bound them to ~20 MB, and at
// well under a second per honest handshake on loopback they still admit dozens of browsers a
// second. One remote IP may be a NAT with several browsers behind it, hence 16, not 1.
export const DEFAULT_WEBRTC_LIMITS: Required<WebRTCGuardLimits> = { maxPending: 64, maxPendingPerIp: 16, handshakeTimeoutMs: 5_000 };

/** The youngest a native peer connection may be when the guard closes it (see `listener.close` below). */
export const MIN_HANDSHAKE_AGE_MS = 1_000;

type IncomingConnection = (ufrag: string, remoteHost: string, remotePort: number, signal: AbortSignal) => Promise<void>;

/** The listener internals the gate touches (`@libp2p/webrtc` 6.x `WebRTCDirectListener`). */
interface DirectListenerInternals {
  incomingConnection: IncomingConnection;
  close: () => Promise<void>;
  startUDPMuxServer: (...args: unknown[]) => unknown;
  connections: Map<string, { close(): void }>;
}

/** Admission bookkeeping: counts per key and per IP. Pure: no timers, no I/O. */
export class HandshakeGate {
  private readonly perIp = new Map<string, number>();
  private readonly keys = new Set<string>();
  private total = 0;
  private readonly limits: Required<WebRTCGuardLimits>;
  constructor(limits: Required<WebRTCGuardLimits>) {
    this.limits = limits;
  }

  get pending(): number {
    return this.total;
  }

  /** Whether a handshake for this key is already in flight (a STUN retransmit). */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Admits a new handshake, or says why not. */
  admit(key: string, ip: string): 'ok' | 'total' | 'per_ip' {
    if (this.total >= this.limits.maxPending) return 'total';
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.limits.maxPendingPerIp) return 'per_ip';
    this.perIp.set(ip, n + 1);
    this.keys.add(key);
    this.total++;
    return 'ok';
  }

  release(key: string, ip: string): void {
    if (!this.keys.delete(key)) return;
    this.total--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }
}

function assertListenerInternals(listener: unknown): asserts listener is DirectListenerInternals {
  const l = listener as Partial<DirectListenerInternals> | null;
  const missing: string[] = [];
  if (typeof l?.incomingConnection !== 'function' || l.incomingConnection.length !== 4) missing.push('incomingConnection(ufrag, host, port, signal)');
  if (!(l?.connections instanceof Map)) missing.push('connections Map');
  if (typeof l?.close !== 'function') missing.push('close()');
  // the mux callback must reach incomingConnection through `this`, or an instance override is bypassed
  const start = (l as { startUDPMuxServer?: unknown } | null)?.startUDPMuxServer;
  if (typeof start !== 'function' || !String(start).includes('this.incomingConnection(')) missing.push('startUDPMuxServer calling this.incomingConnection');
  if (missing.length) {
    throw new WebRTCGuardUnsupported(
      `@libp2p/webrtc's WebRTC-Direct listener changed: missing ${missing.join(', ')}; the handshake guard (src/node/webrtc-guard.ts) must be updated before this node can run`,
      { missing },
    );
  }
}

/**
 * Installs the gate on one WebRTC-Direct listener. Exported for tests; the host uses
 * {@link guardedWebRTCDirect}.
 */
export function guardListener(listener: unknown, options: WebRTCGuardOptions = {}): HandshakeGate {
  assertListenerInternals(listener);
  const limits = withDefaults(DEFAULT_WEBRTC_LIMITS, { maxPending: options.maxPending, maxPendingPerIp: options.maxPendingPerIp, handshakeTimeoutMs: options.handshakeTimeoutMs });
  const gate = new HandshakeGate(limits);
  const original = listener.incomingConnection.bind(listener);
  const inFlight = new Map<string, { abort: AbortController; settled: Promise<void>; startedAt: number }>();
  let closing = false;
  listener.incomingConnection = async (ufrag, remoteHost, remotePort, signal) => {
    if (closing) return;
    const key = `${remoteHost}:${remotePort}:${ufrag}`;
    // A retransmit of a request already admitted. The listener records a peer connection only
    // after an await, so a retransmit in that window would make it create a second one: drop it.
    if (gate.has(key)) return;
    if (listener.connections.has(key)) return original(ufrag, remoteHost, remotePort, signal);
    const verdict = gate.admit(key, addressBucket(remoteHost));
    if (verdict !== 'ok') {
      options.onRefused?.(verdict);
      return;
    }
    options.onPending?.(gate.pending);
    const controller = new AbortController();
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      controller.abort(new Error(`WebRTC-Direct handshake did not finish within ${limits.handshakeTimeoutMs} ms`));
    }, Math.max(limits.handshakeTimeoutMs, MIN_HANDSHAKE_AGE_MS));
    const onAbort = (): void => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const handshake = original(ufrag, remoteHost, remotePort, controller.signal);
    inFlight.set(key, { abort: controller, settled: handshake.then(() => {}, () => {}), startedAt: Date.now() });
    try {
      await handshake;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      inFlight.delete(key);
      if (expired) {
        // the listener closes it on abort; close again in case the abort landed between its steps
        listener.connections.get(key)?.close();
        options.onExpired?.();
      }
      gate.release(key, addressBucket(remoteHost));
      options.onPending?.(gate.pending);
    }
  };
  // The listener stops its UDP mux first and ends handshakes after, and closing a peer connection
  // node-datachannel created a moment ago can abort the process (SIGABRT `std::system_error:
  // Invalid argument`, or SIGSEGV: 4 of 8 stops 300 ms into a flood of fresh ufrags, 0 of 10
  // once every one was at least MIN_HANDSHAKE_AGE_MS old; a script that SIGTERMs a node 300 ms
  // into stunFlood() from e2e/hostile/attacks.ts shows it). So on close: admit nothing more, let
  // each pending handshake reach that age (or finish), end it, then let the listener close.
  const close = listener.close.bind(listener);
  listener.close = async () => {
    closing = true;
    // A process about to exit leaves the UDP mux and the half-open peer connections to the
    // kernel: node-datachannel frees its mux listener while the mux thread may still be inside
    // the callback for an unknown ufrag (SIGSEGV in IceUdpMuxListener::UnhandledStunRequestCallback,
    // read from a core dump of a stop under a flood of fresh ufrags), and no wait on our side
    // closes that window: the next datagram can arrive at any moment.
    if (leaveNativeToExit) return;
    const pending = [...inFlight.values()];
    await Promise.all(
      pending.map(async (h) => {
        const wait = h.startedAt + MIN_HANDSHAKE_AGE_MS - Date.now();
        if (wait > 0) await Promise.race([h.settled, new Promise((r) => setTimeout(r, wait))]);
        h.abort.abort(new Error('the WebRTC-Direct listener is closing'));
        await Promise.race([h.settled, new Promise((r) => setTimeout(r, limits.handshakeTimeoutMs).unref())]);
      }),
    );
    await close();
  };
  return gate;
}

/**
 * `webRTCDirect()` whose listeners bound pending handshakes (see the module comment).
 *
 * @example
 * createLibp2p({ transports: [webSockets(), guardedWebRTCDirect({ maxPending: 64, onRefused: (r) => refused.inc({ reason: r }) })] });
 */
export function guardedWebRTCDirect(options: WebRTCGuardOptions = {}, init?: WebRTCTransportDirectInit): (components: WebRTCDirectTransportComponents) => Transport {
  const factory = webRTCDirect(init);
  return (components) => {
    const transport = factory(components);
    if (typeof transport.createListener !== 'function') throw new WebRTCGuardUnsupported('@libp2p/webrtc transport has no createListener', { missing: ['createListener'] });
    const create = transport.createListener.bind(transport);
    transport.createListener = (opts: CreateListenerOptions): Listener => {
      const listener = create(opts);
      guardListener(listener, options);
      return listener;
    };
    return transport;
  };
}

let leaveNativeToExit = false;

/**
 * For a process that exits once its libp2p has stopped: from now on, closing a WebRTC-Direct
 * listener admits no new handshake but leaves its native UDP mux and peer connections open, for
 * the process's exit to end (closing them races node-datachannel's own threads; see the listener
 * close above). The caller must exit soon after `libp2p.stop()`; the UDP port stays bound until then.
 *
 * @example
 * leaveNativeWebRTCToExit();
 * await node.stop();
 * process.exit(0);
 */
export function leaveNativeWebRTCToExit(): void {
  leaveNativeToExit = true;
}
