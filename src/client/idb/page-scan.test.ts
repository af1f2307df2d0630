/**
 * Range scans (page-scan.ts) over in-memory pages and overlays, against a sorted-map model:
 * bounds on and between fences, both directions, limits, the overlay's puts and deletions, and
 * a scan that meets another connection's commit halfway.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { compareBytes, fromHex, toHex } from '../../core/bytes.ts';
import type { BatchOp, IterateOptions } from '../../core/store.ts';
import { encodePage, type Entry, Page } from './page.ts';
import { type Slot, slotOf } from './page-index.ts';
import { scanBounds, scanSnapshot, type Snapshot, type SnapshotPages } from './page-scan.ts';
import { Overlay } from './write-log.ts';

const h = fromHex;

/** Pages cut at `fences` (the first is empty) holding `entries` (sorted). */
function pagesOf(entries: Entry[], fences: Uint8Array[]): { index: Slot[]; pages: Map<Slot, Page> } {
  const index = fences.map(slotOf);
  const pages = new Map<Slot, Page>();
  for (let i = 0; i < index.length; i++) {
    const next = index[i + 1]?.fence;
    pages.set(index[i], new Page(encodePage(entries.filter(([k]) => compareBytes(k, index[i].fence) >= 0 && (!next || compareBytes(k, next) < 0)))));
  }
  return { index, pages };
}

async function collect(snap: Snapshot, o: IterateOptions, pageAt: SnapshotPages): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of scanSnapshot(snap, scanBounds(o), o.reverse === true, o.limit ?? Infinity, pageAt)) out.push(`${toHex(k)}=${toHex(v)}`);
  return out;
}

/** What a scan must yield: the pages' entries with the overlay's ops applied, filtered and ordered. */
function model(entries: Entry[], ops: BatchOp[], o: IterateOptions): string[] {
  const map = new Map(entries.map(([k, v]) => [toHex(k), toHex(v)]));
  for (const op of ops) {
    if (op.type === 'put') map.set(toHex(op.key), toHex(op.value));
    else map.delete(toHex(op.key));
  }
  let keys = [...map.keys()].sort((a, b) => compareBytes(h(a), h(b)));
  keys = keys.filter((k) => {
    const b = h(k);
    if (o.gte && compareBytes(b, o.gte) < 0) return false;
    if (o.gt && compareBytes(b, o.gt) <= 0) return false;
    if (o.lte && compareBytes(b, o.lte) > 0) return false;
    if (o.lt && compareBytes(b, o.lt) >= 0) return false;
    return true;
  });
  if (o.reverse) keys.reverse();
  const limit = o.limit ?? Infinity;
  return keys.slice(0, limit > 0 ? limit : 0).map((k) => `${k}=${map.get(k)}`);
}

describe('scanBounds', () => {
  test.each([
    { name: 'none', o: {}, b: [undefined, true, undefined, true] },
    { name: 'gt beats a lower gte', o: { gte: h('10'), gt: h('20') }, b: ['20', false, undefined, true] },
    { name: 'gte beats a lower gt', o: { gte: h('20'), gt: h('10') }, b: ['20', true, undefined, true] },
    { name: 'gt on the same key as gte: exclusive', o: { gte: h('10'), gt: h('10') }, b: ['10', false, undefined, true] },
    { name: 'lt beats a higher lte', o: { lte: h('30'), lt: h('20') }, b: [undefined, true, '20', false] },
    { name: 'lte beats a higher lt', o: { lte: h('20'), lt: h('30') }, b: [undefined, true, '20', true] },
  ])('$name', ({ o, b }) => {
    const r = scanBounds(o);
    expect([r.lower && toHex(r.lower), r.lowerInclusive, r.upper && toHex(r.upper), r.upperInclusive]).toEqual(b);
  });
});

describe('scanSnapshot', () => {
  const entries: Entry[] = ['01', '10', '11', '1f', '20', '2001', '30'].map((k) => [h(k), h(k)]);
  const fences = ['', '10', '20', '30'].map(h);
  const { index, pages } = pagesOf(entries, fences);
  const overlay = new Overlay();
  overlay.apply([{ type: 'put', key: h('15'), value: h('aa') }, { type: 'del', key: h('20') }, { type: 'put', key: h('10'), value: h('bb') }], 1);
  const ops: BatchOp[] = [{ type: 'put', key: h('15'), value: h('aa') }, { type: 'del', key: h('20') }, { type: 'put', key: h('10'), value: h('bb') }];
  const pageAt: SnapshotPages = async (_snap, slot) => pages.get(slot);
  const snap = (): Snapshot => ({ index, pinned: new Map(), overlay: overlay.sorted() });

  test.each<{ name: string; o: IterateOptions }>([
    { name: 'everything', o: {} },
    { name: 'everything, reversed', o: { reverse: true } },
    { name: 'from a fence, inclusive', o: { gte: h('10') } },
    { name: 'from a fence, exclusive', o: { gt: h('10') } },
    { name: 'up to a fence, exclusive, reversed', o: { lt: h('20'), reverse: true } },
    { name: 'up to a fence, inclusive, reversed', o: { lte: h('20'), reverse: true } },
    { name: 'below the first key, exclusive, reversed', o: { lt: h(''), reverse: true } },
    { name: 'between fences', o: { gte: h('12'), lte: h('2001') } },
    { name: 'a deleted key as the bound', o: { gte: h('20'), lt: h('30') } },
    { name: 'an empty range', o: { gt: h('30'), lt: h('30') } },
    { name: 'a limit across pages and the overlay', o: { gte: h('01'), limit: 4 } },
    { name: 'a limit, reversed', o: { reverse: true, limit: 3 } },
    { name: 'a limit of 0 yields nothing', o: { limit: 0 } },
  ])('$name', async ({ o }) => {
    expect(await collect(snap(), o, pageAt)).toEqual(model(entries, ops, o));
  });

  test('any pages, overlay and bounds: the model', async () => {
    const key = fc.uint8Array({ maxLength: 2 });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(key, { selector: toHex, maxLength: 40 }),
        fc.uniqueArray(key.filter((k) => k.length > 0), { selector: toHex, maxLength: 6 }),
        fc.array(fc.record({ key, del: fc.boolean() }), { maxLength: 20 }),
        fc.record({ gte: fc.option(key, { nil: undefined }), gt: fc.option(key, { nil: undefined }), lte: fc.option(key, { nil: undefined }), lt: fc.option(key, { nil: undefined }), reverse: fc.boolean(), limit: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }) }),
        async (keys, cuts, changes, o) => {
          const entries: Entry[] = keys.sort(compareBytes).map((k) => [k, Uint8Array.of(1, ...k)]);
          const { index, pages } = pagesOf(entries, [new Uint8Array(0), ...cuts.sort(compareBytes)]);
          const ops: BatchOp[] = changes.map((c) => (c.del ? { type: 'del', key: c.key } : { type: 'put', key: c.key, value: Uint8Array.of(2, ...c.key) }));
          const ov = new Overlay();
          ov.apply(ops, 1);
          const got = await collect({ index, pinned: new Map(), overlay: ov.sorted() }, o, async (_s, slot) => pages.get(slot));
          expect(got).toEqual(model(entries, ops, o));
        },
      ),
    );
  });

  test("another connection's commit halfway: the scan continues after the last key, in the new state", async () => {
    // the new state: '11' deleted, '12' and '25' added, '30' changed, pages cut elsewhere
    const newer: Entry[] = [['01', '01'], ['10', '10'], ['12', '12'], ['1f', '1f'], ['25', '25'], ['30', 'ff']].map(([k, v]) => [h(k), h(v)]);
    const moved = pagesOf(newer, ['', '1f'].map(h));
    const snapshot: Snapshot = { index, pinned: new Map(), overlay: [] };
    let reads = 0;
    const pageAt: SnapshotPages = async (s, slot) => {
      if (++reads === 3) {
        // the third page read meets the commit: the snapshot moves, this read looks again
        s.index = moved.index;
        s.pinned.clear();
        return undefined;
      }
      return pages.get(slot) ?? moved.pages.get(slot);
    };
    expect(await collect(snapshot, {}, pageAt)).toEqual(['01=01', '10=10', '11=11', '1f=1f', '25=25', '30=ff']);
  });
});
