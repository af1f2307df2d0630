/**
 * A plain static file server on 127.0.0.1, as a CDN or `python -m http.server` would be: GET and
 * HEAD of files under one directory, `Content-Length`, 404 for anything else, and
 * `Access-Control-Allow-Origin: *` (a page on another origin reads static proofs with `fetch`).
 * It knows nothing of proofsync: tests, benchmarks and the demo serve snapshots with it, so the
 * client is shown to need nothing more. `hits` counts the files served, by path.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';

export interface StaticFileServer {
  server: Server;
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  /** Files served (200), by URL path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/**
 * A request handler serving the files under `dir` for URL paths under `prefix` (default `/`);
 * resolves false for a path outside `prefix` (the caller's next handler takes it).
 *
 * @example
 * const files = staticFileHandler('out/snapshot', { prefix: '/snapshots/' });
 * http.createServer(async (req, res) => (await files(req, res)) || res.writeHead(404).end());
 */
export function staticFileHandler(dir: string, o: { prefix?: string; hits?: Map<string, number> } = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const root = normalize(dir + sep);
  const prefix = o.prefix ?? '/';
  return async (req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return true;
    }
    if (!path.startsWith(prefix)) return false;
    const headers = { 'access-control-allow-origin': '*' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, headers).end();
      return true;
    }
    const file = normalize(join(root, path.slice(prefix.length)));
    const s = file.startsWith(root) ? await stat(file).catch(() => undefined) : undefined;
    if (!s?.isFile()) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
      return true;
    }
    o.hits?.set(path, (o.hits.get(path) ?? 0) + 1);
    res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': s.size, 'cache-control': 'no-cache' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
    return true;
  };
}

/**
 * Serves `dir` on 127.0.0.1 (any port).
 *
 * @example
 * const files = await startStaticServer(snapshotDir);
 * const client = createLightClient({ ..., snapshots: [files.url] });
 */
export async function startStaticServer(dir: string, o: { port?: number } = {}): Promise<StaticFileServer> {
  const hits = new Map<string, number>();
  const handle = staticFileHandler(dir, { hits });
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
