/**
 * Replica nodes against real node processes (state sync and live following in Node): a
 * writer with 100,000 generated keys keeps writing; replicas sync from it and from each other,
 * one of them lying; a sync stopped part-way resumes; a follower applies every commit live and
 * recovers from a gap by gap filling and, past its gap limit, by change-proof catch-up.
 * Everything waits on the nodes' own log lines and HTTP answers, never on time.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_NODE_SCRIPT, startNodeProcess, waitForOutput, type NodeProcess } from './testing/process.ts';

const KEYS = 100_000;
const started: NodeProcess[] = [];

interface Status {
  root: string;
  logSize: number;
  seq: number;
  replica?: {
    phase: string;
    appliedLogSize: number;
    deltasApplied: number;
    gapFills: number;
    catchUps: number;
    banned: string[];
    sync: { keyValuesReceived: number; bytesReceived: number; peersUsed: number; peersBanned: number; proofsRejected: number } | null;
  };
}

const reused = new Set<string>();

async function start(args: string[], dataDir?: string): Promise<NodeProcess> {
  if (dataDir) reused.add(dataDir); // kept by the process helper: removed here at the end
  const n = await startNodeProcess({ script: FULL_NODE_SCRIPT, args, dataDir, readyTimeoutMs: 60_000 });
  started.push(n);
  return n;
}

function replicaOf(writer: NodeProcess, bootstrap: NodeProcess[], extra: string[] = [], dataDir?: string): Promise<NodeProcess> {
  return start(['--follow', writer.file.peerId, ...bootstrap.flatMap((b) => ['--bootstrap', b.file.ws!]), ...extra], dataDir);
}

async function status(n: NodeProcess): Promise<Status> {
  return (await fetch(`${n.file.http}/v1/status`)).json() as Promise<Status>;
}

async function post(n: NodeProcess, path: string, body: unknown): Promise<Record<string, unknown>> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  const res = await fetch(`${n.file.http}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

let batchNo = 0;
/** One commit on the writer; returns its log index and root. */
async function commit(writer: NodeProcess): Promise<{ logIndex: number; root: string }> {
  const key = (0xa0000000 + batchNo++).toString(16).padStart(64, '0');
  const r = await post(writer, '/v1/batch', { puts: [{ key, value: 'beef' }] });
  return { logIndex: (r.logSize as number) - 1, root: r.root as string };
}

/** Waits until `replica` has applied the writer's newest commit (made by us, so it is known). */
async function caughtUp(writer: NodeProcess, replica: NodeProcess): Promise<void> {
  const c = await commit(writer);
  await waitForOutput(replica, new RegExp(`applied log ${c.logIndex} root ${c.root}|catch-up done: root ${c.root}`));
}

let writer: NodeProcess;
let honest: NodeProcess;

beforeAll(async () => {
  // 8 checkpoints kept, not 2: at 20 commits a second one lives ~26 s instead of ~6 s, so a
  // replica's first sync on a loaded machine reaches the checkpoint it started for (a run at
  // load 10-13 gave up on two expired ones and ran past 90 s); replica-checkpoint.test.ts
  // covers the expiry fallback itself
  writer = await start(['--generate', String(KEYS), '--simulate-writes', '20', '--checkpoints-kept', '8']);
  honest = await replicaOf(writer, [writer]);
  await waitForOutput(honest, /^.* following /m);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(started.map((n) => n.stop()));
  await Promise.allSettled([...reused].map((d) => rm(d, { recursive: true, force: true })));
});

describe('replica node', () => {
  it(`syncs ${KEYS.toLocaleString('en')} keys from two nodes while the writer writes, then holds the writer's root`, async () => {
    const r = await replicaOf(writer, [writer, honest]);
    const done = await waitForOutput(r, /sync done: root ([0-9a-f]{64}) seq (\d+)/);
    const s = await status(r);
    expect(s.replica!.sync!.keyValuesReceived).toBeGreaterThanOrEqual(KEYS);
    expect(s.replica!.sync!.peersUsed).toBe(2);
    expect(s.replica!.sync!.proofsRejected).toBe(0);
    expect(Number(done[2])).toBeGreaterThan(1); // the writer had moved on
    // the writer's newest root at a moment after the sync: the replica reaches exactly it
    await waitForOutput(r, /log filled to \d+/);
    await caughtUp(writer, r);
    // the replica's first: the writer commits 20 a second, and read second it could be behind a
    // commit the replica applied between the two reads (seen: writer 592, replica 593)
    const rs = await status(r);
    const ws = await status(writer);
    expect(rs.replica!.appliedLogSize).toBeGreaterThan(0);
    expect(rs.logSize).toBe(rs.replica!.appliedLogSize); // the log was filled in too
    expect(rs.replica!.catchUps).toBe(0);
    expect(ws.logSize).toBeGreaterThanOrEqual(rs.logSize);
  }, 90_000);

  it('detects a lying node, bans it, and completes from the honest one', async () => {
    await post(honest, '/v1/misbehave', { on: true });
    const honestId = honest.file.peerId;
    try {
      const r = await replicaOf(writer, [writer, honest]);
      await waitForOutput(r, new RegExp(`peer ${honestId} banned`));
      await waitForOutput(r, /sync done: root/);
      const s = await status(r);
      expect(s.replica!.banned).toEqual([honestId]);
      expect(s.replica!.sync!.proofsRejected).toBeGreaterThanOrEqual(3);
      await caughtUp(writer, r);
      await r.stop();
    } finally {
      await post(honest, '/v1/misbehave', { on: false });
    }
  }, 90_000);

  it('resumes a sync stopped part-way without fetching completed ranges again', async () => {
    const first = await replicaOf(writer, [writer]);
    const at = await waitForOutput(first, /sync: 30% \((\d+) key-values/);
    expect(Number(at[1])).toBeLessThan(KEYS);
    await first.stop({ keepDataDir: true });
    const second = await replicaOf(writer, [writer], [], first.dataDir);
    await waitForOutput(second, /sync done: root/);
    const s = await status(second);
    // at least 30% was committed before the stop; what is left, plus catching the done part up
    // to the moved target with change proofs, is well under the whole
    expect(s.replica!.sync!.keyValuesReceived).toBeLessThan(KEYS * 0.8);
    await caughtUp(writer, second);
    await second.stop();
    // 8 s on a quiet machine; 77 s measured with the machine at load 12 (two other suites running)
  }, 180_000);

  it('follows every commit live, then recovers from a gap by gap filling and by change-proof catch-up', async () => {
    await caughtUp(writer, honest);
    const before = await status(honest);
    for (let i = 0; i < 3; i++) await caughtUp(writer, honest);
    const live = await status(honest);
    expect(live.replica!.catchUps).toBe(before.replica!.catchUps);
    expect(live.replica!.deltasApplied).toBeGreaterThan(before.replica!.deltasApplied);

    // a gap within the limit: stopped while the writer commits, then restarted
    await honest.stop({ keepDataDir: true });
    for (let i = 0; i < 5; i++) await commit(writer);
    honest = await replicaOf(writer, [writer], [], honest.dataDir);
    await caughtUp(writer, honest);
    const filled = await status(honest);
    expect(filled.replica!.gapFills).toBeGreaterThan(0);
    expect(filled.replica!.catchUps).toBe(0);

    // a gap past the limit: catch-up by change proof
    await honest.stop({ keepDataDir: true });
    for (let i = 0; i < 5; i++) await commit(writer);
    honest = await replicaOf(writer, [writer], ['--max-gap', '2'], honest.dataDir);
    await waitForOutput(honest, /catch-up done: root/);
    await caughtUp(writer, honest);
    const caught = await status(honest);
    expect(caught.replica!.catchUps).toBeGreaterThan(0);
  }, 90_000);
});
