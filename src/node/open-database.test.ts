import { generateKeyPair } from '@libp2p/crypto/keys';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../core/bytes.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import type { Progress } from './full-node-options.ts';
import { openDatabase, writerKeys, type WriterKeys } from './open-database.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'proofsync-open-db-'));
  dirs.push(dir);
  return dir;
}

async function keys(): Promise<WriterKeys> {
  return writerKeys(await generateKeyPair('Ed25519'));
}

describe('openDatabase', () => {
  it('loads `generate` seeded keys into an empty store once, and ignores it on a store with data', async () => {
    const dataDir = await tempDir();
    const k = await keys();
    const progress: Progress[] = [];
    const first = await openDatabase({ dataDir, generate: 50, onProgress: (p) => progress.push(p) }, k, { isWriter: true, defaultDb: 'inventory', log: () => {} });
    const root = toHex(first.store.db.root);
    expect(first.db).toBe('inventory');
    expect(first.writer).toBeDefined();
    expect(root).not.toBe(toHex(EMPTY_ROOT));
    expect(progress.some((p) => p.phase === 'load')).toBe(true);
    await first.store.close();

    const lines: string[] = [];
    const again = await openDatabase({ dataDir, generate: 50, seed: 9 }, k, { isWriter: true, defaultDb: 'other', log: (l) => lines.push(l) });
    expect(again.db).toBe('inventory'); // the name kept in the store wins over the default
    expect(toHex(again.store.db.root)).toBe(root);
    expect(lines).toEqual([`--generate ignored: the database is not empty (root ${root})`]);
    await again.store.close();
  });

  it('opens no writer and generates nothing on a node that does not write', async () => {
    const dataDir = await tempDir();
    const opened = await openDatabase({ dataDir, generate: 50 }, await keys(), { isWriter: false, defaultDb: 'replica-of-x', log: () => {} });
    expect(opened.writer).toBeUndefined();
    expect(toHex(opened.store.db.root)).toBe(toHex(EMPTY_ROOT));
    expect(opened.opLog.size).toBe(0);
    await opened.store.close();
  });

  it('closes the store when a step fails, so the data directory opens again', async () => {
    const dataDir = await tempDir();
    const k = await keys();
    const first = await openDatabase({ dataDir }, k, { isWriter: true, defaultDb: 'inventory', log: () => {} });
    await first.store.close();
    await expect(openDatabase({ dataDir, db: 'payroll' }, k, { isWriter: true, defaultDb: 'x', log: () => {} })).rejects.toMatchObject({
      name: 'InvalidRequest',
    });
    // LevelDB holds a lock on its directory while open: this open fails if the store leaked
    const reopened = await openDatabase({ dataDir }, k, { isWriter: true, defaultDb: 'x', log: () => {} });
    expect(reopened.db).toBe('inventory');
    await reopened.store.close();
  });
});
