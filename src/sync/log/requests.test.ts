import { describe, expect, it } from 'vitest';
import { OutstandingRequests } from './requests.ts';

const root = new Uint8Array(32);
const req = (start: number, maxOps: number) => ({ root, leafCount: 100, start, maxOps, withPinned: false });

describe('OutstandingRequests', () => {
  it('assigns fresh ids and reports ranges in start order', () => {
    const q = new OutstandingRequests();
    const a = q.add(req(20, 5));
    const b = q.add(req(0, 10));
    expect(a.id).not.toBe(b.id);
    expect(q.size).toBe(2);
    expect(q.ranges()).toEqual([
      { start: 0, end: 10 },
      { start: 20, end: 25 },
    ]);
  });
  it('remove returns the request once', () => {
    const q = new OutstandingRequests();
    const a = q.add(req(0, 1));
    expect(q.remove(a.id)).toEqual(a);
    expect(q.remove(a.id)).toBeUndefined();
    expect(q.size).toBe(0);
  });
  it('removeBefore cancels requests starting below the location only', () => {
    const q = new OutstandingRequests();
    q.add(req(0, 10));
    q.add(req(10, 10));
    q.add(req(20, 10));
    expect(q.removeBefore(10).map((r) => r.start)).toEqual([0]);
    expect(q.ranges().map((r) => r.start)).toEqual([10, 20]);
  });
});
