/**
 * The HTTP API of a real node process under hostile requests: every case gets a typed JSON
 * error with its status, and afterwards the node is alive, still serves its status and the
 * same verified range proof, and its RSS grew by at most 200 MB.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_FILE } from '../../src/node/token.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../../src/node/testing/process.ts';
import { alive, counter, honestRangeProof, rssMB } from './attacker-libp2p.ts';

const MAX_BODY = 8 * 1024 * 1024;
const HEADERS_TIMEOUT_MS = 1_500;
let node: NodeProcess;
let token: string;
let host: string;
let port: number;
let proofBefore: string;
let rssBefore: number;

beforeAll(async () => {
  node = await startNodeProcess({
    script: FULL_NODE_SCRIPT,
    args: ['--generate', '5000', '--http-headers-timeout', String(HEADERS_TIMEOUT_MS), '--http-request-timeout', '5000'],
    readyTimeoutMs: 60_000,
  });
  token = (await readFile(join(node.dataDir, TOKEN_FILE), 'utf8')).trim();
  const url = new URL(node.file.http!);
  host = url.hostname;
  port = Number(url.port);
  proofBefore = await honestRangeProof(multiaddr(node.file.ws!), node.file.peerId);
  rssBefore = rssMB(node.child.pid!);
});
afterAll(async () => {
  await node?.stop();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after answering. */
  closed: boolean;
}

/**
 * Writes `head` (and `body`, in pieces, while the socket takes it) on a raw TCP connection
 * and reads one answer; `closed` says whether the server then closed the connection.
 */
function raw(head: string, body?: { bytes: number; chunked?: boolean }, timeoutMs = 30_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, host);
    let text = '';
    let answered: Omit<RawAnswer, 'closed'> | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      if (answered) resolve({ ...answered, closed: false });
      else reject(new Error(`no answer within ${timeoutMs} ms: ${JSON.stringify(text.slice(0, 200))}`));
    }, timeoutMs);
    const parse = (): void => {
      const end = text.indexOf('\r\n\r\n');
      if (end < 0 || answered) return;
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? 0);
      if (text.length < end + 4 + length) return;
      answered = { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4, end + 4 + length) };
      if (headers.connection !== 'close') {
        clearTimeout(timer);
        socket.destroy();
        resolve({ ...answered, closed: false });
      }
    };
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      text += s;
      parse();
    });
    socket.on('error', () => {}); // a reset after the answer is the server cutting the upload
    socket.on('close', () => {
      clearTimeout(timer);
      if (answered) resolve({ ...answered, closed: true });
      else reject(new Error(`connection closed without an answer: ${JSON.stringify(text.slice(0, 200))}`));
    });
    socket.write(head);
    if (body) {
      const piece = Buffer.alloc(256 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < body.bytes && !socket.destroyed && !answered) {
          const n = Math.min(piece.length, body.bytes - sent);
          sent += n;
          const chunk = body.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), Buffer.from('\r\n')]) : piece.subarray(0, n);
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        if (sent >= body.bytes && body.chunked && !socket.destroyed) socket.write('0\r\n\r\n');
      };
      pump();
    }
  });
}

const request = (method: string, path: string, headers: Record<string, string> = {}, body = ''): string =>
  `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n${Object.entries({ 'content-length': String(Buffer.byteLength(body)), ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;
const bearer = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

type Case = { name: string; send: () => Promise<RawAnswer>; status: number; error: string; closed?: boolean };
const cases: Case[] = [
  { name: 'batch without a token', send: () => raw(request('POST', '/v1/batch', {}, '{"puts":[]}')), status: 401, error: 'Unauthorized' },
  { name: 'batch with a wrong token of the same length', send: () => raw(request('POST', '/v1/batch', { authorization: `Bearer ${'0'.repeat(token.length)}` }, '{}')), status: 401, error: 'Unauthorized' },
  { name: 'batch with a one-character token', send: () => raw(request('POST', '/v1/batch', { authorization: 'Bearer x' }, '{}')), status: 401, error: 'Unauthorized' },
  { name: 'batch with a Basic scheme', send: () => raw(request('POST', '/v1/batch', { authorization: `Basic ${token}` }, '{}')), status: 401, error: 'Unauthorized' },
  { name: 'misbehave without a token', send: () => raw(request('POST', '/v1/misbehave', {}, '{"on":true}')), status: 401, error: 'Unauthorized' },
  { name: 'malformed JSON', send: () => raw(request('POST', '/v1/batch', bearer(), '{"puts": [')), status: 400, error: 'InvalidBody' },
  { name: 'JSON of the wrong shape', send: () => raw(request('POST', '/v1/batch', bearer(), '[1,2,3]')), status: 400, error: 'InvalidBody' },
  { name: 'a key that is not hex', send: () => raw(request('POST', '/v1/batch', bearer(), '{"puts":[{"key":"zz","value":"00"}]}')), status: 400, error: 'InvalidBody' },
  { name: 'misbehave with a non-boolean', send: () => raw(request('POST', '/v1/misbehave', bearer(), '{"on":"yes"}')), status: 400, error: 'InvalidBody' },
  { name: 'a 50 MB body declared up front', send: () => raw(request('POST', '/v1/batch', { ...bearer(), 'content-length': String(50 * 1024 * 1024) }).replace(/\r\n\r\n$/, '\r\n\r\n'), { bytes: 50 * 1024 * 1024 }), status: 413, error: 'BodyTooLarge', closed: true },
  {
    name: 'a 50 MB chunked body',
    send: () => raw(`POST /v1/batch HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\n\r\n`, { bytes: 50 * 1024 * 1024, chunked: true }),
    status: 413,
    error: 'BodyTooLarge',
    closed: true,
  },
  { name: 'a 50 MB body without a token', send: () => raw(request('POST', '/v1/batch', { 'content-length': String(50 * 1024 * 1024) }).replace(/\r\n\r\n$/, '\r\n\r\n'), { bytes: 50 * 1024 * 1024 }), status: 401, error: 'Unauthorized', closed: true },
  { name: 'slow headers', send: () => raw(`GET /v1/status HTTP/1.1\r\nhost: ${host}\r\nx-slow: `), status: 408, error: 'RequestTimeout', closed: true },
  { name: 'a request line that is not HTTP', send: () => raw('GARBAGE\x00\x01\x02 /\r\n\r\n'), status: 400, error: 'MalformedRequest', closed: true },
  { name: '64 KiB of headers', send: () => raw(request('GET', '/v1/status', { 'x-big': 'a'.repeat(64 * 1024) })), status: 431, error: 'HeadersTooLarge', closed: true },
  { name: 'an unknown path', send: () => raw(request('GET', '/v2/anything')), status: 404, error: 'NotFound' },
  { name: 'a wrong method', send: () => raw(request('DELETE', '/v1/status')), status: 405, error: 'MethodNotAllowed' },
  { name: 'traversal ../../etc/passwd', send: () => raw(request('GET', '/../../etc/passwd')), status: 404, error: 'NotFound' },
  { name: 'traversal /v1/../v1/batch', send: () => raw(request('POST', '/v1/../v1/batch', bearer(), '{}')), status: 404, error: 'NotFound' },
  { name: 'traversal %2e%2e encoded', send: () => raw(request('GET', '/%2e%2e/%2e%2e/etc/passwd')), status: 404, error: 'NotFound' },
  { name: 'traversal with backslashes', send: () => raw(request('GET', '/..\\..\\windows\\win.ini')), status: 404, error: 'NotFound' },
  { name: 'an absolute-form target', send: () => raw(request('GET', 'http://evil.example/v1/../../etc/passwd')), status: 404, error: 'NotFound' },
];

describe('HTTP API under hostile requests', () => {
  for (const c of cases) {
    it(`${c.name} -> ${c.status} ${c.error}`, async () => {
      const answer = await c.send();
      expect(answer.status).toBe(c.status);
      expect(JSON.parse(answer.body)).toMatchObject({ error: c.error, message: expect.any(String) });
      if (c.closed !== undefined) expect(answer.closed).toBe(c.closed);
      expect(alive(node.child.pid!)).toBe(true);
    });
  }

  it('the node is alive, serves its status, the same verified proof, within 200 MB more RSS, and counted the errors', async () => {
    expect(alive(node.child.pid!)).toBe(true);
    const status = await fetch(`${node.file.http}/v1/status`);
    expect(status.status).toBe(200);
    expect(await honestRangeProof(multiaddr(node.file.ws!), node.file.peerId)).toBe(proofBefore);
    expect(rssMB(node.child.pid!) - rssBefore).toBeLessThanOrEqual(200);
    expect(await counter(node.file.http!, 'proofsync_http_errors_total', { status: '401' })).toBeGreaterThanOrEqual(5);
    expect(await counter(node.file.http!, 'proofsync_http_errors_total', { status: '413' })).toBeGreaterThanOrEqual(2);
    expect(await counter(node.file.http!, 'proofsync_http_errors_total', { status: '408' })).toBeGreaterThanOrEqual(1);
    // the body limit is the default one
    expect(MAX_BODY).toBe(8 * 1024 * 1024);
  });
});
