import { describe, expect, test } from 'vitest';
import type { StateSyncProgress } from '../../sync/state/engine.ts';
import { progressEvent } from './progress-event.ts';

const root = (n: number) => new Uint8Array(32).fill(n);

describe('progressEvent', () => {
  test('before the engine runs: connecting, every count 0', () => {
    expect(progressEvent(undefined, root(1), 'syncer', 4)).toEqual({
      phase: 'connecting', role: 'syncer', target: root(1), seq: 4, keyValues: 0, bytes: 0, requests: 0, rangesDone: 0, fraction: 0,
      segments: undefined, peersUsed: 0, peersBanned: 0, proofsRejected: 0, failures: 0, hedges: 0, targetUpdates: 0,
    });
  });

  test("the engine's counts under the page's names", () => {
    const p: StateSyncProgress = {
      phase: 'at-target', target: root(2), localRoot: root(2), keyValuesReceived: 10, bytesReceived: 2000, requests: 3, hedges: 1, rangesDone: 2,
      fractionDone: 0.5, inFlight: 0, queued: 0, peersUsed: 2, peersBanned: 1, proofsRejected: 4, failures: 5, targetUpdates: 6, segments: [],
    };
    expect(progressEvent(p, root(2), 'syncer', undefined)).toEqual({
      phase: 'at-target', role: 'syncer', target: root(2), seq: undefined, keyValues: 10, bytes: 2000, requests: 3, rangesDone: 2, fraction: 0.5,
      segments: [], peersUsed: 2, peersBanned: 1, proofsRejected: 4, failures: 5, hedges: 1, targetUpdates: 6,
    });
  });
});
