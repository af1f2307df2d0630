/**
 * The demo server's own routes, mounted in Vite's dev server (a plugin middleware) and in the
 * static server of the production build alike:
 *
 * | route                   | answer                                                          |
 * |-------------------------|-----------------------------------------------------------------|
 * | `GET /demo-config.json` | `DemoConfig`: database, writer key, bootstrap addresses, samples |
 * | `GET /demo/nodes`       | `DemoNodeStats[]` from each node's status and metrics            |
 * | `POST /demo/misbehave`  | `{on}` → the replica's `POST /v1/misbehave` (its bearer token)   |
 * | `POST /demo/write`      | commits one random put through the writer's `POST /v1/batch`     |
 *
 * Tokens stay here: the page never sees them. Everything listens on loopback only.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DemoConfig, DemoNodeStats, DemoWriteResult } from '../config.ts';
import { nodeStatus, servedStats, type DemoNode } from './nodes.ts';

export interface DemoState {
  config: DemoConfig;
  nodes: DemoNode[];
  misbehaving: boolean;
}

type Next = (err?: unknown) => void;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, max = 4096): Promise<unknown> {
  let text = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > max) throw new RangeError(`body over ${max} bytes`);
  }
  return text ? JSON.parse(text) : {};
}

async function stats(state: DemoState): Promise<DemoNodeStats[]> {
  return Promise.all(
    state.nodes.map(async (n): Promise<DemoNodeStats> => {
      const [status, served] = await Promise.all([nodeStatus(n).catch(() => undefined), servedStats(n).catch(() => undefined)]);
      const r = served?.requests ?? {};
      const proofs = (r.range ?? 0) + (r.change ?? 0);
      const all = Object.values(r).reduce((a, b) => a + b, 0);
      return {
        name: n.name,
        peerId: n.file.peerId,
        seq: status?.seq ?? null,
        root: status?.root ?? null,
        proofsServed: proofs,
        otherServed: all - proofs,
        bytesServed: Object.values(served?.bytes ?? {}).reduce((a, b) => a + b, 0),
        meanServeMs: served?.meanServeMs ?? null,
        misbehaving: n.name === 'replica' && state.misbehaving,
      };
    }),
  );
}

async function misbehave(state: DemoState, on: boolean): Promise<{ status: number; body: unknown }> {
  const replica = state.nodes.find((n) => n.name === 'replica');
  if (!replica?.file.http || !state.config.misbehave) return { status: 501, body: { error: 'Unavailable', message: 'this replica cannot be told to misbehave (it needs `proofsync node --follow` with POST /v1/misbehave)' } };
  const res = await fetch(`${replica.file.http}/v1/misbehave`, {
    method: 'POST',
    headers: { authorization: `Bearer ${replica.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ on }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (res.ok) state.misbehaving = on;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text };
  }
  return { status: res.ok ? 200 : res.status === 404 ? 501 : 502, body: res.ok ? { on, replica: body } : body };
}

async function write(state: DemoState): Promise<DemoWriteResult> {
  const writer = state.nodes.find((n) => n.name === 'writer')!;
  const key = randomBytes(32).toString('hex');
  const value = randomBytes(16).toString('hex');
  const res = await fetch(`${writer.file.http}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ puts: [{ key, value }] }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`the writer refused the write: ${res.status} ${await res.text()}`);
  const r = (await res.json()) as { seq: number; root: string };
  return { key, value, seq: r.seq, root: r.root, committedAt: Date.now() };
}

/**
 * The routes as a connect-style middleware (what Vite's `server.middlewares` and the static
 * server both take); other paths go to `next`.
 */
export function demoApi(state: DemoState): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  return (req, res, next) => {
    const path = (req.url ?? '/').split('?')[0];
    const run = async (): Promise<void> => {
      if (path === '/demo-config.json' && req.method === 'GET') send(res, 200, state.config);
      else if (path === '/demo/nodes' && req.method === 'GET') send(res, 200, await stats(state));
      else if (path === '/demo/misbehave' && req.method === 'POST') {
        const body = (await readJson(req)) as { on?: unknown };
        if (typeof body.on !== 'boolean') return send(res, 400, { error: 'InvalidBody', message: 'expected {"on": true|false}' });
        const r = await misbehave(state, body.on);
        send(res, r.status, r.body);
      } else if (path === '/demo/write' && req.method === 'POST') send(res, 200, await write(state));
      else next();
    };
    run().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: (err as Error).name, message: (err as Error).message });
    });
  };
}
