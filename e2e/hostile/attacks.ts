/**
 * Attack generators shared by the hostile-traffic tests and `npm run bench -- hostile`: idle
 * TCP sockets, slow-loris HTTP upgrade headers, garbage on libp2p streams, and STUN datagrams
 * (random, truncated, and well-formed binding requests with fresh ufrags) for the WebRTC-Direct
 * UDP port. Every generator returns a handle whose `close()` releases what it opened.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { ClientNode } from '../../src/node/host.ts';

/** Host and port of a `/ip4/H/tcp/P/...` or `/ip4/H/udp/P/...` multiaddr string. */
export function hostPort(addr: string): { host: string; port: number } {
  const m = /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(addr);
  if (!m) throw new TypeError(`not an IP multiaddr with a port: ${addr}`);
  return { host: m[1], port: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------------
// STUN (RFC 5389) by hand: the 20-byte header, then type-length-value attributes padded to 4.

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_FINGERPRINT = 0x8028;
const ATTR_PRIORITY = 0x0024;
const ATTR_ICE_CONTROLLING = 0x802a;
const FINGERPRINT_XOR = 0x5354554e;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function attribute(type: number, value: Uint8Array): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  padded.set(value, 4);
  return padded;
}

function header(length: number, transactionId: Uint8Array): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(BINDING_REQUEST, 0);
  h.writeUInt16BE(length, 2);
  h.writeUInt32BE(MAGIC_COOKIE, 4);
  h.set(transactionId, 8);
  return h;
}

/**
 * A WebRTC-Direct client's first datagram: a STUN binding request whose USERNAME is
 * `ufrag:ufrag` and whose MESSAGE-INTEGRITY is keyed with the ufrag (WebRTC-Direct reuses the
 * ufrag as the ICE password, so the server can check it without signalling), then FINGERPRINT.
 * The ufrag must be 22–256 characters of `[A-Za-z0-9+/]` for the listener to act on it.
 *
 * @example
 * socket.send(stunBindingRequest(freshUfrag()), port, host);
 */
export function stunBindingRequest(ufrag: string): Buffer {
  const tid = randomBytes(12);
  const attrs: Buffer[] = [
    attribute(ATTR_USERNAME, Buffer.from(`${ufrag}:${ufrag}`)),
    attribute(ATTR_PRIORITY, Buffer.from([0x6e, 0x7f, 0x1e, 0xff])),
    attribute(ATTR_ICE_CONTROLLING, randomBytes(8)),
  ];
  // MESSAGE-INTEGRITY covers the header with a length that already counts the attribute itself
  let body = Buffer.concat(attrs);
  const hmac = createHmac('sha1', ufrag)
    .update(Buffer.concat([header(body.length + 24, tid), body]))
    .digest();
  body = Buffer.concat([body, attribute(ATTR_MESSAGE_INTEGRITY, hmac)]);
  // FINGERPRINT likewise, over everything before it
  const crc = (crc32(Buffer.concat([header(body.length + 8, tid), body])) ^ FINGERPRINT_XOR) >>> 0;
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE(crc, 0);
  body = Buffer.concat([body, attribute(ATTR_FINGERPRINT, fp)]);
  return Buffer.concat([header(body.length, tid), body]);
}

const UFRAG_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh valid ufrag, as a browser would pick: `libp2p+webrtc+v1/` and 32 random characters. */
export function freshUfrag(): string {
  const r = randomBytes(32);
  return `libp2p+webrtc+v1/${Array.from(r, (b) => UFRAG_CHARS[b % UFRAG_CHARS.length]).join('')}`;
}

/** Datagrams that are not valid STUN: random bytes, and binding requests cut short at every length class. */
export function malformedStunDatagrams(count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    switch (i % 5) {
      case 0:
        out.push(randomBytes(1 + (i % 1200)));
        break;
      case 1: {
        const full = stunBindingRequest(freshUfrag());
        out.push(full.subarray(0, 1 + (i % (full.length - 1))));
        break;
      }
      case 2: {
        // a valid header that claims more attributes than follow
        const full = stunBindingRequest(freshUfrag());
        full.writeUInt16BE(0xfffc, 2);
        out.push(full);
        break;
      }
      case 3: {
        // USERNAME whose ufrag is not an ICE credential (too short, bad characters)
        const bad = i % 2 ? 'ab:ab' : `${'é'.repeat(40)}:x`;
        const body = attribute(ATTR_USERNAME, Buffer.from(bad));
        out.push(Buffer.concat([header(body.length, randomBytes(12)), body]));
        break;
      }
      default: {
        // an attribute whose length runs past the datagram
        const body = Buffer.from([0x00, 0x06, 0xff, 0xff, 0x61, 0x62, 0x63, 0x64]);
        out.push(Buffer.concat([header(body.length, randomBytes(12)), body]));
      }
    }
  }
  return out;
}

export interface StunFlood {
  /** Datagrams sent so far. */
  sent(): number;
  /** Resolves when `count` datagrams have been sent (or the flood was closed). */
  done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Sends `count` datagrams to `host:port` from `sockets` UDP sockets (each its own source port),
 * `perTick` at a time with a yield between, so the sender does not drop its own datagrams.
 * `make(i)` builds datagram `i`; by default a binding request with a fresh ufrag. `sources`
 * binds the sockets to these local addresses in turn (e.g. 127.0.0.2, 127.0.0.3, ...).
 *
 * @example
 * const flood = stunFlood('127.0.0.1', port, { count: 4000 });
 * await flood.done;
 * await flood.close();
 */
export function stunFlood(
  host: string,
  port: number,
  o: { count: number; sockets?: number; perTick?: number; make?: (i: number) => Buffer; sources?: string[] } = { count: 1000 },
): StunFlood {
  const sockets: UdpSocket[] = Array.from({ length: o.sockets ?? 8 }, (_, k) => {
    const s = createSocket('udp4');
    // several loopback source addresses (127.0.0.0/8 all reach the node) look like several hosts
    if (o.sources?.length) s.bind({ address: o.sources[k % o.sources.length], port: 0 });
    s.on('error', () => {}); // ICMP port unreachable after the node stops is expected
    s.on('message', () => {}); // binding responses: read and dropped
    return s;
  });
  const make = o.make ?? (() => stunBindingRequest(freshUfrag()));
  let sent = 0;
  let closed = false;
  const done = (async () => {
    const perTick = o.perTick ?? 50;
    while (sent < o.count && !closed) {
      const batch: Promise<void>[] = [];
      for (let k = 0; k < perTick && sent < o.count; k++, sent++) {
        const s = sockets[sent % sockets.length];
        const msg = make(sent);
        batch.push(new Promise((resolve) => s.send(msg, port, host, () => resolve())));
      }
      await Promise.all(batch);
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return {
    sent: () => sent,
    done,
    close: async () => {
      if (closed) return done;
      closed = true;
      await done;
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TCP: idle sockets, slow-loris headers, garbage.

export interface SocketAttack {
  /** Sockets still open. */
  open(): number;
  /** Sockets that connected at least once. */
  connected(): number;
  close(): Promise<void>;
}

function socketSet(sockets: Socket[], timers: ReturnType<typeof setInterval>[], connectedCount: () => number): SocketAttack {
  return {
    open: () => sockets.filter((s) => !s.destroyed).length,
    connected: connectedCount,
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * Opens `count` TCP connections to `host:port`, `batch` at a time, spread over `sources` (local
 * addresses in 127.0.0.0/8: many hosts on loopback), and calls `onConnect` on each that
 * connects; whatever the node answers is dropped. Resolves once every connect has settled.
 */
async function openSockets(host: string, port: number, count: number, o: { batch?: number; sources?: string[] }, onConnect: (s: Socket, nth: number) => void): Promise<{ sockets: Socket[]; connected: () => number }> {
  const sockets: Socket[] = [];
  let connected = 0;
  const batch = o.batch ?? 100;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, () => {
        return new Promise<void>((resolve) => {
          const s = connect({ host, port, localAddress: o.sources?.[sockets.length % o.sources.length] });
          sockets.push(s);
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.on('data', () => {});
          s.once('connect', () => {
            connected++;
            onConnect(s, connected);
            resolve();
          });
        });
      }),
    );
  }
  return { sockets, connected: () => connected };
}

/**
 * Opens `count` TCP connections to `host:port` that send nothing (or, with `garbage`, one
 * random blob each), opened `batch` at a time. Resolves once every connect has settled.
 * `sources` spreads them over these local addresses (127.0.0.0/8 on loopback): many hosts.
 */
export async function idleSockets(host: string, port: number, count: number, o: { batch?: number; garbage?: boolean; sources?: string[] } = {}): Promise<SocketAttack> {
  const { sockets, connected } = await openSockets(host, port, count, o, (s, nth) => {
    if (o.garbage) s.write(randomBytes(64 + (nth % 512)));
  });
  return socketSet(sockets, [], connected);
}

/**
 * Slow loris: `count` connections that start a WebSocket upgrade request and send one more
 * header line every `intervalMs`, never finishing the headers.
 */
export async function slowLoris(host: string, port: number, count: number, o: { intervalMs?: number; batch?: number; sources?: string[] } = {}): Promise<SocketAttack> {
  const { sockets, connected } = await openSockets(host, port, count, o, (s) => {
    s.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`);
  });
  let n = 0;
  const timer = setInterval(() => {
    for (const s of sockets) if (!s.destroyed && s.writable) s.write(`X-Loris-${n}: ${n}\r\n`);
    n++;
  }, o.intervalMs ?? 1000);
  return socketSet(sockets, [timer], connected);
}

/**
 * Real libp2p connections (Noise, Yamux) from `client` that open `/proofsync/1/*` streams and
 * write garbage on them (random bytes, a varint length far over every limit), `concurrency`
 * streams at a time, until closed.
 */
export function garbageStreams(client: ClientNode, peer: Multiaddr, protocols: readonly string[], o: { concurrency?: number } = {}): SocketAttack {
  let closed = false;
  let opened = 0;
  let inFlight = 0;
  const loops = Array.from({ length: o.concurrency ?? 4 }, async (_, k) => {
    while (!closed) {
      try {
        inFlight++;
        const stream = await client.dialProtocol(peer, protocols[(opened + k) % protocols.length], { signal: AbortSignal.timeout(5_000) });
        opened++;
        const junk = opened % 2 ? randomBytes(256) : Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3);
        stream.send(junk);
        await new Promise((r) => setTimeout(r, 20));
        stream.abort(new Error('garbage sent'));
      } catch {
        await new Promise((r) => setTimeout(r, 50)); // refused or reset: expected
      } finally {
        inFlight--;
      }
    }
  });
  return {
    open: () => inFlight,
    connected: () => opened,
    close: async () => {
      closed = true;
      await Promise.allSettled(loops);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Node process figures from /proc.

export interface ProcStatus {
  rssMB: number;
  threads: number;
}

/** VmRSS (MB) and Threads of a Linux process from /proc/PID/status. */
export async function procStatus(pid: number): Promise<ProcStatus> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(text);
  const threads = /^Threads:\s+(\d+)/m.exec(text);
  if (!rss || !threads) throw new Error(`no VmRSS/Threads in /proc/${pid}/status`);
  return { rssMB: Number(rss[1]) / 1024, threads: Number(threads[1]) };
}

/**
 * Sums every series in a Prometheus text exposition whose metric name matches `name` and whose
 * labels match `labels` (a substring test on the `{...}` part). Used to read "refused" counters
 * whatever their exact names.
 */
export function sumSeries(text: string, name: RegExp, labels?: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !name.test(m[1])) continue;
    if (labels && !labels.test(m[2] ?? '')) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
