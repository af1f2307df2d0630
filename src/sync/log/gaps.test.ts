import { describe, expect, it } from 'vitest';
import { findNextGap, type LocationRange } from './gaps.ts';

interface Case {
  lower: number;
  upper: number;
  /** [start, count] of fetched batches */
  fetched: [number, number][];
  /** [start, maxOps] of outstanding requests */
  outstanding: [number, number][];
  expected: [number, number] | undefined;
}

const r = ([start, n]: [number, number]): LocationRange => ({ start, end: start + n });

// Named cases in the manner of commonware `storage/src/qmdb/sync/gaps.rs`.
const cases: Record<string, Case> = {
  empty_state_full_range: { lower: 0, upper: 11, fetched: [], outstanding: [], expected: [0, 11] },
  invalid_bounds: { lower: 10, upper: 6, fetched: [], outstanding: [], expected: undefined },
  zero_length_range: { lower: 5, upper: 5, fetched: [], outstanding: [], expected: undefined },
  fetched_prefix: { lower: 0, upper: 10, fetched: [[0, 4]], outstanding: [], expected: [4, 10] },
  outstanding_prefix: { lower: 0, upper: 10, fetched: [], outstanding: [[0, 4]], expected: [4, 10] },
  gap_between_fetched_and_outstanding: { lower: 0, upper: 10, fetched: [[0, 3]], outstanding: [[5, 2]], expected: [3, 5] },
  gap_between_outstanding: { lower: 0, upper: 20, fetched: [], outstanding: [[0, 5], [8, 5]], expected: [5, 8] },
  fully_covered_mixed: { lower: 0, upper: 10, fetched: [[0, 3], [6, 4]], outstanding: [[3, 3]], expected: undefined },
  overlapping_covers: { lower: 0, upper: 10, fetched: [[0, 5]], outstanding: [[2, 6]], expected: [8, 10] },
  unsorted_inputs: { lower: 0, upper: 12, fetched: [[8, 2], [0, 2]], outstanding: [[4, 2], [2, 2]], expected: [6, 8] },
  lower_inside_cover: { lower: 3, upper: 10, fetched: [[0, 5]], outstanding: [], expected: [5, 10] },
  covers_before_lower_ignored: { lower: 6, upper: 10, fetched: [[0, 2]], outstanding: [[2, 2]], expected: [6, 10] },
  short_response_leaves_tail: { lower: 0, upper: 10, fetched: [[0, 2]], outstanding: [[4, 6]], expected: [2, 4] },
  cover_beyond_upper: { lower: 0, upper: 5, fetched: [], outstanding: [[0, 9]], expected: undefined },
  gap_clipped_to_upper: { lower: 0, upper: 5, fetched: [[0, 2]], outstanding: [[7, 2]], expected: [2, 5] },
  empty_cover_ignored: { lower: 0, upper: 5, fetched: [[2, 0]], outstanding: [], expected: [0, 5] },
  gap_at_end: { lower: 0, upper: 10, fetched: [[0, 5]], outstanding: [[5, 4]], expected: [9, 10] },
};

describe('findNextGap', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const got = findNextGap(c.lower, c.upper, c.fetched.map(r), c.outstanding.map(r));
      expect(got).toEqual(c.expected && { start: c.expected[0], end: c.expected[1] });
    });
  }
});
