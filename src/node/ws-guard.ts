/**
 * The full node's WebSocket listener, hardened for the open internet (docs/design.md "From the lab
 * to the internet": no input on any listener may end the process or grow it without bound).
 *
 * `@libp2p/websockets`' listener, as shipped, leaves four holes that a single client can use:
 * - `ws` emits `'error'` on a WebSocket for every malformed frame (RSV bits, reserved opcodes,
 *   bad close codes, unmasked frames...), and the listener hands `handleUpgrade` its own
 *   callback without adding an `'error'` listener: the process ends on an unhandled `'error'`.
 * - its `ws` server keeps the default 100 MiB `maxPayload`, so one message can take 100 MiB.
 * - resetting a connection calls `close(1006)`, which `ws` refuses with a TypeError (1006 may
 *   not be sent); the error is swallowed and the TCP socket stays open until the peer leaves.
 * - a raw socket is tracked only after its first byte: silent sockets are never closed, and
 *   `server.close()` waits for them forever on stop.
 *
 * `guardedWebSockets()` wraps the transport and patches each listener it creates: a `ws`
 * server of the same class with a bounded `maxPayload` and an `'error'` listener on every
 * WebSocket, which is terminated at once; every accepted TCP socket tracked, counted (in total
 * and per remote address) and given a deadline to finish its WebSocket upgrade; every socket
 * destroyed on close. libp2p has no limit on raw sockets (its connection manager and gater
 * see a connection only after the WebSocket upgrade), so these are ours; pending Noise/Yamux
 * upgrades, their timeout and the total of upgraded connections are libp2p's own options
 * (full-node.ts sets them from the same flags).
 *
 * The patch relies on the listener's fields `server`, `wsServer` and `close`; `assertPatchable`
 * checks them when the listener is created and throws `WebSocketGuardUnsupported` otherwise,
 * so an upgrade of `@libp2p/websockets` that renames them fails loudly instead of silently
 * running unguarded.
 */
import type { IncomingMessage, ServerOptions as HttpServerOptions } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CreateListenerOptions, Listener, Transport, Upgrader } from '@libp2p/interface';
import { webSockets, type WebSocketsInit } from '@libp2p/websockets';
import { errorClass, ProofsyncError } from '../core/errors.ts';
import { addressBucket, withDefaults } from './limits.ts';

/** The listener's internals changed: the guard cannot be installed. */
export const WebSocketGuardUnsupported = errorClass(ProofsyncError, 'WebSocketGuardUnsupported');

/** A socket did not finish its WebSocket upgrade within the handshake deadline. */
export const HandshakeTimeout = errorClass(ProofsyncError, 'HandshakeTimeout');

/**
 * Why an inbound connection was refused or cut:
 * - `total`: the listener already holds `maxConnections` sockets;
 * - `per_ip`: the remote address (an IPv6 /64) already holds `maxConnectionsPerIp` sockets;
 * - `handshake_timeout`: no WebSocket upgrade (first byte, HTTP headers) within the deadline;
 * - `upgrade_timeout`: the libp2p upgrade (Noise, Yamux) did not finish in time;
 * - `connection_manager`: libp2p's connection manager refused it (pending upgrades, new
 *   connections per second from that address, or total connections);
 * - `gater`: the connection gater refused it;
 * - `accept_error`: the kernel's accept failed (EMFILE: out of file descriptors).
 */
export type RefusalReason = 'total' | 'per_ip' | 'handshake_timeout' | 'upgrade_timeout' | 'connection_manager' | 'gater' | 'accept_error';

export interface WebSocketGuardLimits {
  /** Open TCP sockets on the listener, handshaking or upgraded. */
  maxConnections: number;
  /** Open TCP sockets per remote IPv4 address or IPv6 /64. */
  maxConnectionsPerIp: number;
  /** From accept to a completed WebSocket upgrade (also Node's HTTP header and request timeouts). */
  handshakeTimeoutMs: number;
  /** Largest WebSocket message accepted, fragments included. */
  maxPayload: number;
  /** Largest HTTP upgrade request head. */
  maxHeaderSize: number;
}

/**
 * Defaults for a public node.
 *
 * `maxPayload`: js-libp2p sends one WebSocket message per chunk of its write buffer
 * (websocket-to-conn.js `sendData` loops `websocket.send(buf)`, nothing is concatenated), and
 * Noise appends each frame as separate chunks of at most 65,535 bytes (libp2p-noise `encrypt`).
 * Measured: 8 MiB written on one stream to a host whose `maxPayload` was lowered arrives
 * whole at 65,519 bytes and is cut at 65,518, so no js-libp2p message is larger. 128 KiB is
 * twice that, room for an implementation that writes a length and a frame in one message,
 * while what one socket can make the node buffer stays small: 1,024 sockets × 128 KiB = 128 MiB.
 *
 * `maxConnectionsPerIp` (64) is half of libp2p's pending-upgrade limit the node sets (128),
 * so one address cannot fill the pending upgrades on its own.
 */
export const DEFAULT_WS_LIMITS: WebSocketGuardLimits = {
  maxConnections: 1024,
  maxConnectionsPerIp: 64,
  handshakeTimeoutMs: 10_000,
  maxPayload: 128 * 1024,
  maxHeaderSize: 8 * 1024,
};

export interface WebSocketGuardEvents {
  /** A connection was refused or cut by a limit. */
  onRefused?(reason: RefusalReason): void;
  /** A WebSocket broke the protocol (`code` is `ws`'s, e.g. `WS_ERR_UNEXPECTED_RSV_1`); it was terminated. */
  onProtocolError?(code: string): void;
  /** Open TCP sockets on the listener changed. */
  onSockets?(open: number): void;
}

export interface GuardedWebSocketsInit extends WebSocketsInit {
  limits?: Partial<WebSocketGuardLimits>;
  events?: WebSocketGuardEvents;
}

/**
 * `webSockets()` with the listener guard installed. `http` and `https` options are forwarded;
 * the guard only fills in the HTTP timeouts and header size they leave unset.
 *
 * @example
 * const libp2p = await createLibp2p({
 *   transports: [guardedWebSockets({ limits: { maxConnectionsPerIp: 16 }, events: { onRefused: (r) => refused.inc({ reason: r }) } })],
 *   ...
 * });
 */
export function guardedWebSockets(init: GuardedWebSocketsInit = {}): ReturnType<typeof webSockets> {
  const { limits: partial, events = {}, ...wsInit } = init;
  const limits = withDefaults(DEFAULT_WS_LIMITS, partial);
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`expected ${k} to be a positive integer, got ${v}`);
  }
  // Node checks these only every `connectionsCheckingInterval` (30 s by default); the
  // per-socket deadline below is what enforces the handshake time precisely.
  const httpDefaults: HttpServerOptions = {
    headersTimeout: limits.handshakeTimeoutMs,
    requestTimeout: limits.handshakeTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize,
  };
  const forwarded: WebSocketsInit = {
    ...wsInit,
    http: { ...httpDefaults, ...wsInit.http },
    // a TLS handshake is held to the same deadline (Node's own default is 120 s)
    https: wsInit.https === undefined ? undefined : ({ ...httpDefaults, handshakeTimeout: limits.handshakeTimeoutMs, ...wsInit.https } as HttpsServerOptions),
  };
  const create = webSockets(forwarded);
  return (components) => {
    const transport: Transport = create(components);
    const createListener = transport.createListener.bind(transport);
    transport.createListener = (options: CreateListenerOptions): Listener => {
      const listener = createListener({ ...options, upgrader: guardUpgrader(options.upgrader, limits.handshakeTimeoutMs, events) });
      guardListener(listener, limits, events);
      return listener;
    };
    return transport;
  };
}

/** The parts of `ws`'s WebSocket the guard uses. */
interface WsSocket {
  on(event: 'error', listener: (err: Error & { code?: string }) => void): unknown;
  close(code?: number, reason?: string | Uint8Array): void;
  terminate(): void;
}

/** The parts of `ws`'s WebSocketServer the guard uses. */
interface WsServer {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WsSocket, req: IncomingMessage) => void): void;
  close(cb?: (err?: Error) => void): void;
}
type WsServerClass = new (options: { noServer: true; maxPayload: number; closeTimeout?: number }) => WsServer;

/** The fields of `@libp2p/websockets`' WebSocketListener the guard patches. */
interface PatchableListener {
  server: NetServer;
  wsServer: WsServer;
  close(): Promise<void>;
}

/** Throws `WebSocketGuardUnsupported` unless `listener` has the fields the guard patches. */
export function assertPatchable(listener: unknown): asserts listener is PatchableListener {
  const l = listener as Partial<PatchableListener> | null;
  const problem =
    l == null
      ? 'no listener'
      : !(l.server instanceof NetServer)
        ? '`server` is not a net.Server'
        : l.server.listeners('connection').length !== 1
          ? `\`server\` has ${l.server.listeners('connection').length} 'connection' listeners, expected 1`
          : typeof l.wsServer?.handleUpgrade !== 'function' || typeof l.wsServer.constructor !== 'function'
            ? '`wsServer` is not a ws WebSocketServer'
            : typeof l.close !== 'function'
              ? '`close` is not a function'
              : typeof (l as { onUpgrade?: unknown }).onUpgrade !== 'function'
                ? '`onUpgrade` is not a function'
                : undefined;
  if (problem) {
    throw new WebSocketGuardUnsupported(`cannot guard the @libp2p/websockets listener: ${problem}; check ws-guard.ts against the installed version`, { problem });
  }
}

const socketKey = (s: { remoteAddress?: string; remotePort?: number }): string => `${s.remoteAddress}|${s.remotePort}`;

function guardListener(listener: Listener, limits: WebSocketGuardLimits, events: WebSocketGuardEvents): void {
  assertPatchable(listener);
  const sockets = new Set<Socket>();
  const perIp = new Map<string, number>();
  /** Sockets whose WebSocket upgrade has not completed, by remote address and port. */
  const handshaking = new Map<string, { socket: Socket; timer: ReturnType<typeof setTimeout> }>();
  let closing = false;

  const refuse = (reason: RefusalReason): void => events.onRefused?.(reason);

  // Every accepted socket: counted, limited, given a deadline, then handed to the listener.
  const server = listener.server;
  const accept = server.listeners('connection')[0] as (socket: Socket) => void;
  server.removeListener('connection', accept);
  server.on('connection', (socket: Socket) => {
    const bucket = addressBucket(socket.remoteAddress);
    const fromIp = perIp.get(bucket) ?? 0;
    if (closing || sockets.size >= limits.maxConnections || fromIp >= limits.maxConnectionsPerIp) {
      if (!closing) refuse(sockets.size >= limits.maxConnections ? 'total' : 'per_ip');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    perIp.set(bucket, fromIp + 1);
    events.onSockets?.(sockets.size);
    const key = socketKey(socket);
    const timer = setTimeout(() => {
      refuse('handshake_timeout');
      // with an error, so the listener's wait for a first byte (`pEvent(socket, 'readable')`) settles
      socket.destroy(new HandshakeTimeout(`no WebSocket upgrade within ${limits.handshakeTimeoutMs} ms`));
    }, limits.handshakeTimeoutMs);
    handshaking.set(key, { socket, timer });
    // errors are the peer's (reset, timeout): the socket is gone either way, nothing to report
    socket.on('error', () => {});
    socket.once('close', () => {
      const h = handshaking.get(key);
      if (h?.socket === socket) {
        clearTimeout(h.timer);
        handshaking.delete(key);
      }
      sockets.delete(socket);
      const n = (perIp.get(bucket) ?? 1) - 1;
      if (n > 0) perIp.set(bucket, n);
      else perIp.delete(bucket);
      events.onSockets?.(sockets.size);
    });
    accept.call(server, socket);
  });
  // An accept that fails (EMFILE or ENFILE when libuv's reserve descriptor is gone too, which
  // enough open sockets cause) is emitted as 'error' on the server, which has no 'error'
  // listener once it listens: the process would end. The listener's own handler covers `listen()`.
  server.on('error', () => {
    if (server.listening) refuse('accept_error');
  });

  // The same ws class the listener was built with, with a bounded message size.
  const WsServer = listener.wsServer.constructor as WsServerClass;
  const wsServer = new WsServer({ noServer: true, maxPayload: limits.maxPayload, closeTimeout: limits.handshakeTimeoutMs });
  const handleUpgrade = wsServer.handleUpgrade.bind(wsServer);
  wsServer.handleUpgrade = (req, socket, head, cb) => {
    // the listener calls `req.destroy(err)` if the server closed meanwhile: an 'error' on req
    req.on('error', () => {});
    handleUpgrade(req, socket, head, (ws, upgradedReq) => {
      const h = handshaking.get(socketKey(upgradedReq.socket));
      if (h) {
        clearTimeout(h.timer);
        handshaking.delete(socketKey(upgradedReq.socket));
      }
      guardWebSocket(ws, events);
      cb(ws, upgradedReq);
    });
  };
  listener.wsServer = wsServer;

  const close = listener.close.bind(listener);
  listener.close = async () => {
    closing = true;
    // the listener stops its servers and destroys the sockets it tracks first (synchronously)
    const closed = close();
    for (const { timer } of handshaking.values()) clearTimeout(timer);
    handshaking.clear();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
}

/**
 * An `'error'` listener that terminates the WebSocket (the peer broke the protocol: no close
 * handshake is owed), and a `close` that terminates when `ws` refuses the code: libp2p resets
 * with `close(1006)`, a code that may not be sent, so `ws` throws and would leave the socket open.
 */
function guardWebSocket(ws: WsSocket, events: WebSocketGuardEvents): void {
  ws.on('error', (err) => {
    events.onProtocolError?.(typeof err.code === 'string' ? err.code : err.name);
    ws.terminate();
  });
  const close = ws.close.bind(ws);
  ws.close = (code, reason) => {
    try {
      close(code, reason);
    } catch {
      ws.terminate();
    }
  };
}

/**
 * Counts refused libp2p upgrades and aborts their connection at once (no close handshake).
 * The upgrade (Noise, Yamux) gets its own deadline of `timeoutMs` so that a timeout is told
 * apart from other failures: libp2p reports its own as an `EncryptionFailedError` like any
 * other. full-node.ts sets libp2p's `inboundUpgradeTimeout` a little longer, as a backstop.
 */
function guardUpgrader(upgrader: Upgrader, timeoutMs: number, events: WebSocketGuardEvents): Upgrader {
  const upgradeInbound: Upgrader['upgradeInbound'] = async (maConn, opts) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      maConn.abort(new HandshakeTimeout(`libp2p upgrade not done within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      return await upgrader.upgradeInbound(maConn, opts);
    } catch (err) {
      const name = (err as Error)?.name;
      if (timedOut) events.onRefused?.('upgrade_timeout');
      else if (name === 'ConnectionDeniedError') events.onRefused?.('connection_manager');
      else if (name === 'ConnectionInterceptedError') events.onRefused?.('gater');
      maConn.abort(err as Error);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
  return new Proxy(upgrader, {
    get(target, prop) {
      if (prop === 'upgradeInbound') return upgradeInbound;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

