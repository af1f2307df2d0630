/**
 * The three checks every hostile-traffic class ends with, against a real node process: the
 * process is alive, `proofsync fetch-range` (the CLI, as a child process) verifies an answer
 * identical to the one before the attack, and the node's RSS grew by at most a bound.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness.ts';
import type { NodeProcess } from '../../src/node/testing/process.ts';
import { procStatus } from './attacks.ts';

export const CLI = join(REPO_ROOT, 'src', 'cli', 'bin.ts');

/** Runs `proofsync fetch-range --peer ADDR` and returns its parsed JSON (exit code 0 required). */
export function fetchRangeCli(peer: string, extra: string[] = []): Promise<{ ok: boolean; root: string; keyValues: unknown[]; nextKey: string | null }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'fetch-range', '--peer', peer, '--timeout', '30000', ...extra], { timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`fetch-range failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

export function isAlive(node: NodeProcess): boolean {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return false;
  try {
    process.kill(node.child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `probe` every `everyMs` until `done(value)` or `timeoutMs`; returns the last value
 * either way, for the caller to assert on (a readable failure rather than a timeout).
 */
export async function pollUntil<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await probe();
  while (!done(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = await probe();
  }
  return v;
}

/** The node's GET /metrics text. */
export async function metricsText(node: NodeProcess): Promise<string> {
  if (!node.file.http) throw new Error('the node has no HTTP API');
  const res = await fetch(`${node.file.http}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return res.text();
}

export interface Baseline {
  answer: Awaited<ReturnType<typeof fetchRangeCli>>;
  rssMB: number;
  threads: number;
}

export async function baseline(node: NodeProcess): Promise<Baseline> {
  const answer = await fetchRangeCli(node.file.ws!);
  const s = await procStatus(node.child.pid!);
  return { answer, rssMB: s.rssMB, threads: s.threads };
}
