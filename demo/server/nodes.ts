/**
 * The demo's full nodes: `proofsync node` child processes on loopback, a writer with a
 * generated database committing simulated writes, and a replica following it. Each runs in its
 * own data dir with its output in `node.log` there; `stop()` sends SIGTERM (SIGKILL after a grace
 * period) and waits for the exit, so Ctrl-C on the launcher leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

/** The part of a node's `addresses.json` the demo reads. */
export interface NodeAddresses {
  peerId: string;
  ws: string | null;
  webrtcDirect: string | null;
  db?: string;
  writer?: boolean;
  http?: string | null;
}

export interface DemoNode {
  name: 'writer' | 'replica';
  dataDir: string;
  file: NodeAddresses;
  /** The HTTP API's bearer token (DIR/token). */
  token: string;
  child: ChildProcess;
  /** The last lines the node wrote, for error messages. */
  tail(): string;
  stop(graceMs?: number): Promise<void>;
}

/** A node process that exited before it printed `ready`; `code` 2 is a usage error. */
export class NodeStartFailed extends Error {
  override readonly name = 'NodeStartFailed';
  readonly code: number | null;
  readonly output: string;
  constructor(message: string, code: number | null, output: string) {
    super(message);
    this.code = code;
    this.output = output;
  }
}

/**
 * Starts `proofsync node --data DIR ...args` and resolves once it prints `ready`.
 *
 * @example
 * const writer = await startDemoNode('writer', dir, ['--generate', '200000', '--simulate-writes', '2']);
 */
export async function startDemoNode(name: DemoNode['name'], dataDir: string, args: string[], o: { readyTimeoutMs?: number; signal?: AbortSignal } = {}): Promise<DemoNode> {
  await mkdir(dataDir, { recursive: true });
  const log = createWriteStream(join(dataDir, 'node.log'));
  const child = spawn(process.execPath, [CLI, 'node', '--data', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (s: string): void => {
    log.write(s);
    tail = (tail + s).slice(-4000);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    log.end();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = o.readyTimeoutMs ?? 600_000;
      const timer = setTimeout(() => reject(new Error(`the ${name} node did not start within ${timeoutMs} ms:\n${tail}`)), timeoutMs);
      const onAbort = (): void => reject(o.signal!.reason);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const onData = (): void => {
        if (/^ready /m.test(tail)) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          o.signal?.removeEventListener('abort', onAbort);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new NodeStartFailed(`the ${name} node exited (${code ?? signal}) before it was ready:\n${tail}`, code, tail));
      });
    });
    const file = JSON.parse(await readFile(join(dataDir, 'addresses.json'), 'utf8')) as NodeAddresses;
    const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
    return { name, dataDir, file, token, child, tail: () => tail, stop };
  } catch (err) {
    await stop(1_000);
    throw err;
  }
}

/** A node's `/v1/status` (the fields the demo reads). */
export interface NodeStatus {
  root: string;
  seq: number | null;
  peers: number;
}

export async function nodeStatus(node: DemoNode, signal?: AbortSignal): Promise<NodeStatus | undefined> {
  if (!node.file.http) return undefined;
  const res = await fetch(`${node.file.http}/v1/status`, { signal: signal ?? AbortSignal.timeout(2_000) });
  return res.ok ? ((await res.json()) as NodeStatus) : undefined;
}

/** What a node has served, from its Prometheus metrics. */
export interface ServedStats {
  /** Requests answered successfully per protocol (range, change, heads, delta, log, key…). */
  requests: Record<string, number>;
  /** Bytes of answers per protocol. */
  bytes: Record<string, number>;
  /** Errors per protocol. */
  errors: Record<string, number>;
  /** Mean time to answer a request (server side), ms. */
  meanServeMs: number | undefined;
}

/** Parses the `proofsync_*` counters the node exports (node/metrics.ts). */
export function parseServed(text: string): ServedStats {
  const out: ServedStats = { requests: {}, bytes: {}, errors: {}, meanServeMs: undefined };
  let sum = 0;
  let count = 0;
  for (const m of text.matchAll(/^(proofsync_\w+)\{([^}]*)\} ([0-9.e+-]+)$/gm)) {
    const [, metric, labels, value] = m;
    const protocol = /protocol="([^"]+)"/.exec(labels)?.[1] ?? '?';
    const v = Number(value);
    if (metric === 'proofsync_requests_total') {
      if (/outcome="ok"/.test(labels)) out.requests[protocol] = (out.requests[protocol] ?? 0) + v;
    } else if (metric === 'proofsync_response_bytes_total') out.bytes[protocol] = (out.bytes[protocol] ?? 0) + v;
    else if (metric === 'proofsync_errors_total') out.errors[protocol] = (out.errors[protocol] ?? 0) + v;
    else if (metric === 'proofsync_request_duration_seconds_sum') sum += v;
    else if (metric === 'proofsync_request_duration_seconds_count') count += v;
  }
  if (count > 0) out.meanServeMs = (sum / count) * 1000;
  return out;
}

export async function servedStats(node: DemoNode, signal?: AbortSignal): Promise<ServedStats | undefined> {
  if (!node.file.http) return undefined;
  const res = await fetch(`${node.file.http}/metrics`, { signal: signal ?? AbortSignal.timeout(2_000) });
  return res.ok ? parseServed(await res.text()) : undefined;
}
