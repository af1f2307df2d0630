import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import { compareEnd, rangeWidth } from './ranges.ts';
import { LEFT, RETRY, RIGHT, STALE, WorkQueue } from './work-queue.ts';

const A = new Uint8Array(32).fill(1);
const B = new Uint8Array(32).fill(2);
const full = () => new WorkQueue([{ start: new Uint8Array(0), end: undefined, root: undefined }]);

function checkPartition(q: WorkQueue): void {
  const items = q.items;
  expect(items[0].start.length).toBe(0);
  expect(items.at(-1)!.end).toBeUndefined();
  for (let i = 1; i < items.length; i++) {
    expect(toHex(items[i - 1].end!)).toBe(toHex(items[i].start));
    expect(compareEnd(items[i].start, items[i].end)).toBeLessThan(0);
  }
}

describe('WorkQueue', () => {
  it('splits while in flight plus queued is below twice the concurrency', () => {
    const q = full();
    const first = q.next(A, 0, 2)!;
    expect(q.items.length).toBe(4);
    expect(first.start.length).toBe(0); // leftmost first
    q.assign(first, 1);
    q.next(A, 0, 2);
    expect(q.items.length).toBe(4); // 1 in flight + 3 queued = 4: no more splits
    checkPartition(q);
  });

  it('does not split items narrower than the minimum width', () => {
    const q = full();
    q.next(A, 0, 4, (i) => rangeWidth(i) < 2);
    expect(q.items.length).toBe(1);
  });

  it('orders retry > stale > left > right, then by start', () => {
    const q = new WorkQueue(
      [
        { start: new Uint8Array(0), end: fromHex('2000'), root: undefined },
        { start: fromHex('2000'), end: fromHex('4000'), root: undefined },
        { start: fromHex('4000'), end: fromHex('6000'), root: A },
        { start: fromHex('6000'), end: undefined, root: B },
      ],
      (s) => (s.root ? STALE : RIGHT),
    );
    const order: string[] = [];
    let id = 1;
    // item 2000 fails once: it becomes a retry, ready after its (zero) first backoff
    const x = q.items[1];
    q.assign(x, 99);
    q.release(99, 0, true);
    expect(q.items[1].priority).toBe(RETRY);
    for (;;) {
      const n = q.next(B, 0, 100, () => true);
      if (!n) break;
      order.push(toHex(n.start));
      q.assign(n, id++);
    }
    expect(order).toEqual(['2000', '4000', '']); // 6000 is done at B
    expect(q.isComplete(B)).toBe(false);
  });

  it('a completed response splits the item at the resume point; done neighbours merge', () => {
    const q = new WorkQueue([
      { start: new Uint8Array(0), end: fromHex('4000'), root: undefined },
      { start: fromHex('4000'), end: undefined, root: undefined },
    ]);
    const [a, b] = q.items;
    q.assign(a, 1);
    q.assign(b, 2);
    q.complete(1, A, fromHex('2000'), A);
    expect(q.items.map((i) => [toHex(i.start), i.root && i.root[0], i.requestId])).toEqual([
      ['', 1, undefined],
      ['2000', undefined, undefined],
      ['4000', undefined, 2],
    ]);
    q.complete(2, A, undefined, A);
    const rest = q.items[1];
    q.assign(rest, 3);
    q.complete(3, A, undefined, A);
    expect(q.items.length).toBe(1);
    expect(q.isComplete(A)).toBe(true);
    expect(q.doneFraction(A)).toBe(1);
  });

  it('a retarget turns done items into stale work, and back', () => {
    const q = new WorkQueue([{ start: new Uint8Array(0), end: undefined, root: A }]);
    expect(q.isComplete(A)).toBe(true);
    q.retarget(A, B);
    expect(q.queued(B)).toBe(1);
    expect(q.items[0].priority).toBe(STALE);
    q.retarget(B, A);
    expect(q.isComplete(A)).toBe(true);
  });

  it('backs off a failing item: 0, 10, 15 ms', () => {
    const q = new WorkQueue([{ start: new Uint8Array(0), end: undefined, root: undefined }]);
    const delays: number[] = [];
    let now = 1000;
    for (let i = 0; i < 3; i++) {
      now = Math.max(now, q.items[0].notBefore);
      const item = q.next(A, now, 1, () => true)!;
      q.assign(item, i + 1);
      q.release(i + 1, now, true);
      delays.push(q.items[0].notBefore - now);
    }
    expect(delays).toEqual([0, 10, 15]);
    expect(q.next(A, now + 5, 1, () => true)).toBeUndefined();
    expect(q.nextReady(A, now + 5)).toBe(now + 15);
  });

  it('never overlaps and always covers the key space under random operations', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(1000), fc.nat(255)), { maxLength: 60 }), (ops) => {
        const q = full();
        let id = 1;
        let target = A;
        for (const [op, pick, byte] of ops) {
          const inflight = q.items.filter((i) => i.requestId !== undefined);
          if (op === 0) {
            const n = q.next(target, 0, 3);
            if (n) q.assign(n, id++);
          } else if (op === 1 && inflight.length) {
            const it = inflight[pick % inflight.length];
            // resume somewhere inside, or nowhere
            const cand = new Uint8Array([...it.start, byte, 0]);
            const inside = compareBytes(cand, it.start) > 0 && compareEnd(cand, it.end) < 0;
            q.complete(it.requestId!, target, inside && byte % 2 ? cand : undefined, target);
          } else if (op === 2 && inflight.length) {
            q.release(inflight[pick % inflight.length].requestId!, 0, pick % 2 === 0);
          } else if (op === 3) {
            const next = target === A ? B : A;
            q.retarget(target, next);
            target = next;
          }
          checkPartition(q);
        }
      }),
      { seed: 5, numRuns: 150 },
    );
  });

  it('keeps a left-half priority above a right half', () => {
    const q = full();
    q.next(A, 0, 1);
    expect(q.items.map((i) => i.priority)).toEqual([LEFT, RIGHT]);
  });
});
