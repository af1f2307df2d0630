import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHost } from './host.ts';
import { IDENTITY_FILE, loadOrCreateIdentity } from './identity.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadOrCreateIdentity', () => {
  it('creates an Ed25519 key with mode 0600 and returns the same key afterwards', async () => {
    const a = await loadOrCreateIdentity(join(dir, 'nested'));
    expect(a.type).toBe('Ed25519');
    expect((await stat(join(dir, 'nested', IDENTITY_FILE))).mode & 0o777).toBe(0o600);
    const b = await loadOrCreateIdentity(join(dir, 'nested'));
    expect(peerIdFromPrivateKey(b).equals(peerIdFromPrivateKey(a))).toBe(true);
  });

  it('two concurrent first starts agree on one key', async () => {
    const [a, b] = await Promise.all([loadOrCreateIdentity(dir), loadOrCreateIdentity(dir)]);
    expect(peerIdFromPrivateKey(a).toString()).toBe(peerIdFromPrivateKey(b).toString());
  });

  it('refuses a garbage key file and a world-readable one', async () => {
    await writeFile(join(dir, IDENTITY_FILE), 'not a key', { mode: 0o600 });
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'InvalidIdentityFile' });
    await loadOrCreateIdentity(join(dir, 'ok'));
    await chmod(join(dir, 'ok', IDENTITY_FILE), 0o644);
    await expect(loadOrCreateIdentity(join(dir, 'ok'))).rejects.toMatchObject({ name: 'InvalidIdentityFile' });
  });
});

describe('createHost', () => {
  it('listens on ws and webrtc-direct, writes addresses.json, keeps its peer id across restarts', async () => {
    const first = await createHost({ dataDir: dir, privateKey: await loadOrCreateIdentity(dir) });
    const file = JSON.parse(await readFile(join(dir, 'addresses.json'), 'utf8'));
    await first.stop();
    expect(file).toEqual(first.file);
    expect(file.ws).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${file.peerId}$`));
    expect(file.webrtcDirect).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/udp/\\d+/webrtc-direct/certhash/u[\\w-]+/p2p/${file.peerId}$`));

    const second = await createHost({ dataDir: dir, privateKey: await loadOrCreateIdentity(dir), listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    await second.stop();
    expect(second.file.peerId).toBe(file.peerId);
    expect(second.file.webrtcDirect).toBeNull();
  });
});
