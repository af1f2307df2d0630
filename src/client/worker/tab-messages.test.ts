import { describe, expect, test } from 'vitest';
import type { DeltaUpdate, ProgressEvent, SyncedEvent } from '../events.ts';
import { readerSteps } from './tab-messages.ts';

const root = (n: number) => new Uint8Array(32).fill(n);
const update = (r: number, seq?: number) => ({ root: root(r), seq }) as DeltaUpdate;

describe('readerSteps', () => {
  test("the syncer's progress reaches the page as this tab's (a reader's)", () => {
    const detail = { phase: 'fetching', role: 'syncer', target: root(1) } as unknown as ProgressEvent;
    expect(readerSteps({ type: 'progress', detail }, undefined)).toEqual([{ event: { type: 'progress', detail: { ...detail, role: 'reader' } } }]);
  });

  test('a synced state is taken as it is', () => {
    const s: SyncedEvent = { root: root(1), seq: 3, localRoot: root(1) };
    expect(readerSteps({ type: 'synced', detail: s }, undefined)).toEqual([{ synced: s, event: { type: 'synced', detail: s } }]);
  });

  test('full sync: each update moves the synced root and its seq, in order; a seq-less update keeps the last seq', () => {
    const prev: SyncedEvent = { root: root(1), seq: 3, localRoot: root(1) };
    const steps = readerSteps({ type: 'updates', detail: [update(2, 4), update(3)] }, prev);
    expect(steps.map((s) => s.synced)).toEqual([
      { root: root(2), seq: 4, localRoot: root(2) },
      { root: root(3), seq: 4, localRoot: root(3) },
    ]);
    expect(steps.map((s) => s.event)).toEqual([{ type: 'update', detail: update(2, 4) }, { type: 'update', detail: update(3) }]);
  });

  test("partial sync: the tab's own root stays the last one heard", () => {
    const prev: SyncedEvent = { root: root(1), seq: 3, localRoot: root(9) };
    expect(readerSteps({ type: 'updates', detail: [update(2, 4)] }, prev).map((s) => s.synced)).toEqual([{ root: root(2), seq: 4, localRoot: root(9) }]);
  });

  test('no synced state yet: seq -1 until an update names one', () => {
    expect(readerSteps({ type: 'updates', detail: [update(2)] }, undefined).map((s) => s.synced)).toEqual([{ root: root(2), seq: -1, localRoot: root(2) }]);
  });
});
