/**
 * `proofsync node | put | fetch-range`: run a full node, write to it through its HTTP
 * API, and fetch a range proof from any node over libp2p and verify it (the `curl` of
 * proofsync: its JSON is `verify-range`'s, plus the root it checked against).
 *
 * One file: the three commands share the argument helpers, and `proofsync node`'s usage text
 * sits next to the parsing of each flag it lists, so a new limit is added in one place.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { compareBytes, toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { ProofsyncError } from '../core/errors.ts';
import { nextKey } from '../core/next-key.ts';
import { verifyRangeProof } from '../core/proof.ts';
import { MemoryStore } from '../core/store.ts';
import type { KeyValue } from '../core/types.ts';
import { createClientNode, ADDRESSES_FILE, type AddressesFile } from '../node/host.ts';
import { startFullNode } from '../node/full-node.ts';
import { DEFAULT_CONNECTION_LIMITS, type Progress } from '../node/full-node-options.ts';
import { TOKEN_FILE } from '../node/token.ts';
import { fetchHeads, fetchRangeProof } from '../protocol/client.ts';
import { guardPeerGone } from '../node/peer-gone.ts';
import { leaveNativeWebRTCToExit } from '../node/webrtc-guard.ts';
import { registerCommands } from './main.ts';
import { hexArg, intArg, kvJson, printJson, UsageError } from './io.ts';
import { tlsArgs } from './tls-args.ts';

function args<T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function countArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Progress on a terminal: one rewritten line; otherwise a log line per phase step. */
function progressPrinter(): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  let lastLogged = '';
  return (p) => {
    const pct = p.total ? ` ${Math.floor((p.done / p.total) * 100)}%` : '';
    const unit = p.phase === 'load' || p.phase === 'copy' ? ' records' : p.phase === 'log' ? ' operations' : p.phase === 'commit' ? ' commits' : ' key-values';
    const line = `${p.phase}: ${p.done.toLocaleString('en')}${p.total ? `/${p.total.toLocaleString('en')}` : ''}${unit}${pct}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K${p.total && p.done >= p.total ? '\n' : ''}`);
    else {
      // a line per tenth of a known total, else per 500,000 items
      const step = `${p.phase}${p.total ? Math.floor((p.done / p.total) * 10) : Math.floor(p.done / 500_000)}`;
      if (step !== lastLogged) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      lastLogged = step;
    }
  };
}

/** `--peer-rate BURST:PER_SECOND`. */
function rateArg(value: string | undefined): { burst: number; perSecond: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+):(\d+(?:\.\d+)?)$/.exec(value);
  if (!m) throw new UsageError(`--peer-rate must be BURST:PER_SECOND, got ${JSON.stringify(value)}`);
  return { burst: Number(m[1]), perSecond: Number(m[2]) };
}

const L = DEFAULT_CONNECTION_LIMITS;
const NODE_USAGE = `usage: proofsync node --data DIR [options]

Inbound connection limits (a refusal counts in proofsync_connections_refused_total{reason}):
  --max-connections N         open connections, handshaking or not (default ${L.maxConnections})
  --max-connections-per-ip N  open WebSocket connections per IPv4 address or IPv6 /64 (default ${L.maxConnectionsPerIp})
  --max-pending-handshakes N  libp2p upgrades (Noise, Yamux) in progress (default ${L.maxPendingHandshakes})
  --handshake-timeout MS      to finish the WebSocket upgrade, and again the libp2p upgrade (default ${L.handshakeTimeoutMs})
  --connection-rate-per-ip N  new connections per second per IP address (default 100)

Stream limits (a refusal counts in proofsync_streams_refused_total or proofsync_muxer_refused_total):
  --conn-streams N            Yamux inbound streams per connection (default 128)
  --stream-window BYTES       largest Yamux receive window and data frame (default 4 MiB, at least 256 KiB)
  --stream-buffer BYTES       unread bytes per stream before it is reset (default 1 MiB)
  --protocol-streams N        streams per protocol per connection (default 32)
  --peer-streams N            proof requests in flight per peer (default 8)
  --peer-rate BURST:PER_SEC   request rate per peer (default 200:100)

Proof cache (range-proof answers at checkpoint roots, shared by all peers; proofsync_proof_cache_*):
  --proof-cache-bytes BYTES   answers kept, least recently used leave first (default 64 MiB; 0 disables)
  --proof-cache-any-root      keep answers at every root, not only checkpoints (benchmarks)

WebRTC-Direct handshakes (refusals count in proofsync_webrtc_direct_handshakes_refused_total):
  --webrtc-pending N          handshakes in flight (default 64)
  --webrtc-pending-per-ip N   handshakes in flight per remote IP address (default 16)
  --webrtc-handshake-timeout MS  (default 5000)

HTTP API limits (refusals count in proofsync_http_errors_total):
  --http-max-body BYTES       request body (default 8 MiB)
  --http-headers-timeout MS   (default 10000)   --http-request-timeout MS (default 30000)

Other options: --listen MA --announce MA --generate N --generate-log N --generate-log-keys K
  --seed N --simulate-writes PER_SEC --http-port PORT --no-http --token T --db NAME --replica
  --history N --serve-timeout MS --stop-timeout MS (libp2p's share of a stop, default 5000)
  --follow WRITER_PEER_ID --bootstrap MA --max-gap N --pending-timeout MS --misbehave
`;
/**
 * Yamux bounds (yamux-guard.ts): `--conn-streams N` inbound streams per connection (default
 * 128), `--stream-window BYTES` largest receive window and data frame (default 4 MiB, at least
 * 256 KiB), `--stream-buffer BYTES` unread bytes per stream before a reset (default 1 MiB).
 */
function muxerLimits(o: { 'conn-streams'?: string; 'stream-window'?: string; 'stream-buffer'?: string }): { maxInboundStreams?: number; maxStreamWindowSize?: number; maxReadBufferLength?: number } {
  const window = o['stream-window'] === undefined ? undefined : intArg(o['stream-window'], 'stream-window', 0);
  if (window !== undefined && (window < 256 * 1024 || window > 2 ** 32 - 1)) throw new UsageError(`--stream-window must be between 262144 and 4294967295 bytes, got ${window}`);
  return {
    maxInboundStreams: o['conn-streams'] === undefined ? undefined : intArg(o['conn-streams'], 'conn-streams', 0),
    maxStreamWindowSize: window,
    maxReadBufferLength: o['stream-buffer'] === undefined ? undefined : intArg(o['stream-buffer'], 'stream-buffer', 0),
  };
}

async function runNode(argv: string[]): Promise<number> {
  const o = args(argv, {
    data: { type: 'string' },
    listen: { type: 'string', multiple: true },
    announce: { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    generate: { type: 'string' },
    'generate-log': { type: 'string' },
    'generate-log-keys': { type: 'string' },
    seed: { type: 'string' },
    'simulate-writes': { type: 'string' },
    'http-port': { type: 'string' },
    'no-http': { type: 'boolean' },
    token: { type: 'string' },
    db: { type: 'string' },
    replica: { type: 'boolean' },
    history: { type: 'string' },
    'peer-streams': { type: 'string' },
    'proof-cache-bytes': { type: 'string' },
    'proof-cache-any-root': { type: 'boolean' },
    'peer-rate': { type: 'string' },
    'serve-timeout': { type: 'string' },
    'protocol-streams': { type: 'string' },
    'conn-streams': { type: 'string' },
    'stream-window': { type: 'string' },
    'stream-buffer': { type: 'string' },
    'http-max-body': { type: 'string' },
    'http-headers-timeout': { type: 'string' },
    'http-request-timeout': { type: 'string' },
    follow: { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
    'max-gap': { type: 'string' },
    'pending-timeout': { type: 'string' },
    misbehave: { type: 'boolean' },
    'max-connections': { type: 'string' },
    'max-connections-per-ip': { type: 'string' },
    'max-pending-handshakes': { type: 'string' },
    'handshake-timeout': { type: 'string' },
    'connection-rate-per-ip': { type: 'string' },
    help: { type: 'boolean' },
    'webrtc-pending': { type: 'string' },
    'webrtc-pending-per-ip': { type: 'string' },
    'webrtc-handshake-timeout': { type: 'string' },
    'stop-timeout': { type: 'string' },
  });
  if (o.help) {
    process.stdout.write(NODE_USAGE);
    return 0;
  }
  if (!o.data) throw new UsageError('--data DIR is required');
  const tls = tlsArgs(o['tls-cert'], o['tls-key'], o.listen);
  if (o.follow !== undefined) {
    try {
      if (peerIdFromString(o.follow).publicKey?.type !== 'Ed25519') throw new Error('not an Ed25519 key');
    } catch (err) {
      throw new UsageError(`--follow must be the writer's Ed25519 peer id: ${(err as Error).message}`);
    }
    if (!o.bootstrap?.length) throw new UsageError('--follow needs at least one --bootstrap MULTIADDR');
    for (const a of o.bootstrap) {
      try {
        multiaddr(a);
      } catch (err) {
        throw new UsageError(`--bootstrap: ${(err as Error).message}`);
      }
    }
    if (o['simulate-writes'] !== undefined || o.generate !== undefined || o['generate-log'] !== undefined) {
      throw new UsageError('--follow cannot be combined with --generate, --generate-log or --simulate-writes');
    }
  } else if (o.bootstrap?.length) throw new UsageError('--bootstrap is only used with --follow WRITER_PEER_ID');
  const simulate = o['simulate-writes'] === undefined ? undefined : Number(o['simulate-writes']);
  if (simulate !== undefined && !(simulate > 0)) throw new UsageError('--simulate-writes must be a positive number of commits per second');
  const onProgress = progressPrinter();
  // a peer that hangs up mid-stream must never take the node down (see peer-gone.ts)
  guardPeerGone((line) => process.stderr.write(`${line}\n`));
  // Signals are taken from the start: one that arrives while the node starts (a long
  // --generate) stops it as soon as it is up, never half-way through a bulk load.
  let signalled: string | undefined;
  let onStopRequest: (() => void) | undefined;
  const onSignal = (sig: string): void => {
    if (signalled) return;
    signalled = sig;
    process.stderr.write(`${sig}: stopping\n`);
    onStopRequest?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const node = await startFullNode({
    dataDir: o.data,
    listen: o.listen,
    announce: o.announce,
    tls: tls && { cert: tls.cert, key: tls.key },
    generate: countArg(o.generate, 'generate'),
    generateLog: o['generate-log'] === undefined ? undefined : { commits: countArg(o['generate-log'], 'generate-log')!, keys: countArg(o['generate-log-keys'], 'generate-log-keys') || undefined },
    seed: countArg(o.seed, 'seed'),
    simulateWritesPerSec: simulate,
    httpPort: o['no-http'] ? null : (countArg(o['http-port'], 'http-port') ?? 0),
    token: o.token,
    db: o.db,
    writer: !o.replica,
    follow:
      o.follow === undefined
        ? undefined
        : {
            writer: o.follow,
            bootstrap: o.bootstrap ?? [],
            maxGap: o['max-gap'] === undefined ? undefined : intArg(o['max-gap'], 'max-gap', 10_000),
            pendingTimeoutMs: o['pending-timeout'] === undefined ? undefined : intArg(o['pending-timeout'], 'pending-timeout', 10_000),
          },
    misbehave: o.misbehave,
    historySize: o.history === undefined ? undefined : intArg(o.history, 'history', 300),
    limits: {
      maxConcurrentPerPeer: o['peer-streams'] === undefined ? undefined : intArg(o['peer-streams'], 'peer-streams', 8),
      ratePerPeer: rateArg(o['peer-rate']),
      timeoutMs: o['serve-timeout'] === undefined ? undefined : intArg(o['serve-timeout'], 'serve-timeout', 10_000),
      maxInboundStreams: o['protocol-streams'] === undefined ? undefined : intArg(o['protocol-streams'], 'protocol-streams', 32),
    },
    proofCache: {
      maxBytes: countArg(o['proof-cache-bytes'], 'proof-cache-bytes'),
      anyRoot: o['proof-cache-any-root'] ?? false,
    },
    muxer: muxerLimits(o),
    http: {
      maxBodyBytes: o['http-max-body'] === undefined ? undefined : intArg(o['http-max-body'], 'http-max-body', 0),
      headersTimeoutMs: o['http-headers-timeout'] === undefined ? undefined : intArg(o['http-headers-timeout'], 'http-headers-timeout', 0),
      requestTimeoutMs: o['http-request-timeout'] === undefined ? undefined : intArg(o['http-request-timeout'], 'http-request-timeout', 0),
    },
    connections: {
      maxConnections: o['max-connections'] === undefined ? undefined : intArg(o['max-connections'], 'max-connections', 1),
      maxConnectionsPerIp: o['max-connections-per-ip'] === undefined ? undefined : intArg(o['max-connections-per-ip'], 'max-connections-per-ip', 1),
      maxPendingHandshakes: o['max-pending-handshakes'] === undefined ? undefined : intArg(o['max-pending-handshakes'], 'max-pending-handshakes', 1),
      handshakeTimeoutMs: o['handshake-timeout'] === undefined ? undefined : intArg(o['handshake-timeout'], 'handshake-timeout', 1),
    },
    inboundConnectionThreshold: o['connection-rate-per-ip'] === undefined ? undefined : intArg(o['connection-rate-per-ip'], 'connection-rate-per-ip', 1),
    stopTimeoutMs: o['stop-timeout'] === undefined ? undefined : intArg(o['stop-timeout'], 'stop-timeout', 5_000),
    webrtcDirect: {
      maxPending: o['webrtc-pending'] === undefined ? undefined : intArg(o['webrtc-pending'], 'webrtc-pending', 64),
      maxPendingPerIp: o['webrtc-pending-per-ip'] === undefined ? undefined : intArg(o['webrtc-pending-per-ip'], 'webrtc-pending-per-ip', 16),
      handshakeTimeoutMs: o['webrtc-handshake-timeout'] === undefined ? undefined : intArg(o['webrtc-handshake-timeout'], 'webrtc-handshake-timeout', 5_000),
    },
    onProgress,
    log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  const s = node.status();
  const lines = [
    `peer id   ${node.peerId}`,
    `database  ${node.db} (${s.writer ? 'writer' : s.replica ? `replica of ${s.replica.writer}` : 'replica'}), root ${s.root}, seq ${s.seq ?? '-'}, log ${s.logSize}`,
    ...node.file.addresses.map((a) => `listening ${a}`),
    ...(tls ? [`tls       ${tls.summary}`] : []),
    `http      ${node.httpUrl ?? 'off'}`,
    `addresses ${join(o.data, ADDRESSES_FILE)}`,
    `ready ${node.peerId}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve) => {
    onStopRequest = resolve;
    if (signalled) resolve();
  });
  let code = 0;
  try {
    leaveNativeWebRTCToExit();
    await node.stop();
  } catch (err) {
    process.stderr.write(`stop failed: ${(err as Error).message}\n`);
    code = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (code === 0) {
    // what a restart must serve: scripts and tests compare it with the restarted node's heads
    const end = node.status();
    process.stdout.write(`stopped root ${end.root} seq ${end.seq ?? '-'}\n`);
  }
  // The store is closed and the last line written (stdout and stderr are synchronous for files
  // and pipes on Linux). Exit now rather than when the event loop drains: the WebRTC-Direct mux
  // was left open (leaveNativeWebRTCToExit), and a drained loop would run node-datachannel's
  // finalizers, which close it and race its threads all the same.
  process.exit(code);
  return code;
}

async function put(argv: string[]): Promise<number> {
  const o = args(argv, {
    data: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
    key: { type: 'string' },
    value: { type: 'string' },
    delete: { type: 'boolean' },
  });
  const key = hexArg(o.key, 'key');
  if (!key) throw new UsageError('--key HEX is required');
  const value = hexArg(o.value, 'value');
  if (!o.delete && value === undefined) throw new UsageError('--value HEX is required (or --delete)');
  if (o.delete && value !== undefined) throw new UsageError('--delete takes no --value');
  let url = o.url;
  let token = o.token ?? process.env.PROOFSYNC_TOKEN;
  if (o.data) {
    const file = JSON.parse(await readFile(join(o.data, ADDRESSES_FILE), 'utf8')) as AddressesFile;
    url ??= file.http ?? undefined;
    token ??= (await readFile(join(o.data, TOKEN_FILE), 'utf8')).trim();
  }
  if (!url) throw new UsageError('--data DIR or --url URL is required');
  if (!token) throw new UsageError('--token TOKEN (or PROOFSYNC_TOKEN) is required with --url');
  const body = o.delete ? { deletes: [toHex(key)] } : { puts: [{ key: toHex(key), value: toHex(value!) }] };
  const res = await fetch(`${url.replace(/\/$/, '')}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  return res.ok ? 0 : 1;
}

/** The next key to ask for after this proof, as `verify-range` computes it. */
async function nextAfter(kvs: KeyValue[], end: Uint8Array | undefined, endProof: Parameters<typeof nextKey>[2]): Promise<string | null> {
  const last = kvs.at(-1)?.key;
  if (!last) return null;
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.bulkLoad([...kvs].sort((a, b) => compareBytes(a.key, b.key)));
  const k = await nextKey(last, end, endProof, (path) => db.trie.view().proofPath(path));
  return k ? toHex(k) : null;
}

const isSecureWebSocket = (ma: Multiaddr): boolean => /\/(wss|tls)(\/|$)/.test(ma.toString());

/** The raw Ed25519 public key a peer id embeds (writers sign with Ed25519). */
function ed25519Key(peerId: string, flag: string): Uint8Array {
  let key: Uint8Array | undefined;
  try {
    const id = peerIdFromString(peerId);
    key = id.type === 'Ed25519' ? id.publicKey.raw : undefined;
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  if (key?.length !== 32) throw new UsageError(`${flag}: the peer id ${peerId} does not embed an Ed25519 public key`);
  return key;
}

async function fetchRange(argv: string[]): Promise<number> {
  const o = args(argv, {
    peer: { type: 'string' },
    writer: { type: 'string' },
    root: { type: 'string' },
    start: { type: 'string' },
    end: { type: 'string' },
    'key-limit': { type: 'string' },
    'byte-limit': { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!o.peer) throw new UsageError('--peer MULTIADDR is required');
  let addr: Multiaddr;
  try {
    addr = multiaddr(o.peer);
  } catch (err) {
    throw new UsageError(`--peer: ${(err as Error).message}`);
  }
  const peerIdText = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
  if (!peerIdText) throw new UsageError('--peer must end in /p2p/<peer id>');
  // A replica relays the writer's signed announcement: the key to check is the writer's, which
  // is the peer's own only when the peer is the writer.
  const writer = o.writer ?? peerIdText;
  const writerKey = ed25519Key(writer, o.writer === undefined ? '--peer' : '--writer');
  let root = hexArg(o.root, 'root');
  if (root && root.length !== 32) throw new UsageError('--root must be 32 bytes of hex');
  const start = hexArg(o.start, 'start');
  const end = hexArg(o.end, 'end');
  const keyLimit = intArg(o['key-limit'], 'key-limit', 2048);
  const bytesLimit = intArg(o['byte-limit'], 'byte-limit', 2 * 1024 * 1024 - 4096);
  const timeoutMs = intArg(o.timeout, 'timeout', 30_000);
  const node = await createClientNode();
  try {
    try {
      let seq: number | undefined;
      if (!root) {
        const ann = await fetchHeads(node, addr, { writerPublicKey: writerKey, timeoutMs });
        root = ann.stateRoot;
        seq = ann.seq;
      }
      const proof = await fetchRangeProof(node, addr, { rootHash: root, startKey: start, endKey: end, keyLimit, bytesLimit }, { timeoutMs });
      verifyRangeProof(proof, { root, start, end, keyLimit });
      printJson({
        ok: true,
        keyValues: proof.keyValues.map(kvJson),
        nextKey: await nextAfter(proof.keyValues, end, proof.endProof),
        root: toHex(root),
        ...(seq === undefined ? {} : { seq, writer }),
      });
      return 0;
    } catch (err) {
      if (err instanceof ProofsyncError) {
        printJson({ ok: false, error: err.name, message: err.message });
        return 1;
      }
      // A failed WebSocket dial surfaces as an error Event with no message (Node's WebSocket
      // says neither "refused" nor "untrusted certificate"): name the likely causes instead.
      if (err instanceof Event && err.type === 'error') {
        const tlsHint = isSecureWebSocket(addr) ? ', or its TLS certificate is not trusted here (a private CA: NODE_EXTRA_CA_CERTS=FILE)' : '';
        throw new Error(`could not open a WebSocket to ${o.peer}: nothing listens there${tlsHint}`, { cause: err });
      }
      throw err;
    }
  } finally {
    await node.stop();
  }
}

export const nodeCommands = { node: runNode, put, 'fetch-range': fetchRange };
registerCommands(nodeCommands, {
  node: 'node --data DIR [--listen MA]... [--announce MA]... [--tls-cert FILE --tls-key FILE] [--generate N] [--follow WRITER_ID --bootstrap MA]... (README: "The full node")',
  put: 'put (--data DIR | --url URL --token T) --key HEX (--value HEX | --delete)',
  'fetch-range': 'fetch-range --peer MA/p2p/ID [--writer WRITER_ID] [--root HEX] [--start HEX] [--end HEX] [--key-limit N] [--byte-limit N] [--timeout MS]',
});
