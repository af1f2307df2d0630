/**
 * The checkpoint schedule and the writer that follows it, on a real LevelDB: which commits are
 * named checkpoints, what the signed announcement says, what survives a reopen past the window.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ANNOUNCEMENT_TAG, ANNOUNCEMENT_V2_TAG, decodeAnnouncement, verifyAnnouncement } from '../core/announcement.ts';
import { toHex } from '../core/bytes.ts';
import { verifyRangeProof } from '../core/proof.ts';
import { checkpointDue, checkpointSchedule, type CheckpointSchedule } from './checkpoints.ts';
import { openNodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { DatabaseWriter } from './writer.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const secretKey = new Uint8Array(32).fill(7);
const publicKey = ed25519.getPublicKey(secretKey);
const root = new Uint8Array(32).fill(3);

async function open(dir: string, schedule: CheckpointSchedule, clock: { t: number }, historySize = 300) {
  const store = await openNodeStore(dir, { historySize });
  const log = await OperationLog.open(store.log, store.deltas);
  const writer = await DatabaseWriter.open({ store, log, secretKey, publicKey, db: 'cp', wallClock: () => clock.t, checkpoints: schedule });
  return { store, log, writer };
}

const put = (i: number) => [{ key: Uint8Array.of(i & 255, 1), value: Uint8Array.of(i & 255) }];

describe('checkpointDue', () => {
  it('by count, by time, whichever first; the first commit without one names one; off when both are 0', () => {
    const s = checkpointSchedule({ every: 4, intervalMs: 1000 });
    expect(checkpointDue(s, undefined, 9, 0)).toBe(true);
    expect(checkpointDue(s, { seq: 5, root }, 8, 999)).toBe(false);
    expect(checkpointDue(s, { seq: 5, root }, 9, 0)).toBe(true);
    expect(checkpointDue(s, { seq: 5, root }, 6, 1000)).toBe(true);
    expect(checkpointDue({ every: 0, intervalMs: 1000 }, { seq: 5, root }, 500, 10)).toBe(false);
    expect(checkpointDue({ every: 4, intervalMs: 0 }, { seq: 5, root }, 6, 1e9)).toBe(false);
    expect(checkpointDue({ every: 0, intervalMs: 0 }, undefined, 1, 1e9)).toBe(false);
    expect(checkpointSchedule()).toEqual({ every: 64, intervalMs: 60_000 });
    expect(() => checkpointSchedule({ every: -1 })).toThrow(RangeError);
  });
});

describe('the writer names checkpoints', () => {
  it('every N commits: the announcement carries the newest, signed (version 2)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ps-cp-'));
    dirs.push(dir);
    const clock = { t: 1_000 };
    const { store, writer } = await open(dir, { every: 3, intervalMs: 0 }, clock);
    // the first announcement (no commits yet) names the state it opened at
    expect(writer.announcement.checkpoint).toEqual({ seq: writer.announcement.seq, root: store.db.root });
    const named: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await writer.commit(put(i));
      const c = r.announcement.checkpoint!;
      expect(c.seq).toBeLessThanOrEqual(r.announcement.seq);
      if (c.seq === r.announcement.seq) {
        named.push(c.seq);
        expect(toHex(c.root)).toBe(toHex(r.root));
      }
      expect(r.announcementBytes[0]).toBe(ANNOUNCEMENT_V2_TAG);
      const decoded = decodeAnnouncement(r.announcementBytes);
      expect(() => verifyAnnouncement(decoded, publicKey)).not.toThrow();
      expect(decoded.checkpoint?.seq).toBe(c.seq);
    }
    expect(named).toEqual([4, 7]);
    await store.close();
  });

  it('by time: the first commit 60 s after the last checkpoint is one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ps-cp-'));
    dirs.push(dir);
    const clock = { t: 1_000 };
    const { store, writer } = await open(dir, { every: 0, intervalMs: 60_000 }, clock);
    const first = writer.announcement.checkpoint!;
    clock.t += 59_999;
    expect((await writer.commit(put(1))).announcement.checkpoint).toEqual(first);
    clock.t += 1;
    const r = await writer.commit(put(2));
    expect(r.announcement.checkpoint).toEqual({ seq: r.announcement.seq, root: r.root });
    await store.close();
  });

  it('names none when off: announcements stay version 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ps-cp-'));
    dirs.push(dir);
    const { store, writer } = await open(dir, { every: 0, intervalMs: 0 }, { t: 1 });
    const r = await writer.commit(put(1));
    expect(r.announcement.checkpoint).toBeUndefined();
    expect(r.announcementBytes[0]).toBe(ANNOUNCEMENT_TAG);
    await store.close();
  });

  it('keeps the last two checkpoints servable past the history window, across a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ps-cp-'));
    dirs.push(dir);
    const clock = { t: 1 };
    let { store, writer } = await open(dir, { every: 10, intervalMs: 0 }, clock, 4);
    for (let i = 0; i < 25; i++) await writer.commit(put(i));
    const c = writer.announcement.checkpoint!;
    expect(store.db.checkpoints()).toHaveLength(2);
    const [older] = store.db.checkpoints();
    await store.close();
    ({ store, writer } = await open(dir, { every: 10, intervalMs: 0 }, clock, 4));
    expect(toHex(writer.announcement.checkpoint!.root)).toBe(toHex(c.root));
    for (let i = 25; i < 29; i++) await writer.commit(put(i));
    // 4 commits past the newest checkpoint, 14 past the older: both outside a 4-commit window
    for (const r of [older, c.root]) {
      expect(store.db.isCheckpoint(r)).toBe(true);
      const proof = await store.db.rangeProof(r, { keyLimit: 1000 });
      expect(() => verifyRangeProof(proof, { root: r, keyLimit: 1000 })).not.toThrow();
    }
    await writer.commit(put(30)); // the 30th commit names the next; the oldest of three goes
    expect(store.db.isCheckpoint(older)).toBe(false);
    expect(store.db.checkpoints().map(toHex)).toEqual([c.root, writer.announcement.checkpoint!.root].map(toHex));
    await store.close();
  });
});
