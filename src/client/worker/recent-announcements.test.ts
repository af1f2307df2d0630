import { describe, expect, test } from 'vitest';
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { RecentAnnouncements } from './recent-announcements.ts';

const root = (n: number) => new Uint8Array(32).fill(n);
const ann = (seq: number, r: number) => ({ seq, stateRoot: root(r) }) as VerifiedAnnouncement;

describe('RecentAnnouncements', () => {
  test('answers by root; a later announcement of a root replaces the earlier', () => {
    const recent = new RecentAnnouncements();
    recent.remember(ann(1, 1));
    recent.remember(ann(2, 2));
    recent.remember(ann(3, 1));
    expect([recent.seqOf(root(1)), recent.seqOf(root(2)), recent.seqOf(root(9))]).toEqual([3, 2, undefined]);
    expect(recent.get(root(2))).toEqual(ann(2, 2));
  });

  test('forgets the oldest root past its bound, never holding more', () => {
    const recent = new RecentAnnouncements(3);
    for (let i = 1; i <= 10; i++) recent.remember(ann(i, i));
    expect(recent.size).toBe(3);
    expect([7, 8, 9, 10].map((i) => recent.seqOf(root(i)))).toEqual([undefined, 8, 9, 10]);
  });
});
