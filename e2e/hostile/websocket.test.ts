/**
 * Hostile traffic on a real full node's WebSocket port (src/node/ws-guard.ts): raw TCP garbage,
 * malformed WebSocket frames written by hand, hundreds of idle and slow-loris sockets, the
 * per-IP limit, and a stop with silent sockets open. After each class of attack: the process is
 * alive, a verified range proof is identical to the one fetched before, and the node's RSS grew
 * by at most 200 MB.
 */
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/core/bytes.ts';
import { verifyRangeProof } from '../../src/core/proof.ts';
import { createClientNode } from '../../src/node/host.ts';
import { DEFAULT_WS_LIMITS } from '../../src/node/ws-guard.ts';
import { FULL_NODE_SCRIPT } from '../../src/node/testing/process.ts';
import { fetchHeads, fetchRangeProof } from '../../src/protocol/client.ts';
import { Cleanup, startNode, type NodeProcess } from '../harness.ts';

const N = 5000;
const RSS_GROWTH_LIMIT_MB = 200;

// ---- a WebSocket frame builder (RFC 6455 §5.2), for frames no client library would write

interface FrameSpec {
  fin?: boolean;
  /** RSV1..3 as bits 0b100, 0b010, 0b001. */
  rsv?: number;
  opcode: number;
  payload?: Uint8Array;
  /** Client frames must be masked; `false` writes an unmasked one. */
  mask?: boolean;
  /** Declare this length instead of the payload's (the payload is still what is sent). */
  declaredLength?: bigint;
  /** Force the 64-bit length form. */
  long?: boolean;
}

function frame(f: FrameSpec): Buffer {
  const payload = Buffer.from(f.payload ?? new Uint8Array(0));
  const length = f.declaredLength ?? BigInt(payload.length);
  const mask = f.mask ?? true;
  const head = [((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode];
  const m = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (f.long || length > 0xffffn) {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(length);
  } else if (length > 125n) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(length));
  } else head.push(m | Number(length));
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ key[i % 4])) : payload;
  return Buffer.concat([Buffer.from(head), ext, mask ? key : Buffer.alloc(0), body]);
}

const closePayload = (code: number, reason: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const b = Buffer.alloc(2 + reason.length);
  b.writeUInt16BE(code);
  b.set(reason, 2);
  return b;
};
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;

const UPGRADE_REQUEST =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

// ---- raw sockets

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {}); // resets by the node are expected
      s.resume(); // read (and drop) what the node answers, so its end is seen
      resolve(s);
    });
    s.once('error', reject);
  });
}

const closed = (s: Socket): Promise<void> => (s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve())));

/** Opens a socket and completes the WebSocket upgrade (101). */
async function upgraded(port: number): Promise<Socket> {
  const s = await open(port);
  s.write(UPGRADE_REQUEST);
  const head = await new Promise<string>((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed before the upgrade answer: ${JSON.stringify(got)}`)));
  });
  expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
  return s;
}

// ---- the node

const wsPort = (n: NodeProcess): number => Number(/\/tcp\/(\d+)\/ws/.exec(n.file.ws!)![1]);

async function rssMb(n: NodeProcess): Promise<number> {
  const status = await readFile(`/proc/${n.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

async function metric(n: NodeProcess, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

const alive = (n: NodeProcess): boolean => n.child.exitCode === null && n.child.signalCode === null;

/** What `proofsync fetch-range` does: a fresh client, the writer-signed head, a verified range proof. */
async function honestFetch(n: NodeProcess): Promise<string> {
  const addr: Multiaddr = multiaddr(n.file.ws!);
  const writerPublicKey = peerIdFromString(n.file.peerId).publicKey!.raw;
  const client = await createClientNode();
  try {
    const ann = await fetchHeads(client, addr, { writerPublicKey, timeoutMs: 60_000 });
    const req = { rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 256, bytesLimit: 1 << 20 };
    const proof = await fetchRangeProof(client, addr, req, { timeoutMs: 60_000 });
    verifyRangeProof(proof, { root: ann.stateRoot, start: undefined, end: undefined, keyLimit: 256 });
    expect(proof.keyValues.length).toBe(256);
    return JSON.stringify({ root: toHex(ann.stateRoot), kvs: proof.keyValues.map((kv) => [toHex(kv.key), toHex(kv.value)]) });
  } finally {
    await client.stop();
  }
}

// ---- the cases

type Outcome = { closedWith: 'protocol_error'; code: string } | { closedWith: 'any' };

interface RawCase {
  name: string;
  /** Bytes written on a fresh TCP socket (no upgrade). */
  raw: Buffer;
}

interface FrameCase {
  name: string;
  /** Bytes written after a completed WebSocket upgrade. */
  frames: Buffer[];
  outcome: Outcome;
}

const protocolError = (code: string): Outcome => ({ closedWith: 'protocol_error', code });

const RAW_CASES: RawCase[] = [
  { name: 'binary garbage (first byte looks like TLS, no https server)', raw: Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x13, 0x37]) },
  { name: 'random bytes', raw: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff)) },
  { name: 'an HTTP line of garbage', raw: Buffer.from('HELLO WORLD\r\n\r\n') },
  { name: 'a plain GET', raw: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
  { name: 'an upgrade with a bad Sec-WebSocket-Key', raw: Buffer.from(UPGRADE_REQUEST.replace('dGhlIHNhbXBsZSBub25jZQ==', '!!!')) },
  { name: 'an upgrade with version 8', raw: Buffer.from(UPGRADE_REQUEST.replace('Version: 13', 'Version: 8')) },
  { name: 'headers over the size limit', raw: Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(DEFAULT_WS_LIMITS.maxHeaderSize * 2)}\r\n\r\n`) },
];

const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);

const FRAME_CASES: FrameCase[] = [
  { name: 'RSV1 set', frames: [frame({ rsv: 0b100, opcode: BINARY, payload: bytes(3) })], outcome: protocolError('WS_ERR_UNEXPECTED_RSV_1') },
  { name: 'RSV2 set', frames: [frame({ rsv: 0b010, opcode: BINARY, payload: bytes(3) })], outcome: protocolError('WS_ERR_UNEXPECTED_RSV_2_3') },
  { name: 'RSV3 set', frames: [frame({ rsv: 0b001, opcode: BINARY, payload: bytes(3) })], outcome: protocolError('WS_ERR_UNEXPECTED_RSV_2_3') },
  { name: 'reserved data opcode 0x3', frames: [frame({ opcode: 0x3, payload: bytes(3) })], outcome: protocolError('WS_ERR_INVALID_OPCODE') },
  { name: 'reserved data opcode 0x7', frames: [frame({ opcode: 0x7 })], outcome: protocolError('WS_ERR_INVALID_OPCODE') },
  { name: 'reserved control opcode 0xB', frames: [frame({ opcode: 0xb })], outcome: protocolError('WS_ERR_INVALID_OPCODE') },
  { name: 'reserved control opcode 0xF', frames: [frame({ opcode: 0xf, payload: bytes(5) })], outcome: protocolError('WS_ERR_INVALID_OPCODE') },
  { name: 'unmasked client frame', frames: [frame({ opcode: BINARY, payload: bytes(4), mask: false })], outcome: protocolError('WS_ERR_EXPECTED_MASK') },
  { name: 'orphan continuation frame', frames: [frame({ opcode: 0x0, payload: bytes(4) })], outcome: protocolError('WS_ERR_INVALID_OPCODE') },
  {
    name: 'new data frame inside a fragmented message',
    frames: [frame({ fin: false, opcode: BINARY, payload: bytes(4) }), frame({ opcode: BINARY, payload: bytes(4) })],
    outcome: protocolError('WS_ERR_INVALID_OPCODE'),
  },
  {
    name: 'too many fragments (their sum passes maxPayload)',
    frames: Array.from({ length: 2 * (DEFAULT_WS_LIMITS.maxPayload / 1024) + 1 }, (_, i) => frame({ fin: false, opcode: i === 0 ? BINARY : 0x0, payload: bytes(1024) })),
    outcome: protocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'),
  },
  { name: '64-bit length past 2^53', frames: [frame({ opcode: BINARY, declaredLength: 1n << 63n, long: true })], outcome: protocolError('WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') },
  { name: '64-bit length of 4 GiB', frames: [frame({ opcode: BINARY, declaredLength: 1n << 32n, long: true })], outcome: protocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') },
  { name: 'one 96 MiB frame (header only)', frames: [frame({ opcode: BINARY, declaredLength: 96n << 20n, long: true })], outcome: protocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') },
  { name: '64-bit form for a short length', frames: [frame({ opcode: BINARY, payload: bytes(10), long: true })], outcome: { closedWith: 'any' } },
  { name: 'fragmented ping', frames: [frame({ fin: false, opcode: PING, payload: bytes(4) })], outcome: protocolError('WS_ERR_EXPECTED_FIN') },
  { name: 'oversized ping (126 bytes)', frames: [frame({ opcode: PING, payload: bytes(126) })], outcome: protocolError('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH') },
  { name: 'close with a 1-byte payload', frames: [frame({ opcode: CLOSE, payload: bytes(1) })], outcome: protocolError('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH') },
  { name: 'close code 999', frames: [frame({ opcode: CLOSE, payload: closePayload(999) })], outcome: protocolError('WS_ERR_INVALID_CLOSE_CODE') },
  { name: 'close code 1005 (may not be sent)', frames: [frame({ opcode: CLOSE, payload: closePayload(1005) })], outcome: protocolError('WS_ERR_INVALID_CLOSE_CODE') },
  { name: 'close code 1006 (may not be sent)', frames: [frame({ opcode: CLOSE, payload: closePayload(1006) })], outcome: protocolError('WS_ERR_INVALID_CLOSE_CODE') },
  { name: 'close code 5000', frames: [frame({ opcode: CLOSE, payload: closePayload(5000) })], outcome: protocolError('WS_ERR_INVALID_CLOSE_CODE') },
  { name: 'close reason of invalid UTF-8', frames: [frame({ opcode: CLOSE, payload: closePayload(1000, Uint8Array.of(0xc3, 0x28)) })], outcome: protocolError('WS_ERR_INVALID_UTF8') },
  { name: 'text message of invalid UTF-8', frames: [frame({ opcode: TEXT, payload: Uint8Array.of(0xff, 0xfe, 0xfd) })], outcome: protocolError('WS_ERR_INVALID_UTF8') },
  { name: 'valid frames of garbage for libp2p', frames: [frame({ opcode: BINARY, payload: bytes(300, 0xee) })], outcome: { closedWith: 'any' } },
  { name: 'a valid close', frames: [frame({ opcode: CLOSE, payload: closePayload(1000) })], outcome: { closedWith: 'any' } },
];

describe('hostile traffic on the WebSocket port', () => {
  const cleanup = new Cleanup();
  let node: NodeProcess;
  let port: number;
  let before: string;
  let rss0: number;

  beforeAll(async () => {
    node = cleanup.add(
      await startNode({
        script: FULL_NODE_SCRIPT,
        // every socket of these tests comes from 127.0.0.1: the per-IP limit would refuse the
        // honest client along with the attack (the per-IP test below runs its own node)
        args: ['--generate', String(N), '--max-connections-per-ip', '5000', '--max-connections', '5000'],
        readyTimeoutMs: 60_000,
      }),
      (n) => n.stop(),
    );
    port = wsPort(node);
    before = await honestFetch(node);
    rss0 = await rssMb(node);
  });
  afterAll(() => cleanup.run());

  async function checksAfterAttack(): Promise<void> {
    expect(alive(node), node.output()).toBe(true);
    expect(await honestFetch(node)).toBe(before);
    const growth = (await rssMb(node)) - rss0;
    expect(growth).toBeLessThanOrEqual(RSS_GROWTH_LIMIT_MB);
  }

  describe('class 1: garbage and malformed frames', () => {
    it.each(RAW_CASES)('raw TCP: $name is answered or cut, never crashes the node', async ({ raw }) => {
      const s = await open(port);
      const done = closed(s);
      s.write(raw);
      s.end();
      await done;
      expect(alive(node), node.output()).toBe(true);
    });

    it.each(FRAME_CASES)('after the upgrade: $name', async ({ frames, outcome }) => {
      const code = outcome.closedWith === 'protocol_error' ? outcome.code : '';
      const errorsBefore = code ? await metric(node, 'proofsync_websocket_protocol_errors_total', `code="${code}"`) : 0;
      const s = await upgraded(port);
      const done = closed(s);
      // the node may cut the socket before every fragment is written
      for (const f of frames) if (!s.destroyed) s.write(f);
      await done; // the node, not the test, closes it
      expect(alive(node), node.output()).toBe(true);
      if (code) expect(await metric(node, 'proofsync_websocket_protocol_errors_total', `code="${code}"`)).toBe(errorsBefore + 1);
    });

    it('all of them at once, then the node is alive, serves the same verified proof, RSS bounded', async () => {
      const all: Promise<void>[] = [];
      for (const c of RAW_CASES) {
        all.push(
          open(port).then((s) => {
            const done = closed(s);
            s.end(c.raw);
            return done;
          }),
        );
      }
      for (const c of FRAME_CASES) {
        all.push(
          upgraded(port).then((s) => {
            const done = closed(s);
            for (const f of c.frames) if (!s.destroyed) s.write(f);
            return done;
          }),
        );
      }
      await Promise.all(all);
      await checksAfterAttack();
    });
  });

  describe('class 2: idle sockets and slow handshakes', () => {
    it('hundreds of idle, slow-loris and slow-Noise sockets while an honest client fetches; all cut at the deadline', async () => {
      const IDLE = 300;
      const SLOW_HEADERS = 100;
      const SLOW_NOISE = 60;
      const cutBefore = await metric(node, 'proofsync_connections_refused_total', 'reason="handshake_timeout"');
      const upgradeCutBefore = await metric(node, 'proofsync_connections_refused_total', 'reason="upgrade_timeout"');
      const idle = await Promise.all(Array.from({ length: IDLE }, () => open(port)));
      const slowHeaders = await Promise.all(Array.from({ length: SLOW_HEADERS }, () => open(port)));
      const slowNoise = await Promise.all(Array.from({ length: SLOW_NOISE }, () => upgraded(port)));
      // a header byte, or a byte of a WebSocket frame, a second: never finishing
      const partialHeaders = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
      const partialFrame = frame({ opcode: BINARY, payload: bytes(100) });
      let i = 0;
      const drip = setInterval(() => {
        for (const s of slowHeaders) if (!s.destroyed) s.write(partialHeaders.subarray(i, i + 1));
        for (const s of slowNoise) if (!s.destroyed && i < partialFrame.length) s.write(partialFrame.subarray(i, i + 1));
        i++;
      }, 1000);
      try {
        const attack = [...idle, ...slowHeaders, ...slowNoise];
        const allCut = Promise.all(attack.map(closed));
        expect(await honestFetch(node)).toBe(before);
        expect(alive(node), node.output()).toBe(true);
        await allCut; // the node cuts every one of them at its handshake deadline
        expect(await metric(node, 'proofsync_connections_refused_total', 'reason="handshake_timeout"')).toBeGreaterThanOrEqual(cutBefore + IDLE + SLOW_HEADERS);
        expect(await metric(node, 'proofsync_connections_refused_total', 'reason="upgrade_timeout"')).toBeGreaterThanOrEqual(upgradeCutBefore + SLOW_NOISE);
      } finally {
        clearInterval(drip);
      }
      await checksAfterAttack();
    });
  });
});

describe('per-IP limit and stop with silent sockets', () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());
  const PER_IP = 200;

  it('refuses the socket past the per-IP limit (counted in /metrics), and SIGTERM with 200 silent sockets open exits within 10 s', async () => {
    const node = cleanup.add(
      await startNode({
        script: FULL_NODE_SCRIPT,
        // silent sockets stay for a minute unless the stop closes them
        args: ['--generate', '100', '--max-connections-per-ip', String(PER_IP), '--handshake-timeout', '60000'],
        readyTimeoutMs: 60_000,
      }),
      (n) => n.stop({ graceMs: 1_000 }),
    );
    const port = wsPort(node);
    const refusedBefore = await metric(node, 'proofsync_connections_refused_total', 'reason="per_ip"');
    const silent = await Promise.all(Array.from({ length: PER_IP }, () => open(port)));
    cleanup.add(silent, (ss) => ss.forEach((s) => s.destroy()));
    for (const s of silent) expect(s.destroyed).toBe(false);

    const extra = await open(port);
    await closed(extra); // refused at once: the others are silent and have a minute left
    expect(await metric(node, 'proofsync_connections_refused_total', 'reason="per_ip"')).toBe(refusedBefore + 1);
    for (const s of silent) expect(s.destroyed).toBe(false);

    const exited = new Promise<string>((resolve) => node.child.once('exit', (code, signal) => resolve(`${code ?? signal}`)));
    node.child.kill('SIGTERM');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([exited, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running 10 s after SIGTERM'), 10_000)))]);
    clearTimeout(timer);
    expect(outcome, node.output()).toBe('0');
    await Promise.all(silent.map(closed));
  });
});
