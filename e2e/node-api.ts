/**
 * What the e2e tests ask a full-node process over its HTTP API (src/node/http-api.ts): its
 * signed head, the proof bytes it has served (its Prometheus metrics), and its misbehaviour
 * switch (src/node/misbehave.ts), with the bearer token from its data dir.
 *
 * @example
 * const { root, seq } = await nodeStatus(node);
 * await setMisbehaving(node, true); // every range and change proof served from now on is a lie
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TOKEN_FILE } from '../src/node/token.ts';
import type { NodeProcess } from '../src/node/testing/process.ts';

export async function nodeStatus(n: NodeProcess): Promise<{ root: string; seq: number }> {
  return (await fetch(`${n.file.http}/v1/status`)).json() as Promise<{ root: string; seq: number }>;
}

/** Bytes the node has served for range and change proofs. */
export async function servedProofBytes(n: NodeProcess): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^proofsync_response_bytes_total\{protocol="(range|change)"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm)) sum += Number(m[2]);
  return sum;
}

/** Turns the node's misbehaviour switch: while on, it serves tampered range and change proofs. */
export async function setMisbehaving(n: NodeProcess, on: boolean): Promise<void> {
  const token = (await readFile(join(n.dataDir, TOKEN_FILE), 'utf8')).trim();
  const res = await fetch(`${n.file.http}/v1/misbehave`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ on }) });
  if (!res.ok) throw new Error(`misbehave ${on}: HTTP ${res.status} ${await res.text()}`);
}
