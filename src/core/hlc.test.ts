import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareHlc, HybridClock, MAX_HLC_COUNTER, receiveHlc, tickHlc, type Hlc } from './hlc.ts';

const t = (wallMs: number, counter: number): Hlc => ({ wallMs, counter });

describe('tickHlc', () => {
  const cases: [string, Hlc, number, Hlc][] = [
    ['wall clock moved on: take it, counter 0', t(5, 3), 9, t(9, 0)],
    ['wall clock unchanged: count', t(5, 3), 5, t(5, 4)],
    ['wall clock went backwards: keep ours, count', t(5, 3), 2, t(5, 4)],
    ['counter full: next millisecond', t(5, MAX_HLC_COUNTER), 5, t(6, 0)],
    ['fractional wall time is floored', t(5, 0), 7.9, t(7, 0)],
  ];
  it.each(cases)('%s', (_name, last, now, expected) => {
    expect(tickHlc(last, now)).toEqual(expected);
  });
});

describe('receiveHlc', () => {
  const cases: [string, Hlc, Hlc, number, Hlc][] = [
    ['wall clock ahead of both', t(5, 3), t(6, 9), 10, t(10, 0)],
    ['remote ahead: take its time, its counter + 1', t(5, 3), t(8, 9), 6, t(8, 10)],
    ['ours ahead: keep, our counter + 1', t(8, 3), t(5, 9), 6, t(8, 4)],
    ['same wall time: max counter + 1', t(8, 3), t(8, 9), 6, t(8, 10)],
    ['remote counter full: next millisecond', t(1, 0), t(8, MAX_HLC_COUNTER), 2, t(9, 0)],
  ];
  it.each(cases)('%s', (_name, last, remote, now, expected) => {
    expect(receiveHlc(last, remote, now)).toEqual(expected);
  });

  it('refuses a remote clock too far ahead with HlcDriftExceeded', () => {
    expect(() => receiveHlc(t(0, 0), t(10_001, 0), 0, 10_000)).toThrow(
      expect.objectContaining({ name: 'HlcDriftExceeded' }),
    );
    expect(receiveHlc(t(0, 0), t(10_000, 0), 0, 10_000)).toEqual(t(10_000, 1));
  });

  it('is strictly after both inputs, for any inputs', () => {
    const arb = fc.record({ wallMs: fc.nat({ max: 1e6 }), counter: fc.nat({ max: MAX_HLC_COUNTER }) });
    fc.assert(
      fc.property(arb, arb, fc.nat({ max: 1e6 }), (last, remote, now) => {
        const r = receiveHlc(last, remote, now);
        expect(compareHlc(r, last)).toBeGreaterThan(0);
        expect(compareHlc(r, remote)).toBeGreaterThan(0);
        expect(r.wallMs).toBeGreaterThanOrEqual(now);
        const k = tickHlc(last, now);
        expect(compareHlc(k, last)).toBeGreaterThan(0);
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});

describe('compareHlc', () => {
  const w = (n: number) => new Uint8Array(32).fill(n);
  const cases: [string, Hlc, Hlc, number][] = [
    ['wall time first', t(1, 9), t(2, 0), -1],
    ['then counter', t(2, 1), t(2, 0), 1],
    ['equal', t(2, 1), t(2, 1), 0],
    ['absent writer before present', t(2, 1), { ...t(2, 1), writer: w(0) }, -1],
    ['then writer bytes', { ...t(2, 1), writer: w(2) }, { ...t(2, 1), writer: w(1) }, 1],
  ];
  it.each(cases)('%s', (_name, a, b, expected) => {
    expect(compareHlc(a, b)).toBe(expected);
    expect(compareHlc(b, a)).toBe(-expected || 0);
  });
});

describe('HybridClock', () => {
  it('issues increasing timestamps from an injected wall clock and keeps its writer', () => {
    let now = 100;
    const writer = new Uint8Array(32).fill(7);
    const clock = new HybridClock(() => now, { writer });
    expect(clock.tick()).toEqual({ wallMs: 100, counter: 0, writer });
    expect(clock.tick()).toEqual({ wallMs: 100, counter: 1, writer });
    now = 90; // wall clock stepped back
    expect(clock.tick()).toEqual({ wallMs: 100, counter: 2, writer });
    expect(clock.receive({ wallMs: 150, counter: 4 })).toEqual({ wallMs: 150, counter: 5, writer });
    now = 200;
    expect(clock.tick()).toEqual({ wallMs: 200, counter: 0, writer });
    expect(clock.now()).toEqual({ wallMs: 200, counter: 0, writer });
  });

  it('enforces its drift limit', () => {
    const clock = new HybridClock(() => 0, { maxDriftMs: 5 });
    expect(() => clock.receive(t(6, 0))).toThrow(expect.objectContaining({ name: 'HlcDriftExceeded' }));
    expect(clock.now()).toEqual(t(0, 0));
  });
});
