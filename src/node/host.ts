/**
 * The full node's libp2p host (docs/design.md "Parts of the repository": WebSockets + WebRTC-Direct
 * listeners). Browsers reach it over `/ws` (a Worker can hold those) and `/webrtc-direct`
 * (main thread only: RTCPeerConnection; docs/design.md "Threads"). Noise, Yamux, identify, ping,
 * and gossipsub for announcements and deltas. After start the host writes its dialable
 * addresses, with `/certhash` and `/p2p`, to `DIR/addresses.json` for clients, tests and the
 * CLI.
 *
 * WebRTC-Direct's certificate is regenerated on every start (no datastore is configured), so
 * its `/certhash` changes with each restart: read addresses.json after starting.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { guardedYamux, type MuxerLimits } from './yamux-guard.ts';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import type { TopicScoreParams } from '@libp2p/gossipsub/score';
import { identify, type Identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PeerId, PrivateKey, ServiceMap } from '@libp2p/interface';
import { ping, type Ping } from '@libp2p/ping';
import { webRTCDirect } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type ConnectionManagerInit, type ServiceFactoryMap } from 'libp2p';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { guardedWebRTCDirect, type WebRTCGuardOptions } from './webrtc-guard.ts';
import { guardedWebSockets, type GuardedWebSocketsInit } from './ws-guard.ts';

/** The libp2p services a full node's host runs. */
export type HostServices = {
  /** libp2p identify: protocols and addresses exchanged on connect. */
  identify: Identify;
  /** libp2p ping. */
  ping: Ping;
  /** Gossipsub, for announcements and deltas on the database's topic. */
  pubsub: GossipSub;
};
/** The full node's libp2p node. */
export type HostNode = Libp2p<HostServices>;

/** The file in the data directory where the host writes its dialable addresses. */
export const ADDRESSES_FILE = 'addresses.json';
/** The host's listen addresses when none are given: loopback WebSockets and WebRTC-Direct on ephemeral ports. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/udp/0/webrtc-direct'];
/** Added to the default listen addresses when the host has a TLS certificate. */
export const DEFAULT_TLS_LISTEN = '/ip4/127.0.0.1/tcp/0/tls/ws';

/** The contents of `DIR/addresses.json`. */
export interface AddressesFile {
  /** The host's peer id. */
  peerId: string;
  /** Every dialable multiaddr, with `/p2p/<peer id>`. */
  addresses: string[];
  /** First plain WebSocket address (else the first secure one), or null when none listens. */
  ws: string | null;
  /** First secure WebSocket address (`/tls/ws` or `/wss`), or null without a certificate. */
  wss: string | null;
  /** First WebRTC-Direct address (with /certhash), or null. */
  webrtcDirect: string | null;
  /** A full node adds its database name, whether it is the writer, and its HTTP API's URL. */
  db?: string;
  /** Whether the full node is the writer. */
  writer?: boolean;
  /** The full node's HTTP API URL; null when disabled. */
  http?: string | null;
}

/**
 * Writes `dataDir/addresses.json` atomically (readers never see half a file).
 *
 * @example
 * await writeAddressesFile(dir, { ...host.file, http: api.url });
 */
export async function writeAddressesFile(dataDir: string, file: AddressesFile): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, ADDRESSES_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(file, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
}

/**
 * How to start a libp2p host: its directory and key, the addresses it listens on and announces,
 * TLS, and the bounds of its transports and muxer.
 *
 * @example
 * const options: HostOptions = {
 *   dataDir: dir,
 *   privateKey: await loadOrCreateIdentity(dir),
 *   listen: ['/ip4/0.0.0.0/tcp/4001/ws'],
 *   announce: ['/dns4/node.example.com/tcp/443/wss'],
 * };
 * const host = await createHost(options);
 */
export interface HostOptions {
  /** Where `addresses.json` is written. */
  dataDir: string;
  /** The host's libp2p key (its peer id); see `loadOrCreateIdentity`. */
  privateKey: PrivateKey;
  /** Listen multiaddrs; default loopback WebSockets and WebRTC-Direct on ephemeral ports. */
  listen?: string[];
  /** Multiaddrs to announce instead of the listen addresses (public IP, DNS name). */
  announce?: string[];
  /**
   * Node's libp2p default allows every address, loopback included, which local tests and
   * LAN deployments need. Pass a gater to restrict.
   */
  connectionGater?: ConnectionGater;
  /**
   * libp2p connection-manager settings. Note its default `inboundConnectionThreshold` of 5
   * new connections per second per remote IP: tests that open many clients from 127.0.0.1
   * must raise it.
   */
  connectionManager?: ConnectionManagerInit;
  /** Gossipsub: also deliver our own messages to local subscribers. Default false. */
  gossipEmitSelf?: boolean;
  /**
   * PEM certificate (chain) and private key for secure WebSockets. Given, the host also
   * listens on `DEFAULT_TLS_LISTEN` unless `listen` is set (which must then hold a `/tls/ws`
   * address for the certificate to be used).
   */
  tls?: {
    /** PEM certificate chain. */
    cert: string | Buffer;
    /** PEM private key. */
    key: string | Buffer;
  };
  /** The WebSocket listener's limits and refusal callbacks (ws-guard.ts); defaults otherwise. */
  webSockets?: GuardedWebSocketsInit;
  /** Yamux bounds (yamux-guard.ts): streams per connection, window, read buffer, refusal counting. */
  muxer?: MuxerLimits;
  /** Bounds on pending WebRTC-Direct handshakes (webrtc-guard.ts); defaults apply when absent. */
  webrtcDirect?: WebRTCGuardOptions;
  /** Gossipsub score parameters per topic (protocol/gossip-verdict.ts `databaseTopicScoreParams`). */
  gossipTopicScores?: Record<string, TopicScoreParams>;
}

/**
 * A started libp2p host: the node, its peer id and addresses, and the addresses file written.
 *
 * @example
 * const host = await createHost({ dataDir, privateKey });
 * console.log(host.peerId.toString(), host.addresses.map(String));
 * await host.stop();
 */
export interface Host {
  /** The libp2p node. */
  libp2p: HostNode;
  /** Its peer id. */
  peerId: PeerId;
  /** Its dialable multiaddrs. */
  addresses: Multiaddr[];
  /** The addresses file as written. */
  file: AddressesFile;
  /** Stops libp2p, closing every connection and listener. */
  stop(): Promise<void>;
}

const isWs = (a: string): boolean => /\/(ws|wss|tls\/ws)(\/|$)/.test(a) && !a.includes('/webrtc');
// `/tls/ws`, `/tls/sni/<name>/ws` (AutoTLS names) or the older `/wss`
const isSecureWs = (a: string): boolean => isWs(a) && /\/(wss|tls)(\/|$)/.test(a);
const isWebRTCDirect = (a: string): boolean => a.includes('/webrtc-direct/');

/**
 * Builds the addresses file from the node's current multiaddrs.
 *
 * @example
 * const file = addressesFile(libp2p.peerId, libp2p.getMultiaddrs());
 * file.ws; // '/ip4/127.0.0.1/tcp/40123/ws/p2p/12D3KooW...'
 */
export function addressesFile(peerId: PeerId, addresses: Multiaddr[]): AddressesFile {
  const strings = addresses.map((a) => a.toString());
  return {
    peerId: peerId.toString(),
    addresses: strings,
    ws: strings.find((a) => isWs(a) && !isSecureWs(a)) ?? strings.find(isSecureWs) ?? null,
    wss: strings.find(isSecureWs) ?? null,
    webrtcDirect: strings.find(isWebRTCDirect) ?? null,
  };
}

/**
 * Starts a listening host and writes `dataDir/addresses.json`.
 *
 * @example
 * const privateKey = await loadOrCreateIdentity(dir);
 * const host = await createHost({ dataDir: dir, privateKey });
 * console.log(host.file.ws, host.file.webrtcDirect);
 * await host.stop();
 */
export async function createHost(options: HostOptions): Promise<Host> {
  const listen = options.listen ?? (options.tls ? [...DEFAULT_LISTEN, DEFAULT_TLS_LISTEN] : DEFAULT_LISTEN);
  const libp2p = await createLibp2p<HostServices>({
    privateKey: options.privateKey,
    addresses: { listen, announce: options.announce },
    transports: [
      guardedWebSockets(options.tls ? { ...options.webSockets, https: { cert: options.tls.cert, key: options.tls.key } } : options.webSockets),
      guardedWebRTCDirect(options.webrtcDirect),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [guardedYamux(options.muxer)],
    connectionGater: options.connectionGater,
    connectionManager: options.connectionManager,
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        emitSelf: options.gossipEmitSelf ?? false,
        allowPublishToZeroTopicPeers: true,
        ...(options.gossipTopicScores ? { scoreParams: { topics: options.gossipTopicScores } } : {}),
      }),
    },
  });
  try {
    // with `announce`, libp2p reports exactly the announced addresses, however many listen
    const addresses = await listenAddresses(libp2p, options.announce?.length || listen.length);
    const file = addressesFile(libp2p.peerId, addresses);
    await writeAddressesFile(options.dataDir, file);
    return { libp2p, peerId: libp2p.peerId, addresses, file, stop: async () => { await libp2p.stop(); } };
  } catch (err) {
    await libp2p.stop();
    throw err;
  }
}

/**
 * The node's multiaddrs once each listener has reported one. createLibp2p resolves after the
 * listeners are bound, so this normally returns at once; it waits on `self:peer:update`
 * otherwise, with a deadline.
 */
async function listenAddresses(libp2p: HostNode, listeners: number, timeoutMs = 10_000): Promise<Multiaddr[]> {
  const ready = (): boolean => libp2p.getMultiaddrs().length >= listeners;
  if (!ready()) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        libp2p.removeEventListener('self:peer:update', check);
        reject(new Error(`listeners reported ${libp2p.getMultiaddrs().length} of ${listeners} addresses within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        libp2p.removeEventListener('self:peer:update', check);
        resolve();
      };
      libp2p.addEventListener('self:peer:update', check);
    });
  }
  return libp2p.getMultiaddrs();
}

/** The libp2p services of a dialing-only Node client. */
export type ClientServices = {
  /** libp2p identify. */
  identify: Identify;
  /** libp2p ping. */
  ping: Ping;
};
/** A non-listening Node libp2p node, as `createClientNode` makes it. */
export type ClientNode = Libp2p<ClientServices>;

/**
 * A non-listening Node libp2p for dialing hosts (tests, the CLI's fetch-range). Transport
 * addresses are not gated: Node's default gater allows loopback and `ws://`.
 *
 * @example
 * const client = await createClientNode();
 * const res = await request(client, multiaddr(file.ws), '/proofsync/1/heads', req, { maxResponseBytes: 1 << 16 });
 * await client.stop();
 */
export async function createClientNode(options?: { privateKey?: PrivateKey }): Promise<ClientNode>;
/** The same node with `services` in place of identify and ping (a test's gossip subscriber). */
export async function createClientNode<S extends ServiceMap>(options: { privateKey?: PrivateKey; services: ServiceFactoryMap<S> }): Promise<Libp2p<S>>;
export async function createClientNode(options: { privateKey?: PrivateKey; services?: ServiceFactoryMap } = {}): Promise<Libp2p> {
  return createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [] },
    transports: [webSockets(), webRTCDirect()],
    connectionEncrypters: [noise()],
    // a server may be hostile too: the same frame guard as the node's
    streamMuxers: [guardedYamux()],
    services: options.services ?? { identify: identify(), ping: ping() },
  });
}
