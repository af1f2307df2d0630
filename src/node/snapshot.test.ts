import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeAnnouncement, signAnnouncement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { MemoryStore } from '../core/store.ts';
import { syncState } from '../sync/state/driver.ts';
import { httpStateSource } from '../sync/state/http-source.ts';
import { MemoryStateSource } from '../sync/state/memory-source.ts';
import type { StateSource } from '../sync/state/source.ts';
import { canonicalParts, canonicalRangeRequest, canonicalResume } from '../sync/state/plan.ts';
import { serveRangeProof } from '../protocol/serve.ts';
import type { RangeProofRequest } from '../core/types.ts';
import { SnapshotKeeper, writeSnapshot } from './snapshot.ts';
import { startStaticServer, type StaticFileServer } from './testing/static-server.ts';

const enc = new TextEncoder();
const SECRET = new Uint8Array(32).fill(7);
const DB = enc.encode('snapshot-test');

/** A signed announcement of `db`'s current root naming that root as its checkpoint. */
function announce(db: MerkleDatabase, seq: number, checkpoint = { seq, root: db.root }): Uint8Array {
  const a = { db: DB, seq, stateRoot: db.root, logRoot: new Uint8Array(32), logSize: seq, heads: [], hlc: { wallMs: 1000 + seq, counter: 0 }, checkpoint };
  return encodeAnnouncement(signAnnouncement(a, SECRET));
}

/** `n` keys spread over the whole key space (every canonical part gets some). */
function puts(n: number, salt: number) {
  return Array.from({ length: n }, (_, i) => ({ key: Uint8Array.of((i * 7) & 0xff, i >> 8, i & 0xff, salt), value: enc.encode(`v${i}.${salt}`) }));
}

/** Requests in the canonical plan at `db`'s root: each part's first, then each resume. */
async function planLength(db: MerkleDatabase): Promise<number> {
  let n = 0;
  for (const part of canonicalParts()) {
    for (let r: RangeProofRequest | undefined = canonicalRangeRequest(db.root, part.start, part.end); r; n++) r = canonicalResume(r, await serveRangeProof(db, r));
  }
  return n;
}

let dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'proofsync-snapshot-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

let db: MerkleDatabase;
beforeAll(async () => {
  db = await MerkleDatabase.open(new MemoryStore(), { historySize: 10 });
  await db.commit(puts(6000, 1));
});

describe('writeSnapshot', () => {
  it('writes the announcement and one file per canonical request under the checkpoint root', async () => {
    const out = await tempDir();
    const ann = announce(db, 1);
    const r = await writeSnapshot({ db, announcement: ann, out });
    expect(r).toMatchObject({ seq: 1, written: true, pruned: [] });
    expect(equalBytes(r.root, db.root)).toBe(true);
    // at least one answer per part, the exact chain the plan gives (a client asks the same: below)
    expect(r.files).toBe(await planLength(db));
    expect((await readdir(join(out, toHex(db.root)))).length).toBe(r.files);
    expect(new Uint8Array(await readFile(join(out, 'announcement')))).toEqual(ann);
    expect((await readdir(out)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('a checkpoint already on disk is not written again; its announcement is replaced', async () => {
    const out = await tempDir();
    await writeSnapshot({ db, announcement: announce(db, 1), out });
    const again = announce(db, 2, { seq: 1, root: db.root });
    const r = await writeSnapshot({ db, announcement: again, out });
    expect(r).toMatchObject({ written: false, files: 0, seq: 1 });
    expect(new Uint8Array(await readFile(join(out, 'announcement')))).toEqual(again);
  });

  it('keeps the newest two checkpoints and prunes older ones only once a newer one is complete', async () => {
    const out = await tempDir();
    const local = await MerkleDatabase.open(new MemoryStore(), { historySize: 10 });
    const roots: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await local.commit(puts(500, i));
      roots.push(toHex(local.root));
      const r = await writeSnapshot({ db: local, announcement: announce(local, i), out });
      expect(r.pruned).toEqual(i === 3 ? [roots[0]] : []);
    }
    expect((await readdir(out)).filter((n) => /^[0-9a-f]{64}$/.test(n)).toSorted()).toEqual(roots.slice(1).toSorted());
  });

  it('an aborted snapshot leaves no directory and the previous announcement', async () => {
    const out = await tempDir();
    const local = await MerkleDatabase.open(new MemoryStore(), { historySize: 10 });
    await local.commit(puts(500, 1));
    const first = announce(local, 1);
    const firstRoot = toHex(local.root);
    await writeSnapshot({ db: local, announcement: first, out });
    await local.commit(puts(500, 2));
    const controller = new AbortController();
    const p = writeSnapshot({ db: local, announcement: announce(local, 2), out, signal: controller.signal, onProgress: (files) => files === 3 && controller.abort(new Error('stop')) });
    await expect(p).rejects.toThrow('stop');
    expect((await readdir(out)).toSorted()).toEqual(['announcement', firstRoot].toSorted());
    expect(new Uint8Array(await readFile(join(out, 'announcement')))).toEqual(first);
  });

  it('refuses a root the database does not hold', async () => {
    const out = await tempDir();
    const other = await MerkleDatabase.open(new MemoryStore());
    await other.commit(puts(10, 9));
    await expect(writeSnapshot({ db, announcement: announce(other, 5), out })).rejects.toMatchObject({ name: 'RootNotFound' });
    expect((await readdir(out)).filter((n) => n !== 'announcement')).toEqual([]);
  });
});

describe('a snapshot on a plain static server', () => {
  let out: string;
  let files: StaticFileServer;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'proofsync-snapshot-served-'));
    await writeSnapshot({ db, announcement: announce(db, 1), out });
    files = await startStaticServer(out);
  });
  afterAll(async () => {
    await files.close();
    await rm(out, { recursive: true, force: true });
  });

  it('syncs a client from the static files alone: its requests are exactly the files', async () => {
    const store = new MemoryStore();
    const r = await syncState({ store, sources: [httpStateSource(files.url)], target: db.root, requestTimeoutMs: 10_000, canonicalRoot: db.root });
    expect(equalBytes(r.root, db.root)).toBe(true);
    const served = [...files.hits.keys()].filter((p) => p !== '/announcement');
    expect(served.length).toBe((await readdir(join(out, toHex(db.root)))).length);
  });

  it('a tampered file is a rejected proof: the mirror is penalised and a peer finishes the work', async () => {
    const dir = join(out, toHex(db.root));
    const names = await readdir(dir);
    const good = new Map<string, Uint8Array>();
    // every file tampered (a byte flipped near the end: inside a value or the end proof), so
    // whichever the mirror is asked for is wrong; the peer must finish the sync
    for (const name of names) {
      const bytes = new Uint8Array(await readFile(join(dir, name)));
      good.set(name, bytes);
      const bad = Uint8Array.from(bytes);
      bad[bad.length - 3]! ^= 0x01;
      await writeFile(join(dir, name), bad);
    }
    try {
      const penalised: string[] = [];
      const mirror = httpStateSource(files.url);
      // the peer answers only once the mirror was caught: so the mirror is asked first
      let caught!: () => void;
      const mirrorCaught = new Promise<void>((resolve) => (caught = resolve));
      const inner = new MemoryStateSource('peer', db);
      const peer: StateSource = {
        id: 'peer',
        rangeProof: async (req, o) => (await mirrorCaught, inner.rangeProof(req, o)),
        changeProof: async (req, o) => (await mirrorCaught, inner.changeProof(req, o)),
      };
      const r = await syncState({
        store: new MemoryStore(),
        sources: [mirror, peer],
        target: db.root,
        requestTimeoutMs: 10_000,
        canonicalRoot: db.root,
        onPenalise: (id) => {
          penalised.push(id);
          if (id === mirror.id) caught();
        },
      });
      expect(equalBytes(r.root, db.root)).toBe(true);
      expect(penalised).toContain(mirror.id);
      expect(penalised).not.toContain('peer');
    } finally {
      for (const [name, bytes] of good) await writeFile(join(dir, name), bytes);
    }
  });
});

describe('SnapshotKeeper', () => {
  it('writes the checkpoint the announcement names, and the next one when it changes', async () => {
    const out = await tempDir();
    const local = await MerkleDatabase.open(new MemoryStore(), { historySize: 10 });
    await local.commit(puts(300, 1));
    let ann = announce(local, 1);
    const written: number[] = [];
    let notify: () => void = () => {};
    let now = 0;
    const keeper = new SnapshotKeeper({ out, db: () => local, announcement: () => ann, pollMs: 60_000, minIntervalMs: 10_000, now: () => now, log: () => {}, onWritten: (r) => (written.push(r.seq), notify()) });
    const next = () => new Promise<void>((resolve) => (notify = resolve));
    let w = next();
    keeper.start();
    await w;
    await local.commit(puts(300, 2));
    ann = announce(local, 2);
    // within the interval: not yet
    keeper.check();
    expect(written).toEqual([1]);
    now = 10_000;
    w = next();
    keeper.check();
    await w;
    await keeper.stop();
    expect(written).toEqual([1, 2]);
    expect(new Uint8Array(await readFile(join(out, 'announcement')))).toEqual(ann);
  });
});
