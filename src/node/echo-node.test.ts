/**
 * The stream layer against a real host in a child process, over both transports a browser
 * uses, with hostile clients (docs/design.md "Wire protocols": bounded reads, deadlines, per-peer
 * limits).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeVarint, request } from '../protocol/stream.ts';
import { createClientNode, type ClientNode } from './host.ts';
import * as echo from './testing/echo-protocol.ts';
import { startNodeProcess, type NodeProcess } from './testing/process.ts';

const utf8 = new TextEncoder();
let node: NodeProcess;
const clients: ClientNode[] = [];
async function client(): Promise<ClientNode> {
  const c = await createClientNode();
  clients.push(c);
  return c;
}
async function call(c: ClientNode, addr: Multiaddr, protocol: string, body: Uint8Array): Promise<echo.EchoResponse> {
  return echo.decodeResponse(await request(c, addr, protocol, body, { maxResponseBytes: 4096, timeoutMs: 10_000 }));
}

/** Polls `probe` until it returns true, failing after `timeoutMs`. */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

let ws: Multiaddr;
let rtc: Multiaddr;
beforeAll(async () => {
  node = await startNodeProcess();
  ws = multiaddr(node.file.ws!);
  rtc = multiaddr(node.file.webrtcDirect!);
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await node?.stop();
});

describe('echo over real transports', () => {
  for (const [label, addr] of [
    ['WebSockets', () => ws],
    ['WebRTC-Direct', () => rtc],
  ] as const) {
    it(`round-trips over ${label}`, async () => {
      const c = await client(); // a fresh node: libp2p would otherwise reuse an open connection
      for (const body of [new Uint8Array(0), utf8.encode('hello'), new Uint8Array(echo.ECHO_MAX_REQUEST).fill(0xab)]) {
        expect(await call(c, addr(), echo.ECHO, body)).toEqual({ ok: true, payload: body });
      }
      const conns = c.getConnections();
      expect(conns).toHaveLength(1);
      expect(conns[0].remoteAddr.toString()).toContain(label === 'WebSockets' ? '/ws' : '/webrtc-direct');
    });
  }
});

describe('hostile clients', () => {
  for (const [label, addr] of [
    ['WebSockets', () => ws],
    ['WebRTC-Direct', () => rtc],
  ] as const) {
    it(`an oversize request over ${label} gets a MessageTooLarge error frame and the node keeps serving`, async () => {
      const c = await client();
      const res = await call(c, addr(), echo.ECHO, new Uint8Array(echo.ECHO_MAX_REQUEST + 1));
      expect(res).toMatchObject({ ok: false, name: 'MessageTooLarge' });
      // a huge body that the server stops reading after the prefix
      expect(await call(c, addr(), echo.ECHO, new Uint8Array(2 << 20))).toMatchObject({ ok: false, name: 'MessageTooLarge' });
      expect(await call(c, addr(), echo.ECHO, utf8.encode('still up'))).toEqual({ ok: true, payload: utf8.encode('still up') });
    });
  }

  it('a response larger than the client allows is refused as MessageTooLarge', async () => {
    const c = await client();
    await expect(request(c, ws, echo.ECHO, new Uint8Array(1000), { maxResponseBytes: 100 })).rejects.toMatchObject({ name: 'MessageTooLarge' });
  });

  it('handler errors: typed ones are named, others become InternalError without details', async () => {
    const c = await client();
    expect(await call(c, ws, echo.FAIL, utf8.encode('InvalidRequest'))).toMatchObject({ ok: false, name: 'InvalidRequest' });
    const res = await call(c, ws, echo.FAIL, utf8.encode('boom'));
    expect(res).toMatchObject({ ok: false, name: 'InternalError' });
    expect(JSON.stringify(res)).not.toContain('secret');
  });

  it('a flood from one peer is capped at its stream limit while another peer is served', async () => {
    const flooder = await client();
    const other = await client();
    const holds = Array.from({ length: echo.ECHO_MAX_CONCURRENT }, (_, i) => call(flooder, ws, echo.HOLD, Uint8Array.of(i)));
    const stats = async (): Promise<number> => {
      const r = await call(other, ws, echo.STATS, new Uint8Array(0));
      return r.ok ? (JSON.parse(new TextDecoder().decode(r.payload)) as { held: number }).held : -1;
    };
    await until(async () => (await stats()) === echo.ECHO_MAX_CONCURRENT, 'the holds to be admitted');

    // the limit is per peer and shared by ECHO and HOLD: every further stream is refused
    const flood = await Promise.all(Array.from({ length: 16 }, () => call(flooder, ws, echo.ECHO, utf8.encode('x'))));
    for (const r of flood) expect(r).toMatchObject({ ok: false, name: 'TooManyStreams' });
    expect(await call(other, ws, echo.ECHO, utf8.encode('served'))).toEqual({ ok: true, payload: utf8.encode('served') });

    expect(await call(other, ws, echo.RELEASE, new Uint8Array(0))).toEqual({ ok: true, payload: utf8.encode(String(echo.ECHO_MAX_CONCURRENT)) });
    const released = await Promise.all(holds);
    released.forEach((r, i) => expect(r).toEqual({ ok: true, payload: Uint8Array.of(i) }));
    expect(await call(flooder, ws, echo.ECHO, utf8.encode('again'))).toEqual({ ok: true, payload: utf8.encode('again') });
  });

  it('a peer past its token bucket is RateLimited; another peer is not', async () => {
    const a = await client();
    const b = await client();
    for (let i = 0; i < 3; i++) expect((await call(a, ws, echo.RATED, Uint8Array.of(i))).ok).toBe(true);
    expect(await call(a, ws, echo.RATED, Uint8Array.of(9))).toMatchObject({ ok: false, name: 'RateLimited' });
    expect((await call(b, ws, echo.RATED, Uint8Array.of(1))).ok).toBe(true);
  });

  for (const [label, wire] of [
    ['sends nothing', new Uint8Array(0)],
    ['sends a prefix and half a body', Uint8Array.of(...encodeVarint(100), 1, 2, 3)],
  ] as const) {
    it(`a slow-loris stream that ${label} is cut at the server deadline`, async () => {
      const c = await client();
      const stream = await c.dialProtocol(ws, echo.ECHO);
      const opened = Date.now();
      const closed = new Promise<Error | undefined>((resolve) => stream.addEventListener('close', (evt) => resolve(evt.error), { once: true }));
      if (wire.length) stream.send(wire);
      const error = await closed;
      expect(error?.name).toBe('StreamResetError');
      expect(Date.now() - opened).toBeGreaterThanOrEqual(echo.ECHO_TIMEOUT_MS - 100);
      expect(await call(c, ws, echo.ECHO, utf8.encode('ok'))).toEqual({ ok: true, payload: utf8.encode('ok') });
    });
  }

  it('a client deadline gives RequestTimeout', async () => {
    const c = await client();
    const pending = request(c, ws, echo.HOLD, utf8.encode('t'), { maxResponseBytes: 100, timeoutMs: 300 });
    await expect(pending).rejects.toMatchObject({ name: 'RequestTimeout' });
    // the server's handler saw the stream go and gave up its hold
    const other = await client();
    await until(async () => {
      const r = await call(other, ws, echo.STATS, new Uint8Array(0));
      return r.ok && (JSON.parse(new TextDecoder().decode(r.payload)) as { held: number }).held === 0;
    }, 'the abandoned hold to end');
  });
});
