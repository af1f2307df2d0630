import { describe, expect, it } from 'vitest';
import { backoffDelay, PeerBook } from './peers.ts';

describe('PeerBook', () => {
  it('tries every peer, then prefers the faster one, spreading by load', () => {
    const book = new PeerBook(['slow', 'fast']);
    expect(book.choose(0)).toBe('slow'); // no samples: first untried
    book.started('slow');
    expect(book.choose(0)).toBe('fast');
    book.started('fast');
    book.succeeded('slow', 100, 1000);
    book.succeeded('fast', 10, 1000);
    expect(book.choose(0)).toBe('fast');
    book.started('fast');
    book.started('fast');
    // fast: 10 ms × 3 in flight = 30 < slow 100 ms
    expect(book.choose(0)).toBe('fast');
    for (let i = 0; i < 8; i++) book.started('fast');
    expect(book.choose(0)).toBe('slow');
    expect(book.get('fast')!.bytesPerMs).toBe(100);
  });

  it('backs a failing peer off with 10 ms·1.5^n capped at 1 s, and a success clears it', () => {
    expect([0, 1, 2, 3, 20].map(backoffDelay)).toEqual([0, 10, 15, 22.5, 1000]);
    const book = new PeerBook(['a']);
    book.started('a');
    book.failed('a', 1000);
    expect(book.choose(1005)).toBeUndefined();
    expect(book.nextAvailable(1005)).toBe(1010);
    expect(book.choose(1010)).toBe('a');
    book.started('a');
    book.failed('a', 1010);
    expect(book.nextAvailable(1010)).toBe(1025);
    book.started('a');
    book.succeeded('a', 5, 10);
    expect(book.choose(1011)).toBe('a');
  });

  it('bans a peer at the configured number of invalid proofs', () => {
    const book = new PeerBook(['liar', 'honest'], { banAfter: 2 });
    book.started('liar');
    expect(book.penalise('liar', 0)).toBe(false);
    book.started('liar');
    expect(book.penalise('liar', 100)).toBe(true);
    expect(book.active).toBe(1);
    expect(book.choose(1e9)).toBe('honest');
    expect(book.get('liar')).toMatchObject({ banned: true, invalid: 2 });
  });

  it('respects a per-peer limit', () => {
    const book = new PeerBook(['a'], { maxInFlightPerPeer: 1 });
    book.started('a');
    expect(book.choose(0)).toBeUndefined();
    expect(() => book.started('nobody')).toThrow(RangeError);
  });
});

describe('PeerBook among slow and silent peers (injected clock)', () => {
  type Step = (book: PeerBook) => void;
  const cases: { name: string; peers: string[]; options?: ConstructorParameters<typeof PeerBook>[1]; steps: Step[]; now: number; chosen: string | undefined }[] = [
    {
      name: 'a peer never tried, nothing in flight, is probed first',
      peers: ['silent', 'honest'],
      steps: [(b) => (b.started('honest', 0), b.succeeded('honest', 100, 10, 0))],
      now: 200,
      chosen: 'silent',
    },
    {
      name: 'a retired peer (does not serve the protocol) is never chosen, even alone',
      peers: ['gossip-only'],
      steps: [(b) => (b.started('gossip-only', 0), b.retire('gossip-only', 0))],
      now: 60_000,
      chosen: undefined,
    },
    {
      name: 'an unanswered peer is as slow as its oldest request: it ranks behind a measured one',
      peers: ['silent', 'honest'],
      steps: [(b) => b.started('silent', 0), (b) => (b.started('honest', 0), b.succeeded('honest', 100, 10, 0))],
      now: 1000,
      chosen: 'honest',
    },
    {
      name: 'a timed-out peer ranks as the slowest (its elapsed time is a sample), not as unknown',
      peers: ['silent', 'honest'],
      steps: [(b) => (b.started('silent', 0), b.failed('silent', 30_000, 30_000, { timedOut: true, startedAt: 0 })), (b) => (b.started('honest', 0), b.succeeded('honest', 500, 10, 0))],
      now: 70_000,
      chosen: 'honest',
    },
    {
      name: 'a timed-out peer is backed off for at least the time it took',
      peers: ['silent', 'other'],
      steps: [(b) => (b.started('silent', 0), b.failed('silent', 30_000, 30_000, { timedOut: true, startedAt: 0 })), (b) => b.penalise('other', 0)],
      now: 59_999,
      chosen: 'other',
    },
    {
      name: '... unless it is the only peer left: then only the usual back-off applies',
      peers: ['silent'],
      steps: [(b) => (b.started('silent', 0), b.failed('silent', 30_000, 30_000, { timedOut: true, startedAt: 0 }))],
      now: 30_010,
      chosen: 'silent',
    },
    {
      name: 'a slow peer holds at most its share of the slots (4 slots, 2 peers: 2)',
      peers: ['slow', 'fast'],
      options: { share: 4 },
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 10, 10, 0), b.started('slow', 0), b.succeeded('slow', 10_000, 10, 0)), (b) => (b.started('slow', 0), b.started('slow', 0))],
      now: 1,
      chosen: 'fast',
    },
    {
      name: 'the fastest measured peer is not held to a share: it takes every slot',
      peers: ['slow', 'fast'],
      options: { share: 4 },
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 10, 10, 0)), (b) => (b.started('slow', 0), b.started('slow', 0)), (b) => [0, 1, 2].forEach(() => b.started('fast', 0))],
      now: 1,
      chosen: 'fast',
    },
    {
      name: 'before any peer is measured, each is held to its share',
      peers: ['a', 'b'],
      options: { share: 4 },
      steps: [(b) => (b.started('a', 0), b.started('a', 0))],
      now: 0,
      chosen: 'b',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const book = new PeerBook(c.peers, c.options);
      for (const s of c.steps) s(book);
      expect(book.choose(c.now)).toBe(c.chosen);
    });
  }

  it('grows the back-off with consecutive failures past 1 s, up to maxBackoffMs', () => {
    const book = new PeerBook(['a'], { maxBackoffMs: 5000 });
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 20; i++) {
      book.started('a', now);
      book.failed('a', now, 1, { startedAt: now });
      const at = book.nextAvailable(now)!;
      delays.push(at - now);
      now = at;
    }
    expect(delays.slice(0, 3)).toEqual([10, 15, 22.5]);
    expect(delays.some((d) => d > 1000)).toBe(true);
    expect(Math.max(...delays)).toBe(5000);
    expect(book.get('a')).toMatchObject({ failures: 20, consecutiveFailures: 20 });
  });

  const hedges: { name: string; steps: Step[]; peer: string; after: number | undefined; now: number; age: number; to: string | undefined }[] = [
    { name: 'nothing measured: no hedge (nobody is known to be faster)', steps: [(b) => b.started('slow', 0)], peer: 'slow', after: undefined, now: 5000, age: 5000, to: undefined },
    {
      name: 'a request to a slow peer waits 2x the fastest latency, then goes to the fast peer',
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 200, 10, 0)), (b) => b.started('slow', 0)],
      peer: 'slow',
      after: 400,
      now: 400,
      age: 400,
      to: 'fast',
    },
    {
      name: 'the floor: a very fast peer still lets a request wait 50 ms',
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 1, 10, 0)), (b) => b.started('slow', 0)],
      peer: 'slow',
      after: 50,
      now: 50,
      age: 50,
      to: 'fast',
    },
    {
      name: 'the fastest peer is never hedged',
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 200, 10, 0)), (b) => b.started('fast', 0)],
      peer: 'fast',
      after: undefined,
      now: 5000,
      age: 5000,
      to: undefined, // nor is a never-measured peer a hedge target
    },
    {
      name: 'no hedge to a peer not known to be faster than the wait so far',
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 200, 10, 0)), (b) => (b.started('slow', 0), b.succeeded('slow', 300, 10, 0)), (b) => b.started('slow', 0)],
      peer: 'slow',
      after: 400,
      now: 150,
      age: 150,
      to: undefined,
    },
    {
      name: 'no hedge to a banned peer',
      steps: [(b) => (b.started('fast', 0), b.succeeded('fast', 200, 10, 0)), (b) => [0, 1, 2].forEach(() => (b.started('fast', 0), b.penalise('fast', 0, 0))), (b) => b.started('slow', 0)],
      peer: 'slow',
      after: undefined,
      now: 5000,
      age: 5000,
      to: undefined,
    },
  ];
  for (const c of hedges) {
    it(`hedging: ${c.name}`, () => {
      const book = new PeerBook(['slow', 'fast']);
      for (const s of c.steps) s(book);
      expect(book.hedgeAfter(c.peer)).toBe(c.after);
      expect(book.hedgeTo(c.peer, c.now, c.age)).toBe(c.to);
    });
  }

  it('ranks by measured throughput, not time per request: a peer that served big answers fast beats one that served small ones', () => {
    const book = new PeerBook(['big', 'small']);
    book.started('big', 0);
    book.succeeded('big', 100, 100_000, 0); // 1,000 bytes/ms
    book.started('small', 0);
    book.succeeded('small', 10, 1_000, 0); // 100 bytes/ms, though each answer took a tenth of the time
    expect(book.expectedMs('big')!).toBeLessThan(book.expectedMs('small')!);
    expect(book.choose(200)).toBe('big');
    expect(book.hedgeAfter('small')).toBeGreaterThan(0); // 'big' is the one known to be faster
    expect(book.hedgeAfter('big')).toBeUndefined();
    // a failure is a sample of no bytes: the failing peer's throughput falls
    book.started('big', 300);
    book.failed('big', 400, 100, { startedAt: 300 });
    expect(book.get('big')!.bytesPerMs).toBeCloseTo(700);
  });

  it('spreads a closed loop of requests by throughput: the fastest of 4 gets the most, every peer keeps a share', () => {
    // peers answer 100 kB at these bytes/ms, one request at a time each (a busy node queues)
    const rate: Record<string, number> = { a: 2000, b: 1000, c: 1000, d: 1000 };
    const book = new PeerBook(Object.keys(rate), { share: 4 });
    const served: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
    const busyUntil: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
    const pending: { peer: string; start: number; end: number }[] = [];
    let now = 0;
    for (let sent = 0; sent < 400 || pending.length; ) {
      for (let peer = book.choose(now); peer !== undefined && sent < 400 && pending.length < 4; peer = book.choose(now)) {
        const end = Math.max(now, busyUntil[peer]) + 100_000 / rate[peer];
        busyUntil[peer] = end;
        book.started(peer, now);
        pending.push({ peer, start: now, end });
        sent++;
      }
      pending.sort((x, y) => x.end - y.end);
      const done = pending.shift()!;
      now = done.end;
      book.succeeded(done.peer, now - done.start, 100_000, done.start);
      served[done.peer]++;
    }
    const shares = Object.fromEntries(Object.entries(served).map(([k, v]) => [k, v / 400]));
    for (const other of ['b', 'c', 'd']) {
      expect(shares.a).toBeGreaterThan(shares[other]);
      expect(shares[other]).toBeGreaterThan(0.15);
    }
    expect(shares.a).toBeLessThan(0.5);
  });

  it('a peer that went away is not chosen until it is added anew, its record kept', () => {
    const book = new PeerBook(['gone', 'other']);
    book.started('gone', 0);
    book.succeeded('gone', 1, 1_000, 0);
    book.left('gone');
    expect(book.get('gone')).toMatchObject({ retired: true, banned: false, successes: 1 });
    expect(book.active).toBe(1);
    expect(book.choose(10)).toBe('other');
    book.started('other', 10);
    expect(book.choose(10, 'other')).toBeUndefined();
    book.add('gone');
    expect(book.get('gone')).toMatchObject({ retired: false, successes: 1 });
    expect(book.choose(10, 'other')).toBe('gone');
  });
});
