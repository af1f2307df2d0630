/**
 * The writer's HTTP API on 127.0.0.1 (issue 3, "Writing"), on `node:http`:
 *
 * | route            | auth   | answer                                                     |
 * |------------------|--------|------------------------------------------------------------|
 * | `POST /v1/batch` | bearer | `{puts:[{key,value}], deletes:[key]}` (hex) → `{root, deltaId, seq, logSize}` |
 * | `GET /v1/status` | none   | peer id, database, root, seq, log size, heads, addresses   |
 * | `POST /v1/misbehave` | bearer | `{on: boolean}`: serve tampered proofs (misbehave.ts) → `{on}` |
 * | `GET /metrics`   | none   | Prometheus text format                                     |
 *
 * Errors are JSON `{error, message}` with 400 (bad body, `InvalidRequest`), 401 (token), 403
 * (not a writer), 404, 405, 413 (body over the limit) or 500. The token is compared in
 * constant time. Bodies are read up to `maxBodyBytes` and no further.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromHex } from '../core/bytes.ts';
import { ProofsyncError, RequestError } from '../core/errors.ts';
import type { KeyChange } from '../core/types.ts';

export interface BatchResult {
  root: string;
  deltaId: string;
  seq: number;
  logSize: number;
}

export interface HttpApiOptions {
  host?: string;
  /** 0: an ephemeral port. */
  port: number;
  token: string;
  /** Default 8 MiB. */
  maxBodyBytes?: number;
  /** Commits a batch; absent on a node that is not the writer. */
  commit?: (changes: KeyChange[]) => Promise<BatchResult>;
  status: () => Record<string, unknown>;
  /** Turns the misbehaviour switch (misbehave.ts) on or off. */
  misbehave?: (on: boolean) => void;
  metrics: () => Promise<{ contentType: string; body: string }>;
}

export interface HttpApi {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new HttpError(413, 'BodyTooLarge', `body of ${declared} bytes exceeds ${max}`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw new HttpError(413, 'BodyTooLarge', `body exceeds ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function hexField(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw new HttpError(400, 'InvalidBody', `${what} must be a hex string`);
  try {
    return fromHex(v);
  } catch (err) {
    throw new HttpError(400, 'InvalidBody', `${what}: ${(err as Error).message}`);
  }
}

/** `{puts:[{key,value}], deletes:[key]}` → changes, puts first then deletes (a later change to a key wins). */
export function parseBatch(body: Uint8Array): KeyChange[] {
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(400, 'InvalidBody', 'the body is not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new HttpError(400, 'InvalidBody', 'expected an object {puts, deletes}');
  const { puts = [], deletes = [] } = o as { puts?: unknown; deletes?: unknown };
  if (!Array.isArray(puts) || !Array.isArray(deletes)) throw new HttpError(400, 'InvalidBody', 'puts and deletes must be arrays');
  const changes: KeyChange[] = [];
  puts.forEach((p: unknown, i) => {
    if (typeof p !== 'object' || p === null) throw new HttpError(400, 'InvalidBody', `puts[${i}] must be {key, value}`);
    const { key, value } = p as { key?: unknown; value?: unknown };
    changes.push({ key: hexField(key, `puts[${i}].key`), value: hexField(value, `puts[${i}].value`) });
  });
  deletes.forEach((k: unknown, i) => changes.push({ key: hexField(k, `deletes[${i}]`), value: undefined }));
  return changes;
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/.exec(header);
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Starts the API; resolves once it listens.
 *
 * @example
 * const api = await startHttpApi({ port: 0, token, commit, status, metrics });
 * await fetch(`${api.url}/v1/status`);
 */
export async function startHttpApi(o: HttpApiOptions): Promise<HttpApi> {
  const max = o.maxBodyBytes ?? 8 * 1024 * 1024;
  const server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/v1/batch') {
        if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'use POST');
        if (!authorized(req, o.token)) throw new HttpError(401, 'Unauthorized', 'missing or wrong bearer token');
        if (!o.commit) throw new HttpError(403, 'NotWriter', 'this node is not the writer of its database');
        const changes = parseBatch(await readBody(req, max));
        send(res, 200, await o.commit(changes));
      } else if (path === '/v1/misbehave') {
        if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'use POST');
        if (!authorized(req, o.token)) throw new HttpError(401, 'Unauthorized', 'missing or wrong bearer token');
        if (!o.misbehave) throw new HttpError(404, 'NotFound', `no route ${path}`);
        let body: unknown;
        try {
          body = JSON.parse(new TextDecoder().decode(await readBody(req, 1024)));
        } catch (err) {
          if (err instanceof HttpError) throw err;
          throw new HttpError(400, 'InvalidBody', 'the body is not JSON');
        }
        const on = (body as { on?: unknown } | null)?.on;
        if (typeof on !== 'boolean') throw new HttpError(400, 'InvalidBody', 'expected {"on": true|false}');
        o.misbehave(on);
        send(res, 200, { on });
      } else if (path === '/v1/status') {
        if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'use GET');
        send(res, 200, o.status());
      } else if (path === '/metrics') {
        if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'use GET');
        const m = await o.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
      } else throw new HttpError(404, 'NotFound', `no route ${path}`);
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.code, message: err.message });
      else if (err instanceof RequestError) send(res, 400, { error: err.name, message: err.message });
      else if (err instanceof ProofsyncError) send(res, 500, { error: err.name, message: err.message });
      else send(res, 500, { error: 'InternalError', message: 'the node failed to handle the request' });
      // an unread body (413, 401) must not keep the connection busy
      if (!req.complete) req.resume();
    }
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://${o.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
