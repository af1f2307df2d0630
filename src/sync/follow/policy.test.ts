/**
 * The follow policy's cases, each a named row: a policy brought to a starting point, one event,
 * the actions it must return and the state after. The drivers' own tests (the browser
 * follower's, the replica's) cover the same decisions against real DAGs, stores and peers.
 */
import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT } from '../../core/types.ts';
import { classifyAnnouncement, FollowPolicy, type AnnouncementCase, type FollowAction, type FollowEvent, type FollowPolicyConfig, type FollowState } from './policy.ts';

const CONFIG: FollowPolicyConfig = { graceMs: 250, retryMs: 1000, maxRetryMs: 4000 };
const NOW = 1_000_000;

/** A policy brought to a point by a few events (their actions are not checked here). */
function at(point: 'syncing' | 'live' | 'live-applying' | 'live-filling' | 'grace-set' | 'catching-up' | 'closed', config = CONFIG): FollowPolicy {
  const p = new FollowPolicy(config);
  if (point === 'syncing') return p;
  p.step({ type: 'at-root', reason: 'synced', now: NOW }); // live, applying
  p.step({ type: 'apply-ended' });
  p.step({ type: 'fill-ended', outcome: 'nothing-missing' });
  if (point === 'live-applying') p.step({ type: 'ready' });
  if (point === 'live-filling') p.step({ type: 'timer', timer: 'retry', hint: 'p1', now: NOW });
  if (point === 'grace-set') p.step({ type: 'missing', from: 'p1', now: NOW });
  if (point === 'catching-up') p.step({ type: 'expired' });
  if (point === 'closed') p.step({ type: 'close' });
  return p;
}

interface Case {
  name: string;
  from: Parameters<typeof at>[0];
  event: FollowEvent;
  actions: FollowAction[];
  state?: Partial<FollowState>;
}

const CASES: Case[] = [
  // going live
  { name: 'at a root: live, apply, look for gaps', from: 'syncing', event: { type: 'at-root', reason: 'synced', now: NOW }, actions: [{ type: 'mode', mode: 'live', reason: 'synced' }, { type: 'apply' }, { type: 'fill', hint: undefined }], state: { mode: 'live', applying: true, filling: true } },
  { name: 'at a root after a reload: the reason says so', from: 'syncing', event: { type: 'at-root', reason: 'restored', now: NOW }, actions: [{ type: 'mode', mode: 'live', reason: 'restored' }, { type: 'apply' }, { type: 'fill', hint: undefined }] },
  { name: 'at a root again while applying and filling: the mode is confirmed, nothing starts twice', from: 'live-filling', event: { type: 'at-root', reason: 'synced', now: NOW }, actions: [{ type: 'mode', mode: 'live', reason: 'synced' }, { type: 'apply' }] },
  { name: 'at a root once closed: nothing', from: 'closed', event: { type: 'at-root', reason: 'synced', now: NOW }, actions: [] },
  // leaving
  { name: 'leave for a sync', from: 'live', event: { type: 'leave', mode: 'syncing' }, actions: [{ type: 'mode', mode: 'syncing', reason: undefined }], state: { mode: 'syncing' } },
  { name: 'leave for the mode it is in: nothing to tell', from: 'syncing', event: { type: 'leave', mode: 'syncing' }, actions: [] },
  { name: 'reset: syncing, told even when it was', from: 'syncing', event: { type: 'reset' }, actions: [{ type: 'mode', mode: 'syncing' }] },
  // applying
  { name: 'a ready delta while live: apply', from: 'live', event: { type: 'ready' }, actions: [{ type: 'apply' }], state: { applying: true } },
  { name: 'a ready delta while the loop runs: it picks it up', from: 'live-applying', event: { type: 'ready' }, actions: [] },
  { name: 'a ready delta while syncing: held, not applied', from: 'syncing', event: { type: 'ready' }, actions: [] },
  { name: 'a ready delta while catching up: held', from: 'catching-up', event: { type: 'ready' }, actions: [] },
  { name: 'the loop ended', from: 'live-applying', event: { type: 'apply-ended' }, actions: [], state: { applying: false, mode: 'live' } },
  { name: 'the loop failed a write: back to syncing (the driver restarts a sync)', from: 'live-applying', event: { type: 'apply-ended', failed: true }, actions: [], state: { applying: false, mode: 'syncing' } },
  { name: 'a root mismatch: catch up', from: 'live-applying', event: { type: 'root-mismatch' }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'root-mismatch' }, { type: 'catch-up', reason: 'root-mismatch' }], state: { mode: 'catching-up', catchUps: 1 } },
  // gaps
  { name: 'something missing: wait the grace period for gossip', from: 'live', event: { type: 'missing', from: 'p2', now: NOW }, actions: [{ type: 'timer', timer: 'grace', ms: 250, hint: 'p2' }], state: { graceSet: true, graceHint: 'p2' } },
  { name: 'missing again within the grace: one timer, the first sender kept', from: 'grace-set', event: { type: 'missing', from: 'p3', now: NOW }, actions: [], state: { graceHint: 'p1' } },
  { name: 'missing while syncing: no gap filling', from: 'syncing', event: { type: 'missing', from: 'p2', now: NOW }, actions: [] },
  { name: 'the grace is over: fill from the first sender', from: 'grace-set', event: { type: 'timer', timer: 'grace', hint: undefined, now: NOW + 250 }, actions: [{ type: 'fill', hint: 'p1' }], state: { graceSet: false, filling: true } },
  { name: 'the grace is over during a fill: that fill looks again when it ends', from: 'live-filling', event: { type: 'timer', timer: 'grace', hint: undefined, now: NOW }, actions: [] },
  { name: 'filled: apply, then look for more at once', from: 'live-filling', event: { type: 'fill-ended', outcome: 'filled' }, actions: [{ type: 'apply' }, { type: 'fill', hint: undefined }], state: { filling: true } },
  { name: 'a chain given up on: look for more, no catch-up', from: 'live-filling', event: { type: 'fill-ended', outcome: 'abandoned' }, actions: [{ type: 'fill', hint: undefined }], state: { filling: true, mode: 'live' } },
  { name: 'nothing missing: the fill ends', from: 'live-filling', event: { type: 'fill-ended', outcome: 'nothing-missing' }, actions: [], state: { filling: false } },
  { name: 'no peer to ask just now: the fill ends, no catch-up', from: 'live-filling', event: { type: 'fill-ended', outcome: 'waiting' }, actions: [], state: { filling: false, mode: 'live', catchUps: 0 } },
  { name: 'a gap too large: catch up, and the next fill waits', from: 'live-filling', event: { type: 'fill-ended', outcome: 'failed', reason: 'gap-too-large', now: NOW }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'gap-too-large' }, { type: 'catch-up', reason: 'gap-too-large' }], state: { filling: false, nextFillAt: NOW + 1000, retryMs: 2000 } },
  { name: 'no peer has the deltas: catch up', from: 'live-filling', event: { type: 'fill-ended', outcome: 'failed', reason: 'peer-lacks-deltas', now: NOW }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'peer-lacks-deltas' }, { type: 'catch-up', reason: 'peer-lacks-deltas' }] },
  { name: 'no source at all: catch up', from: 'live-filling', event: { type: 'fill-ended', outcome: 'failed', reason: 'no-source', now: NOW }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'no-source' }, { type: 'catch-up', reason: 'no-source' }] },
  { name: 'a fill aborted (stopping): no catch-up, no wait', from: 'live-filling', event: { type: 'fill-ended', outcome: 'failed', reason: 'aborted', now: NOW }, actions: [], state: { filling: false, mode: 'live', nextFillAt: 0 } },
  { name: 'a fill ended after the follower left: nothing more', from: 'live-filling', event: { type: 'fill-ended', outcome: 'filled' }, actions: [], state: { filling: false } },
  // never stuck
  { name: 'a delta waited too long: catch up', from: 'live', event: { type: 'expired' }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'pending-expired' }, { type: 'catch-up', reason: 'pending-expired' }] },
  { name: 'expired while already catching up: one catch-up', from: 'catching-up', event: { type: 'expired' }, actions: [], state: { catchUps: 1 } },
  { name: 'expired once closed: nothing', from: 'closed', event: { type: 'expired' }, actions: [] },
  { name: 'the state changed outside the DAG: catch up', from: 'live', event: { type: 'state-changed' }, actions: [{ type: 'mode', mode: 'catching-up', reason: 'state-changed' }, { type: 'catch-up', reason: 'state-changed' }] },
  { name: 'close', from: 'live', event: { type: 'close' }, actions: [], state: { closed: true } },
];

describe('follow policy: one event at a time', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const p = at(c.from);
      // 'a fill ended after the follower left' needs the leave after the fill started
      if (c.name.startsWith('a fill ended after')) p.step({ type: 'leave', mode: 'syncing' });
      expect(p.step(c.event)).toEqual(c.actions);
      if (c.state) expect(p.state).toMatchObject(c.state);
    });
  }
});

describe('follow policy: sequences', () => {
  it('failures back off, doubling up to the bound; a fill that succeeds resets the wait', () => {
    const p = at('live-filling');
    const fail = (now: number) => p.step({ type: 'fill-ended', outcome: 'failed', reason: 'timeout', now });
    fail(NOW);
    expect(p.state).toMatchObject({ nextFillAt: NOW + 1000, retryMs: 2000 });
    // the catch-up brought it back: a fill before the wait is over waits the rest
    expect(p.step({ type: 'at-root', reason: 'synced', now: NOW + 400 })).toEqual([{ type: 'mode', mode: 'live', reason: 'synced' }, { type: 'apply' }, { type: 'timer', timer: 'retry', ms: 600, hint: undefined }]);
    expect(p.step({ type: 'timer', timer: 'retry', hint: 'p9', now: NOW + 1000 })).toEqual([{ type: 'fill', hint: 'p9' }]);
    fail(NOW + 1000);
    expect(p.state).toMatchObject({ nextFillAt: NOW + 3000, retryMs: 4000 });
    p.step({ type: 'at-root', reason: 'synced', now: NOW + 3000 });
    fail(NOW + 3000);
    expect(p.state).toMatchObject({ nextFillAt: NOW + 7000, retryMs: 4000 });
    p.step({ type: 'at-root', reason: 'synced', now: NOW + 7000 });
    p.step({ type: 'fill-ended', outcome: 'filled' });
    expect(p.state.retryMs).toBe(1000);
  });

  it('a grace of 0 still waits for a timer: gossip on its way arrives first', () => {
    const p = at('live', { graceMs: 0, retryMs: 0, maxRetryMs: 0 });
    expect(p.step({ type: 'missing', from: 'p1', now: NOW })).toEqual([{ type: 'timer', timer: 'grace', ms: 0, hint: 'p1' }]);
  });

  it('with no grace (the node), a missing delta is fetched at once', () => {
    const p = at('live', { retryMs: 0, maxRetryMs: 0 });
    expect(p.step({ type: 'missing', from: 'p1', now: NOW })).toEqual([{ type: 'fill', hint: 'p1' }]);
    expect(p.step({ type: 'fill-ended', outcome: 'failed', reason: 'gap-too-large', now: NOW })).toEqual([{ type: 'mode', mode: 'catching-up', reason: 'gap-too-large' }, { type: 'catch-up', reason: 'gap-too-large' }]);
    // back at a root: no wait before the next fill
    expect(p.step({ type: 'at-root', reason: 'synced', now: NOW })).toContainEqual({ type: 'fill', hint: undefined });
  });

  it('a catch-up counts once, and the next at-root is live again', () => {
    const p = at('live');
    p.step({ type: 'root-mismatch' });
    p.step({ type: 'expired' });
    expect(p.state).toMatchObject({ mode: 'catching-up', catchUps: 1 });
    p.step({ type: 'at-root', reason: 'synced', now: NOW });
    p.step({ type: 'expired' });
    expect(p.state.catchUps).toBe(2);
  });

  it('rejects a negative or non-finite bound', () => {
    expect(() => new FollowPolicy({ graceMs: -1, retryMs: 0, maxRetryMs: 0 })).toThrow(RangeError);
    expect(() => new FollowPolicy({ graceMs: 0, retryMs: Number.NaN, maxRetryMs: 0 })).toThrow('expected retryMs to be a non-negative number, got NaN');
  });
});

describe('follow policy: announcements', () => {
  const id = (n: number) => Uint8Array.from({ length: 32 }, () => n);
  const rootA = id(0xa0);
  const rootB = id(0xb0);
  const dag = (held: Uint8Array[], applied: Uint8Array[]) => ({
    knows: (x: Uint8Array) => [...held, ...applied].some((h) => h[0] === x[0]),
    isApplied: (x: Uint8Array) => applied.some((h) => h[0] === x[0]),
  });
  const pos = { root: rootA, logSize: 10, seq: 5 };
  const rows: { name: string; ann: { stateRoot: Uint8Array; heads: Uint8Array[]; logSize: number; seq: number }; known?: ReturnType<typeof dag>; want: AnnouncementCase }[] = [
    { name: 'an older log size', ann: { stateRoot: rootB, heads: [id(1)], logSize: 9, seq: 6 }, want: 'stale' },
    { name: 'a seq already seen', ann: { stateRoot: rootB, heads: [id(1)], logSize: 11, seq: 5 }, want: 'stale' },
    { name: 'the state it stands at', ann: { stateRoot: rootA, heads: [id(1)], logSize: 10, seq: 6 }, known: dag([], [id(1)]), want: 'ours' },
    { name: 'a head neither held nor applied', ann: { stateRoot: rootB, heads: [id(1), id(2)], logSize: 12, seq: 6 }, known: dag([id(1)], []), want: 'heads-unknown' },
    { name: 'heads applied, same log size, another root', ann: { stateRoot: rootB, heads: [id(1)], logSize: 10, seq: 6 }, known: dag([], [id(1)]), want: 'state-changed' },
    { name: 'no heads (genesis) applied, another root', ann: { stateRoot: rootB, heads: [], logSize: 10, seq: 6 }, known: dag([], [EMPTY_ROOT]), want: 'state-changed' },
    { name: 'heads held, not yet applied', ann: { stateRoot: rootB, heads: [id(1)], logSize: 11, seq: 6 }, known: dag([id(1)], []), want: 'heads-known' },
  ];
  for (const r of rows) {
    it(`${r.name}: ${r.want}`, () => {
      expect(classifyAnnouncement(r.ann, pos, r.known ?? dag([], []))).toBe(r.want);
    });
  }
  it('a position without a seq takes any seq', () => {
    expect(classifyAnnouncement({ stateRoot: rootB, heads: [id(1)], logSize: 10, seq: 0 }, { root: rootA, logSize: 10 }, dag([], [id(1)]))).toBe('state-changed');
  });
});
