import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MerkleDatabase } from '../../core/database.ts';
import { MemoryStore } from '../../core/store.ts';
import { toHex } from '../../core/bytes.ts';
import type { RangeProofRequest } from '../../core/types.ts';
import { encodeRangeProofResponse } from '../../protocol/codec.ts';
import { serveRangeProof } from '../../protocol/serve.ts';
import { isAnswerFault, isNotServed, isTimeout } from '../faults.ts';
import { fetchSnapshotAnnouncement, httpStateSource, MirrorHttpError, NotServedStatically, snapshotBase, staticProofUrl } from './http-source.ts';
import { canonicalRangeRequest, requestKey } from './plan.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real HTTP server on 127.0.0.1: each path answers as its handler says; others 404. */
class TestServer {
  readonly routes = new Map<string, Handler>();
  readonly hits: string[] = [];
  /** Connections closed by the client before the response ended. */
  aborted = 0;
  server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.hits.push(req.url ?? '');
      res.on('close', () => {
        if (!res.writableFinished) this.aborted++;
      });
      const h = this.routes.get(req.url ?? '');
      if (h) h(req, res);
      else {
        res.writeHead(404);
        res.end('not found');
      }
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/snap`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const enc = new TextEncoder();
let server: TestServer;
let db: MerkleDatabase;
let request: RangeProofRequest;
let answer: Uint8Array;
let path: string;

beforeAll(async () => {
  db = await MerkleDatabase.open(new MemoryStore());
  await db.commit(Array.from({ length: 300 }, (_, i) => ({ key: Uint8Array.of(i & 0xff, i >> 8, 7), value: enc.encode(`value ${i}`) })));
  request = canonicalRangeRequest(db.root, new Uint8Array(0), Uint8Array.of(4, 0));
  answer = encodeRangeProofResponse({ type: 'rangeProof', proof: await serveRangeProof(db, request) });
  path = `/snap/${toHex(db.root)}/${requestKey(request)}`;
  server = new TestServer();
  await server.start();
});
afterAll(() => server.stop());

const source = (o: Parameters<typeof httpStateSource>[1] = {}) => httpStateSource(server.base, { timeoutMs: 2_000, ...o });

/** Serves `body` at the request's path for one test. */
function route(h: Handler): void {
  server.routes.set(path, h);
}

describe('httpStateSource', () => {
  it('fetches the answer at <base>/<rootHex>/<requestKey> and decodes it', async () => {
    route((_, res) => res.end(answer));
    expect(staticProofUrl(server.base + '/', request)).toBe(server.base + path.slice('/snap'.length));
    const r = await source().rangeProof(request, {});
    expect(r.type).toBe('range');
    const keys = r.type === 'range' ? r.proof.keyValues.map((kv) => toHex(kv.key)) : [];
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith('00') || k.startsWith('01') || k.startsWith('02') || k.startsWith('03'))).toBe(true);
  });

  const cases: { name: string; handler: Handler; options?: Parameters<typeof httpStateSource>[1]; expect: (err: unknown) => void }[] = [
    {
      name: 'a 404 is not served: the mirror is retired, not blamed',
      handler: (_, res) => {
        res.writeHead(404);
        res.end();
      },
      expect: (err) => {
        expect(err).toBeInstanceOf(NotServedStatically);
        expect(isNotServed(err)).toBe(true);
        expect(isAnswerFault(err)).toBe(false);
      },
    },
    {
      name: 'a 500 is no answer (backed off), not a fault',
      handler: (_, res) => {
        res.writeHead(500);
        res.end('oops');
      },
      expect: (err) => {
        expect(err).toBeInstanceOf(MirrorHttpError);
        expect((err as InstanceType<typeof MirrorHttpError>).details?.status).toBe(500);
        expect(isNotServed(err) || isAnswerFault(err)).toBe(false);
      },
    },
    {
      name: 'a huge Content-Length is refused before the body is read',
      handler: (_, res) => {
        res.writeHead(200, { 'content-length': String(1 << 30) });
        res.write(new Uint8Array(1024));
      },
      expect: (err) => {
        expect((err as Error).name).toBe('MessageTooLarge');
        expect(isAnswerFault(err)).toBe(true);
      },
    },
    {
      name: 'a chunked body past the limit is cut off as it grows',
      options: { maxResponseBytes: 64 * 1024 },
      handler: (_, res) => {
        res.writeHead(200);
        const chunk = new Uint8Array(16 * 1024);
        const timer = setInterval(() => res.write(chunk), 1);
        res.on('close', () => clearInterval(timer));
      },
      expect: (err) => {
        expect((err as Error).name).toBe('MessageTooLarge');
        expect(isAnswerFault(err)).toBe(true);
      },
    },
    {
      name: 'a truncated file (cut where the server says it ends) is a decode fault',
      handler: (_, res) => res.end(answer.subarray(0, answer.length - 10)),
      expect: (err) => {
        expect((err as Error).name).toBe('TruncatedInput');
        expect(isAnswerFault(err)).toBe(true);
      },
    },
    {
      name: 'a connection cut short of its Content-Length is a failure, not a fault',
      handler: (_, res) => {
        res.writeHead(200, { 'content-length': String(answer.length) });
        res.write(answer.subarray(0, 100), () => res.destroy());
      },
      expect: (err) => {
        expect(isAnswerFault(err)).toBe(false);
        expect(isNotServed(err)).toBe(false);
      },
    },
    {
      name: 'wrong bytes are a decode fault',
      handler: (_, res) => res.end(enc.encode('<html>this is not a proof</html>')),
      expect: (err) => expect(isAnswerFault(err)).toBe(true),
    },
    {
      name: 'a file holding an error envelope is a fault',
      handler: (_, res) => res.end(encodeRangeProofResponse({ type: 'error', name: 'RootNotFound', message: 'x' } as never)),
      expect: (err) => {
        expect((err as Error).name).toBe('UnexpectedResponse');
        expect(isAnswerFault(err)).toBe(true);
      },
    },
    {
      name: 'a server that never answers times out',
      options: { timeoutMs: 200 },
      handler: () => {},
      expect: (err) => expect(isTimeout(err)).toBe(true),
    },
    {
      name: 'a body that stalls half-way times out',
      options: { timeoutMs: 200 },
      handler: (_, res) => {
        res.writeHead(200, { 'content-length': String(answer.length) });
        res.write(answer.subarray(0, 100));
      },
      expect: (err) => expect(isTimeout(err)).toBe(true),
    },
    {
      name: 'a redirect loop fails (fetch gives up), blaming no one',
      handler: (req, res) => {
        res.writeHead(302, { location: req.url });
        res.end();
      },
      expect: (err) => {
        expect(isAnswerFault(err)).toBe(false);
        expect(isNotServed(err)).toBe(false);
      },
    },
  ];

  it.each(cases)('$name', async ({ handler, options, expect: check }) => {
    route(handler);
    const aborted = server.aborted;
    const err = await source(options)
      .rangeProof(request, {})
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeDefined();
    check(err);
    // a refused body is never left open on the server
    if ((err as Error).name === 'MessageTooLarge') await expect.poll(() => server.aborted).toBeGreaterThan(aborted);
  });

  it('a change proof is not served, without a request', async () => {
    const hits = server.hits.length;
    const err = await source()
      .changeProof({ startRootHash: db.root, endRootHash: db.root, startKey: undefined, endKey: undefined, keyLimit: 10, bytesLimit: 1000 }, {})
      .catch((e: unknown) => e);
    expect(isNotServed(err)).toBe(true);
    expect(server.hits.length).toBe(hits);
  });

  it('the caller’s signal aborts the request with its reason', async () => {
    route(() => {});
    const controller = new AbortController();
    const p = source().rangeProof(request, { signal: controller.signal });
    setTimeout(() => controller.abort(new DOMException('stopped', 'AbortError')), 20);
    await expect(p).rejects.toMatchObject({ name: 'AbortError', message: 'stopped' });
  });

  it('reads the announcement with an 80 KiB bound', async () => {
    server.routes.set('/snap/announcement', (_, res) => res.end(Uint8Array.of(1, 2, 3)));
    expect(await fetchSnapshotAnnouncement(server.base)).toEqual(Uint8Array.of(1, 2, 3));
    server.routes.set('/snap/announcement', (_, res) => res.end(new Uint8Array(81 * 1024)));
    await expect(fetchSnapshotAnnouncement(server.base)).rejects.toMatchObject({ name: 'MessageTooLarge' });
  });

  it.each([
    ['ftp://example.com/x', 'http(s)'],
    ['/relative/path', 'absolute'],
    ['https://cdn.example.com/x?token=1', 'query'],
  ])('refuses the mirror URL %s', (base, why) => {
    expect(() => snapshotBase(base)).toThrow(why);
  });

  it('takes a base with or without its trailing slash', () => {
    expect(snapshotBase('https://cdn.example.com/db/')).toBe('https://cdn.example.com/db');
    expect(httpStateSource('https://cdn.example.com/db/').id).toBe('static:https://cdn.example.com/db');
  });
});
