/**
 * The writer's HTTP API on 127.0.0.1, on `node:http`:
 *
 * | route            | auth   | answer                                                     |
 * |------------------|--------|------------------------------------------------------------|
 * | `POST /v1/batch` | bearer | `{puts:[{key,value}], deletes:[key]}` (hex) → `{root, deltaId, seq, logSize}` |
 * | `GET /v1/status` | none   | peer id, database, root, seq, log size, heads, addresses   |
 * | `POST /v1/misbehave` | bearer | `{on: boolean}`: serve tampered proofs (misbehave.ts) → `{on}` |
 * | `GET /metrics`   | none   | Prometheus text format                                     |
 *
 * Errors are JSON `{error, message}` with 400 (bad body, `InvalidRequest`, a malformed request),
 * 401 (token), 403 (not a writer), 404, 405, 408 (headers or body too slow), 413 (body over the
 * limit), 431 (headers too large) or 500. The token is compared in constant time (as SHA-256
 * digests, so not even its length leaks). Bodies are read up to `maxBodyBytes` and no further:
 * an answer sent before the body was read says `connection: close`, and the socket is closed
 * soon after, so a 50 MB upload costs a bounded drain, not a kept connection.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromHex } from '../core/bytes.ts';
import { ProofsyncError, registerError, RequestError } from '../core/errors.ts';
import type { KeyChange } from '../core/types.ts';

/** The HTTP API's answer to a committed batch (`POST /v1/batch`); bytes are hex. */
export interface BatchResult {
  /** The state root after the commit (hex). */
  root: string;
  /** The commit's delta id (hex). */
  deltaId: string;
  /** The new announcement's `seq`. */
  seq: number;
  /** Operations in the log after the commit. */
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
  /** Time to receive a request's headers. Default 10,000 ms. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request. Default 30,000 ms. */
  requestTimeoutMs?: number;
  /** Told of every error answer (status, error code), for metrics. */
  onError?: (status: number, code: string) => void;
}

export interface HttpApi {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A request the API refuses: `status` is the HTTP status, `code` the `error` field of the answer. */
class HttpError extends ProofsyncError<{ status: number; code: string }> {
  override readonly name = 'HttpError';
  constructor(status: number, code: string, message: string) {
    super(message, { status, code });
  }
  get status(): number {
    return this.details!.status;
  }
  get code(): string {
    return this.details!.code;
  }
}
registerError(HttpError, 'HttpError');

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new HttpError(413, 'BodyTooLarge', `body of ${declared} bytes exceeds ${max}`);
  // Listeners, not `for await`: leaving an async iterator early destroys the request and its
  // socket, and the 413 would never reach the client.
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > max) {
        stop();
        req.pause();
        reject(new HttpError(413, 'BodyTooLarge', `body exceeds ${max} bytes`));
      } else chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (): void => {
      stop();
      reject(new HttpError(400, 'BodyAborted', 'the body did not arrive whole'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
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

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

function authorized(req: IncomingMessage, tokenDigest: Buffer): boolean {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/.exec(header);
  if (!m) return false;
  return timingSafeEqual(sha256(m[1]), tokenDigest);
}

/** How long an unread body may keep draining after its early answer before the socket is cut. */
const DRAIN_GRACE_MS = 2_000;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** Node's codes for requests it refuses before our handler runs, as our statuses and error names. */
function clientErrorAnswer(code: string | undefined): { status: number; error: string; message: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, error: 'RequestTimeout', message: 'the request did not arrive in time' };
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, error: 'HeadersTooLarge', message: 'the request headers are too large' };
  return { status: 400, error: 'MalformedRequest', message: 'the request is not valid HTTP/1.1' };
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
  const tokenDigest = sha256(o.token);
  // Node checks the header and request deadlines on this interval (default 30 s, which would
  // let a slow client hold a socket 40 s past a 10 s deadline).
  const server = createServer({ connectionsCheckingInterval: 1_000 }, async (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/v1/batch') {
        if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'use POST');
        if (!authorized(req, tokenDigest)) throw new HttpError(401, 'Unauthorized', 'missing or wrong bearer token');
        if (!o.commit) throw new HttpError(403, 'NotWriter', 'this node is not the writer of its database');
        const changes = parseBatch(await readBody(req, max));
        send(res, 200, await o.commit(changes));
      } else if (path === '/v1/misbehave') {
        if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', 'use POST');
        if (!authorized(req, tokenDigest)) throw new HttpError(401, 'Unauthorized', 'missing or wrong bearer token');
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
      const { status, error, message } =
        err instanceof HttpError
          ? { status: err.status, error: err.code, message: err.message }
          : err instanceof RequestError
            ? { status: 400, error: err.name, message: err.message }
            : err instanceof ProofsyncError
              ? { status: 500, error: err.name, message: err.message }
              : { status: 500, error: 'InternalError', message: 'the node failed to handle the request' };
      o.onError?.(status, error);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (req.complete) {
        send(res, status, { error, message });
        return;
      }
      // An unread body (413, 401): answer, then close. The rest of the body is read and
      // dropped for a short grace so the client sees the answer (closing a socket with unread
      // input makes the kernel send RST, which can destroy the answer in flight), never kept.
      const socket = req.socket as (typeof req.socket & { destroySoon?: () => void }) | null;
      if (socket && !socket.destroyed) {
        // Node closes a `connection: close` socket with destroySoon() once the answer is
        // flushed; made a lingering close here: half-close, read and drop, then destroy.
        socket.destroySoon = () => {
          socket.end();
          socket.on('data', () => {});
          socket.resume();
          setTimeout(() => socket.destroy(), DRAIN_GRACE_MS).unref();
        };
      }
      req.resume();
      send(res, status, { error, message }, { connection: 'close' });
    }
  });
  server.requestTimeout = o.requestTimeoutMs ?? 30_000;
  server.headersTimeout = o.headersTimeoutMs ?? 10_000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // the client hung up: nothing to answer or count
    if (err.code === 'ECONNRESET') return void socket.destroy();
    const { status, error, message } = clientErrorAnswer(err.code);
    o.onError?.(status, error);
    if (socket.writable && !(socket as { _httpMessage?: unknown })._httpMessage) {
      const text = JSON.stringify({ error, message }) + '\n';
      socket.end(`HTTP/1.1 ${status} ${error}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    } else socket.destroy();
  });
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
