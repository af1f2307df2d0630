import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { runLogSync, type LogSyncProgress } from './driver.ts';
import { MemoryLogSource } from './memory-source.ts';
import type { LogFetchRequest, LogFetchResponse, LogSource } from './source.ts';
import type { LogSyncTarget } from './target.ts';

const op = (i: number): Uint8Array => sha256(new TextEncoder().encode(`driver op ${i}`));
const ops = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => op(i));
const hex = (xs: Uint8Array[]): string[] => xs.map(toHex);

/** Wraps an honest source; `edit` may rewrite the n-th response (0-based count of fetches). */
function scripted(
  inner: MemoryLogSource,
  edit: (res: LogFetchResponse, n: number, req: LogFetchRequest) => LogFetchResponse,
): LogSource & { calls: number } {
  const s = {
    calls: 0,
    async fetch(req: LogFetchRequest): Promise<LogFetchResponse> {
      const res = await inner.fetch(req);
      return edit(res, s.calls++, req);
    },
  };
  return s;
}

/** An async iterable fed by hand. */
function channel<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  return {
    push(v: T) {
      items.push(v);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator](): AsyncIterator<T> {
      for (;;) {
        while (items.length === 0 && !closed) await new Promise<void>((r) => (wake = r));
        if (items.length === 0) return;
        yield items.shift()!;
      }
    },
  };
}

describe('runLogSync', () => {
  it('honest source, whole log', async () => {
    const source = new MemoryLogSource(ops(100));
    const result = await runLogSync({ source, target: source.target(), fetchBatchSize: 7, maxOutstanding: 3 });
    expect(hex(result.ops!)).toEqual(hex(ops(100)));
    expect(toHex(result.root)).toBe(toHex(source.root()));
    expect(source.feedback.every((v) => v)).toBe(true);
    expect(source.requests.every((r) => r.maxOps <= 7)).toBe(true);
  });

  it('honest source, pruned prefix: pinned nodes once, ops through onApply, progress reported', async () => {
    const source = new MemoryLogSource(ops(90));
    const applied: [number, number][] = [];
    const progress: LogSyncProgress[] = [];
    const result = await runLogSync({
      source,
      target: source.target(37),
      fetchBatchSize: 10,
      onApply: (start, batch) => {
        applied.push([start, batch.length]);
      },
      onProgress: (p) => progress.push(p),
    });
    expect(result.ops).toBeUndefined();
    expect(applied[0][0]).toBe(37);
    expect(applied.reduce((n, [, len]) => n + len, 0)).toBe(53);
    expect(source.requests.filter((r) => r.withPinned).map((r) => r.start)).toEqual([37]);
    expect(progress.at(-1)?.applied).toBe(90);
    expect(progress.map((p) => p.applied)).toEqual([...progress.map((p) => p.applied)].sort((a, b) => a - b));
  });

  it('a source that fails every time: SyncStalled with the cause, after bounded retries', async () => {
    const cause = new Error('connection refused');
    let calls = 0;
    const source: LogSource = {
      async fetch() {
        calls++;
        throw cause;
      },
    };
    const target = new MemoryLogSource(ops(10)).target();
    const err = await runLogSync({ source, target, maxRetries: 2, maxOutstanding: 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('SyncStalled');
    expect((err as Error).cause).toBe(cause);
    expect(calls).toBe(3);
  });

  it('a source that fails a few times, then answers', async () => {
    const honest = new MemoryLogSource(ops(30));
    let calls = 0;
    const source: LogSource = {
      fetch(req) {
        if (calls++ < 2) return Promise.reject(new Error('timeout'));
        return honest.fetch(req);
      },
    };
    const result = await runLogSync({ source, target: honest.target(), fetchBatchSize: 8, maxOutstanding: 1 });
    expect(hex(result.ops!)).toEqual(hex(ops(30)));
  });

  it('a source that drops feedback still syncs when honest', async () => {
    const honest = new MemoryLogSource(ops(25));
    const noFeedback = scripted(honest, (res) => ({ ...res, feedback: undefined }));
    expect(hex((await runLogSync({ source: noFeedback, target: honest.target(5), fetchBatchSize: 4 })).ops!)).toEqual(
      hex(ops(25).slice(5)),
    );
    const throwing = scripted(honest, (res) => ({
      ...res,
      feedback: () => {
        throw new Error('feedback channel closed');
      },
    }));
    expect((await runLogSync({ source: throwing, target: honest.target(), fetchBatchSize: 4 })).ops).toHaveLength(25);
  });

  it('a source that drops feedback and lies fails with InvalidLogResponse instead of looping', async () => {
    const honest = new MemoryLogSource(ops(25));
    const source = scripted(honest, (res) => ({ ...res, ops: res.ops.map(() => op(999)), feedback: undefined }));
    const err = await runLogSync({ source, target: honest.target(), fetchBatchSize: 4 }).catch((e: Error) => e);
    expect((err as Error).name).toBe('InvalidLogResponse');
  });

  it('tampered proofs: the peer is penalised and the range refetched', async () => {
    const honest = new MemoryLogSource(ops(40));
    const source = scripted(honest, (res, n) =>
      n % 3 === 1 ? { ...res, proof: { digests: res.proof.digests.map((d) => sha256(d)) } } : res,
    );
    const invalid: string[] = [];
    const result = await runLogSync({
      source,
      target: honest.target(),
      fetchBatchSize: 5,
      maxOutstanding: 2,
      onInvalidResponse: (req, e) => invalid.push(`${req.start}:${e.reason}`),
    });
    expect(hex(result.ops!)).toEqual(hex(ops(40)));
    expect(invalid.length).toBeGreaterThan(0);
    expect(invalid.every((s) => s.endsWith(':InvalidProof'))).toBe(true);
    expect(honest.feedback.filter((v) => !v)).toHaveLength(invalid.length);
  });

  it('tampered pinned nodes: penalised and refetched with pinned nodes', async () => {
    const honest = new MemoryLogSource(ops(40));
    const source = scripted(honest, (res, n) =>
      n === 0 ? { ...res, pinned: res.pinned!.map((d) => sha256(d)) } : res,
    );
    const invalid: string[] = [];
    const result = await runLogSync({
      source,
      target: honest.target(21),
      fetchBatchSize: 6,
      onInvalidResponse: (req, e) => invalid.push(`${req.start}:${e.reason}`),
    });
    expect(invalid).toEqual(['21:InvalidPinnedNodes']);
    expect(honest.requests.filter((r) => r.withPinned).map((r) => r.start)).toEqual([21, 21]);
    expect(hex(result.ops!)).toEqual(hex(ops(40).slice(21)));
  });

  it('target update while the boundary request is in flight', async () => {
    const honest = new MemoryLogSource(ops(60));
    const updates = channel<LogSyncTarget>();
    let released: (() => void) | undefined;
    const gate = new Promise<void>((r) => (released = r));
    const seen: LogFetchRequest[] = [];
    const source: LogSource = {
      async fetch(req) {
        seen.push(req);
        // The first boundary request waits until the target has moved, then answers anyway
        // (ignoring its abort signal, as a slow peer would).
        if (seen.length === 1) {
          updates.push(honest.target(10, 60));
          updates.close();
          await gate;
        }
        return honest.serve(req);
      },
    };
    const run = runLogSync({ source, target: honest.target(10, 40), fetchBatchSize: 8, maxOutstanding: 2, targetUpdates: updates });
    const result = await run;
    released?.();
    expect(seen[0].signal?.aborted).toBe(true);
    const boundaries = seen.filter((r) => r.withPinned);
    expect(boundaries.map((r) => [r.start, r.leafCount])).toEqual([
      [10, 40],
      [10, 60],
    ]);
    expect(result.target.upper).toBe(60);
    expect(hex(result.ops!)).toEqual(hex(ops(60).slice(10)));
  });

  it('a target that does not move forward is rejected; the sync completes at the old one', async () => {
    const honest = new MemoryLogSource(ops(30));
    const target = honest.target(0, 20);
    const updates = channel<LogSyncTarget>();
    updates.push({ ...target, upper: 25 }); // root unchanged
    updates.push(honest.target(0, 15)); // upper shrinks
    updates.close();
    const rejected: string[] = [];
    const result = await runLogSync({
      source: honest,
      target,
      fetchBatchSize: 4,
      maxOutstanding: 1,
      targetUpdates: updates,
      onTargetRejected: (_t, e) => rejected.push(e.reason),
    });
    expect(rejected).toEqual(['RootUnchanged', 'UpperNotGrowing']);
    expect(result.target.upper).toBe(20);
    expect(hex(result.ops!)).toEqual(hex(ops(20)));
  });

  it('held completion: each reached target is reported, finish ends the sync', async () => {
    const honest = new MemoryLogSource(ops(50));
    const updates = channel<LogSyncTarget>();
    let finish: (() => void) | undefined;
    const reached: number[] = [];
    const result = await runLogSync({
      source: honest,
      target: honest.target(0, 20),
      fetchBatchSize: 16,
      targetUpdates: updates,
      finish: new Promise<void>((r) => (finish = r)),
      onTargetReached: (t) => {
        reached.push(t.upper);
        if (t.upper === 20) updates.push(honest.target(5, 50));
        else finish?.();
      },
    });
    expect(reached).toEqual([20, 50]);
    expect(result.target).toMatchObject({ lower: 5, upper: 50 });
    expect(hex(result.ops!)).toEqual(hex(ops(50).slice(5)));
  });

  it('a forked log behind a new target ends in RootMismatch', async () => {
    const a = new MemoryLogSource(ops(20));
    const forked = ops(30).map((x, i) => (i >= 3 ? sha256(x) : x));
    const b = new MemoryLogSource(forked);
    const updates = channel<LogSyncTarget>();
    const source: LogSource = {
      fetch: (req) => (req.leafCount === 20 ? a : b).fetch(req),
    };
    let sent = false;
    const err = await runLogSync({
      source,
      target: a.target(0, 20),
      fetchBatchSize: 5,
      maxOutstanding: 1,
      targetUpdates: updates,
      onApply: (start) => {
        if (start >= 10 && !sent) {
          sent = true;
          updates.push(b.target(0, 30));
          updates.close();
        }
      },
    }).catch((e: Error) => e);
    expect((err as Error).name).toBe('RootMismatch');
  });

  it('abort: rejects with the reason and aborts fetches in flight', async () => {
    const honest = new MemoryLogSource(ops(20));
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const source: LogSource = {
      fetch(req) {
        signals.push(req.signal!);
        if (signals.length === 3) controller.abort(new Error('user left'));
        return new Promise((_, reject) => req.signal!.addEventListener('abort', () => reject(req.signal!.reason)));
      },
    };
    const err = await runLogSync({ source, target: honest.target(), fetchBatchSize: 2, signal: controller.signal }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toBe('user left');
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('an already aborted signal rejects at once', async () => {
    const honest = new MemoryLogSource(ops(3));
    const signal = AbortSignal.abort(new Error('too late'));
    await expect(runLogSync({ source: honest, target: honest.target(), signal })).rejects.toThrow('too late');
    expect(honest.requests).toHaveLength(0);
  });
});
