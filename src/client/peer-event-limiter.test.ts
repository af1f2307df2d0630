import { describe, expect, it } from 'vitest';
import { PeerEventLimiter } from './peer-event-limiter.ts';

type Step = [peer: string, reason: string, atMs: number, emit: boolean, suppressed: number];

describe('PeerEventLimiter', () => {
  const cases: { name: string; steps: Step[] }[] = [
    {
      name: 'one event per interval, then the count held back',
      steps: [
        ['a', 'bad-signature', 0, true, 0],
        ['a', 'bad-signature', 1, false, 1],
        ['a', 'bad-signature', 9_999, false, 2],
        ['a', 'bad-signature', 10_000, true, 2],
        ['a', 'bad-signature', 10_001, false, 1],
      ],
    },
    {
      name: 'reasons of one peer are limited apart',
      steps: [
        ['a', 'bad-signature', 0, true, 0],
        ['a', 'wrong-database', 1, true, 0],
        ['a', 'bad-signature', 2, false, 1],
      ],
    },
    {
      name: 'peers are limited apart',
      steps: [
        ['a', 'bad-signature', 0, true, 0],
        ['b', 'bad-signature', 1, true, 0],
        ['b', 'bad-signature', 2, false, 1],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const l = new PeerEventLimiter({ intervalMs: 10_000 });
      for (const [peer, reason, at, emit, suppressed] of c.steps) {
        expect(l.admit(peer, reason, at), `${peer} ${reason} at ${at}`).toEqual({ emit, suppressed });
      }
    });
  }

  it('10,000 offences of one peer in 10 s make one event', () => {
    const l = new PeerEventLimiter({ intervalMs: 10_000 });
    let emitted = 0;
    for (let i = 0; i < 10_000; i++) if (l.admit('attacker', 'wrong-database', i).emit) emitted++;
    expect(emitted).toBe(1);
  });

  it('keeps at most maxKeys pairs, forgetting the least recently seen', () => {
    const l = new PeerEventLimiter({ intervalMs: 10_000, maxKeys: 3 });
    for (let i = 0; i < 1000; i++) l.admit(`peer${i}`, 'x', 0);
    expect(l.size).toBe(3);
    // the newest are still limited; the oldest was forgotten and may speak again
    expect(l.admit('peer999', 'x', 1).emit).toBe(false);
    expect(l.admit('peer0', 'x', 1).emit).toBe(true);
  });

  it('refuses nonsense bounds', () => {
    expect(() => new PeerEventLimiter({ maxKeys: 0 })).toThrow(RangeError);
    expect(() => new PeerEventLimiter({ intervalMs: -1 })).toThrow(RangeError);
  });
});
