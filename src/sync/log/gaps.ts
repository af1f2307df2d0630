/**
 * The next range of the log nobody is fetching yet (docs/mmr.md#syncing-a-log; commonware `gaps.rs`).
 *
 * Outstanding requests are counted by the most they may return; a source may return fewer,
 * and the remainder shows up as a gap once the response is stored.
 */

/** Half-open range of log locations `[start, end)`. */
export interface LocationRange {
  start: number;
  end: number;
}

/**
 * The first maximal range inside `[lower, upper)` covered neither by `fetched` nor by
 * `outstanding` (both in any order, possibly overlapping), or `undefined` if there is none.
 *
 * @example
 * findNextGap(0, 10, [{ start: 0, end: 3 }], [{ start: 5, end: 7 }]); // { start: 3, end: 5 }
 */
export function findNextGap(
  lower: number,
  upper: number,
  fetched: readonly LocationRange[],
  outstanding: readonly LocationRange[],
): LocationRange | undefined {
  if (lower >= upper) return undefined;
  const covered = [...fetched, ...outstanding].filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  let next = lower;
  for (const r of covered) {
    if (r.start > next) return { start: next, end: Math.min(r.start, upper) };
    if (r.end > next) next = r.end;
    if (next >= upper) return undefined;
  }
  return next < upper ? { start: next, end: upper } : undefined;
}
