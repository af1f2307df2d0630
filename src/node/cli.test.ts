/**
 * The node's CLI from the shell, as outside tools use it: `proofsync put` through the HTTP API,
 * `proofsync fetch-range` over libp2p checking the peer's signed announcement (the writer's own,
 * or relayed by a replica and checked against `--writer`), and `proofsync node` stopping
 * cleanly on a signal.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_NODE_SCRIPT, startNodeProcess, waitForOutput, type NodeProcess } from './testing/process.ts';

const BIN = fileURLToPath(new URL('../cli/bin.ts', import.meta.url));
const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

let node: NodeProcess;
beforeAll(async () => {
  node = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--generate', '50'] });
});
afterAll(() => node?.stop());

describe('proofsync CLI against a running node', () => {
  it('put, then fetch-range over WebSockets and WebRTC-Direct verifies against the signed announcement', async () => {
    const put = await run('put', '--data', node.dataDir, '--key', '0001', '--value', 'cafe');
    expect(put.code).toBe(0);
    const written = JSON.parse(put.stdout) as { root: string; seq: number; logSize: number };
    expect(written.logSize).toBe(1);

    for (const addr of [node.file.ws!, node.file.webrtcDirect!]) {
      const res = await run('fetch-range', '--peer', addr, '--key-limit', '5');
      expect(res.code).toBe(0);
      const out = JSON.parse(res.stdout) as { ok: boolean; keyValues: { key: string; value: string }[]; nextKey: string | null; root: string };
      expect(out.ok).toBe(true);
      expect(out.root).toBe(written.root);
      expect(out.keyValues[0]).toEqual({ key: '0001', value: 'cafe' });
      expect(out.keyValues).toHaveLength(5);
      expect(out.nextKey).not.toBeNull();
    }
    const atRoot = JSON.parse((await run('fetch-range', '--peer', node.file.ws!, '--root', written.root, '--start', 'ff')).stdout) as { ok: boolean; keyValues: unknown[] };
    expect(atRoot.ok).toBe(true);
  });

  it('typed failures: an unknown root, a peer id that is not the writer, bad usage', async () => {
    const unknown = await run('fetch-range', '--peer', node.file.ws!, '--root', '11'.repeat(32));
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ ok: false, error: 'RootNotFound' });
    expect((await run('fetch-range', '--peer', '/ip4/127.0.0.1/tcp/1/ws')).code).toBe(2);
    expect((await run('put', '--data', node.dataDir, '--key', 'zz', '--value', '00')).code).toBe(2);
    const denied = await run('put', '--url', node.file.http!, '--token', 'nope', '--key', '00', '--value', '00');
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout)).toMatchObject({ error: 'Unauthorized' });
  });

  it('fetch-range through a replica verifies against --writer; a wrong --writer, or none, is InvalidSignature', async () => {
    const replica = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--follow', node.file.peerId, '--bootstrap', node.file.ws!], readyTimeoutMs: 60_000 });
    try {
      const { root } = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };
      await waitForOutput(replica, new RegExp(`following \\S+ at root ${root}|applied log \\d+ root ${root}`));

      const viaReplica = await run('fetch-range', '--peer', replica.file.ws!, '--writer', node.file.peerId, '--key-limit', '5');
      expect(viaReplica.code, viaReplica.stderr).toBe(0);
      const out = JSON.parse(viaReplica.stdout) as { ok: boolean; root: string; writer: string; keyValues: unknown[] };
      expect(out).toMatchObject({ ok: true, root, writer: node.file.peerId });
      expect(out.keyValues).toHaveLength(5);
      // the same answer, byte for byte, as the writer's own
      const direct = await run('fetch-range', '--peer', node.file.ws!, '--key-limit', '5');
      expect(JSON.parse(direct.stdout)).toEqual(out);

      const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
      for (const writerArgs of [['--writer', stranger], ['--writer', replica.file.peerId], []]) {
        const res = await run('fetch-range', '--peer', replica.file.ws!, ...writerArgs);
        expect(res.code, writerArgs.join(' ')).toBe(1);
        expect(JSON.parse(res.stdout)).toMatchObject({ ok: false, error: 'InvalidSignature' });
      }
      const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString();
      for (const bad of ['not-a-peer-id', secp]) {
        const res = await run('fetch-range', '--peer', replica.file.ws!, '--writer', bad);
        expect(res.code, bad).toBe(2);
        expect(res.stderr).toContain('--writer');
      }
    } finally {
      await replica.stop();
    }
  });

  it('node stops cleanly on SIGINT and on SIGTERM', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const other = await startNodeProcess({ script: FULL_NODE_SCRIPT, args: ['--no-http'] });
      const exited = new Promise<number | null>((resolve) => other.child.once('close', (code) => resolve(code)));
      other.child.kill(signal);
      expect(await exited).toBe(0);
      expect(other.output()).toContain(`${signal}: stopping`);
      await other.stop();
    }
  });
});
