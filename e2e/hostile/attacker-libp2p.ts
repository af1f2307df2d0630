/**
 * A hostile libp2p peer for tests and benchmarks: a real js-libp2p node (WebSockets, Noise,
 * plain unguarded Yamux) that opens `/proofsync/1/*` streams and writes whatever bytes it is
 * told to, plus raw Yamux frames under the muxer (a data frame declaring any length), and the
 * probes the hostile suites check after each attack class: the node process alive, its RSS,
 * its Prometheus counters, and an honest verified range proof.
 *
 * @example
 * const attacker = await createAttacker();
 * const stream = await attacker.open(addr, RANGE_PROTOCOL);
 * stream.send(Uint8Array.of(0x80)); // a truncated varint
 * await attacker.stop();
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Libp2p, Stream, StreamMuxer, StreamMuxerFactory } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { webSockets } from '@libp2p/websockets';
import type { Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { readFileSync } from 'node:fs';
import { Uint8ArrayList } from 'uint8arraylist';
import { toHex } from '../../src/core/bytes.ts';
import { verifyRangeProof } from '../../src/core/proof.ts';
import { encodeRangeProofResponse } from '../../src/protocol/codec.ts';
import { fetchHeads, fetchRangeProof } from '../../src/protocol/client.ts';
import { createClientNode } from '../../src/node/host.ts';

/** Yamux's wire: a 12-byte header (version 0, type, flags, stream id, length; big-endian). */
export const YAMUX_DATA = 0;
export const YAMUX_SYN = 1;

export interface Attacker {
  libp2p: Libp2p;
  /** Opens a stream on `protocol` (a fresh connection unless one is open). */
  open(addr: Multiaddr, protocol: string): Promise<Stream>;
  /**
   * Writes a Yamux data frame header declaring `length` bytes on a new stream of the open
   * connection to `addr`, then up to `send` bytes of its body in 64 KiB pieces while the
   * connection stays open. Resolves with the body bytes the transport accepted.
   */
  hugeFrame(addr: Multiaddr, length: number, send: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts the attacking peer. `maxOutboundStreams` is high so the node's limits, not ours,
 * decide how many streams live.
 */
export async function createAttacker(): Promise<Attacker> {
  const muxers: StreamMuxer[] = [];
  // record each muxer the attacker creates, to write raw frames under it
  const recording = (): StreamMuxerFactory => {
    const factory = yamux({ maxOutboundStreams: 10_000, enableKeepAlive: false })();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn) => {
      const m = create(maConn);
      muxers.push(m);
      return m;
    };
    return factory;
  };
  const libp2p = await createLibp2p({
    addresses: { listen: [] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [recording],
    connectionManager: { maxConnections: 1000 },
  });
  return {
    libp2p,
    open: (addr, protocol) => libp2p.dialProtocol(addr, protocol, { signal: AbortSignal.timeout(10_000) }),
    hugeFrame: async (addr, length, send) => {
      const known = muxers.length;
      const conn = await libp2p.dial(addr, { signal: AbortSignal.timeout(10_000) });
      // a new connection made a new muxer; a reused one is the open muxer made last
      const muxer = muxers.length > known ? muxers.at(-1)! : muxers.findLast((m) => m.status === 'open')!;
      const raw = muxer as unknown as { nextStreamID: number; send(data: Uint8ArrayList | Uint8Array): boolean; status: string };
      const id = raw.nextStreamID;
      raw.nextStreamID += 2;
      const header = new Uint8Array(12);
      const view = new DataView(header.buffer);
      view.setUint8(1, YAMUX_DATA);
      view.setUint16(2, YAMUX_SYN);
      view.setUint32(4, id);
      view.setUint32(8, length);
      raw.send(header);
      let sent = 0;
      const piece = new Uint8Array(64 * 1024);
      while (sent < send && conn.status === 'open') {
        try {
          if (!raw.send(piece)) await new Promise((resolve) => setTimeout(resolve, 5));
        } catch {
          break;
        }
        sent += piece.length;
        // let the node's answer (GoAway, close) arrive between pieces
        if (sent % (1 << 20) === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      return sent;
    },
    stop: async () => {
      await libp2p.stop();
    },
  };
}

/** A stream's outcome: the first frame it received (raw bytes), or how it ended without one. */
export interface StreamOutcome {
  bytes: number;
  /** 'closed' (remote closed its end), 'reset' (with an error), or 'open' (still open at the deadline). */
  end: 'closed' | 'reset' | 'open';
  data: Uint8Array;
}

/** Collects what `stream` receives until it ends or `timeoutMs` passes (then aborts it). */
export function outcome(stream: Stream, timeoutMs: number): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const buf = new Uint8ArrayList();
    let settled = false;
    const done = (end: StreamOutcome['end']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (end === 'open') stream.abort(new Error('test deadline'));
      resolve({ bytes: buf.byteLength, end, data: buf.subarray() });
    };
    const timer = setTimeout(() => done('open'), timeoutMs);
    stream.addEventListener('message', (evt) => buf.append(evt.data));
    stream.addEventListener('remoteCloseWrite', () => done('closed'));
    stream.addEventListener('close', (evt) => done(evt.error ? 'reset' : 'closed'));
    if (stream.status !== 'open') done('closed');
    // the remote may have answered and closed before we listened: take what was buffered
    else if (stream.remoteWriteStatus === 'closed') setTimeout(() => done('closed'), 0);
  });
}

/** The node process's resident set (VmRSS), in MB. */
export function rssMB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) / 1024;
}

/** True while process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sum of a Prometheus counter's samples whose labels include every `labels` pair. */
export async function counter(httpUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const got = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[2]);
  }
  return sum;
}

/**
 * An honest client's verified range proof from a fresh libp2p node: the writer's signed head
 * (checked against its peer id), then the first `keyLimit` keys proven against its root.
 * Returns the proof's wire encoding in hex, to compare before and after an attack.
 */
export async function honestRangeProof(addr: Multiaddr, writerPeerId: string, keyLimit = 256): Promise<string> {
  const writerKey = peerIdFromString(writerPeerId).publicKey!.raw;
  const client = await createClientNode();
  try {
    const ann = await fetchHeads(client, addr, { writerPublicKey: writerKey, timeoutMs: 20_000 });
    const req = { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit, bytesLimit: 1 << 20 };
    const proof = await fetchRangeProof(client, addr, req, { timeoutMs: 20_000 });
    verifyRangeProof(proof, { root: ann.stateRoot, start: undefined, end: undefined, keyLimit });
    return toHex(encodeRangeProofResponse({ type: 'rangeProof', proof }));
  } finally {
    await client.stop();
  }
}
