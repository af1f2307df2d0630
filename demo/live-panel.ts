/**
 * The live panel: the verified root and its sequence number, and a feed with one row per signed
 * announcement that moves in place from "announced" to "verified" (a new synced root) or
 * "applied" (a live delta, with its commit-to-screen time), or to "folded into #n" when a newer
 * root overtook it; gap fills get rows of their own. Commit-to-screen is measured from the
 * writer's commit time (a delta's HLC wall clock, or the demo server's answer to a write made
 * from this page) to the moment this page hears of the verified state.
 */
import type { DemoWriteResult } from './config.ts';
import { clock, formatBytes, formatCount, formatMs, shortHex } from './format.ts';
import { toHex, type DeltaUpdate, type GapFillEvent, type PendingStateEvent } from './sdk.ts';

const FEED_ROWS = 30;
const LATENCY_SAMPLES = 20;

type RowState = 'announced' | 'verified' | 'applied' | 'folded' | 'written' | 'on-screen' | 'gap' | 'gap-failed';

interface FeedRow {
  el: HTMLLIElement;
  seq: number | undefined;
  at: number;
  state: RowState;
}

export interface LiveElements {
  root: HTMLElement;
  seq: HTMLElement;
  behind: HTMLElement;
  verifyLatency: HTMLElement;
  commitLatency: HTMLElement;
  pending: HTMLElement;
  feed: HTMLUListElement;
}

interface Write extends DemoWriteResult {
  row: FeedRow;
  check: (key: string, value: string) => Promise<boolean>;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export class LivePanel {
  readonly #e: LiveElements;
  readonly #rows: FeedRow[] = [];
  readonly #writes: Write[] = [];
  readonly #verifyTimes: number[] = [];
  readonly #commitTimes: number[] = [];
  #announced = -1;
  #verified = -1;
  #pending: PendingStateEvent | undefined;
  #gapFills = 0;
  /** Rows of recently applied deltas by their root (hex): an announcement may follow its delta. */
  readonly #appliedRoots = new Map<string, FeedRow>();

  constructor(e: LiveElements) {
    this.#e = e;
  }

  get verifiedSeq(): number {
    return this.#verified;
  }

  onAnnouncement(seq: number, root: string): void {
    if (seq <= this.#announced) return;
    this.#announced = seq;
    const applied = this.#appliedRoots.get(root);
    if (applied) {
      // the delta came first (gossip order): its row learns its seq
      applied.seq = seq;
      applied.el.dataset.seq = String(seq);
      applied.el.querySelector('.seq')!.textContent = `#${seq}`;
      this.#showRoot(seq, root);
      this.#fold(seq);
    } else if (seq > this.#verified && !this.#row(seq)) this.#add(seq, 'announced', `root ${shortHex(root)}`, 'announced, verifying…');
    this.#renderBehind();
  }

  /** The local state stands at a signed root (a sync or catch-up reached it). */
  onSynced(seq: number, root: string): void {
    const now = Date.now();
    this.#showRoot(seq, root);
    const row = this.#row(seq);
    if (row?.state === 'announced') {
      const ms = now - row.at;
      this.#sample(this.#verifyTimes, ms);
      this.#set(row, 'verified', `✓ verified in ${formatMs(ms)}`);
    } else if (!row) this.#add(seq, 'verified', `root ${shortHex(root)}`, '✓ verified');
    this.#fold(seq);
    this.#settleWrites(seq, undefined);
    this.#renderBehind();
  }

  /** A live delta was verified and applied: the state moved by one commit. */
  onDelta(u: DeltaUpdate, root: string): void {
    const now = Date.now();
    const commitToScreen = Math.max(0, now - u.hlcWallMs);
    this.#sample(this.#commitTimes, commitToScreen);
    this.#e.commitLatency.textContent = formatMs(median(this.#commitTimes));
    const text = `✓ applied · ${formatMs(commitToScreen)}`;
    const what = `Δ ${toHex(u.deltaId).slice(0, 8)} · ${u.keys.length} key${u.keys.length === 1 ? '' : 's'}`;
    if (u.seq !== undefined) {
      this.#showRoot(u.seq, root);
      const row = this.#row(u.seq);
      if (row && row.state === 'announced') {
        this.#sample(this.#verifyTimes, now - row.at);
        row.el.querySelector('.what')!.textContent = what;
        this.#set(row, 'applied', text);
      } else if (!row) this.#add(u.seq, 'applied', what, text);
      this.#fold(u.seq);
    } else {
      // applied before its announcement arrived: the root is verified, its seq comes next
      this.#add(undefined, 'applied', what, text);
      this.#e.root.textContent = root;
      this.#e.root.dataset.root = root;
      this.#e.seq.textContent = '#…';
    }
    const applied = this.#rows.find((r) => r.state === 'applied');
    if (applied) {
      applied.el.title = `verified and applied ${formatMs(commitToScreen)} after the writer committed it (its signed clock)`;
      this.#appliedRoots.set(root, applied);
      if (this.#appliedRoots.size > FEED_ROWS) this.#appliedRoots.delete(this.#appliedRoots.keys().next().value!);
    }
    this.#settleWrites(u.seq ?? -1, u.keys);
    this.#renderBehind();
  }

  onPending(p: PendingStateEvent): void {
    this.#pending = p;
    this.#renderPending();
  }

  onGapFill(g: GapFillEvent, peerName: string): void {
    if (g.phase === 'started') return;
    this.#gapFills++;
    const ok = g.phase === 'finished';
    this.#add(undefined, ok ? 'gap' : 'gap-failed', `gap fill from ${peerName}: ${g.missing} missing`, ok ? `fetched ${g.fetched} in ${g.rounds} round${g.rounds === 1 ? '' : 's'}` : `failed (${g.reason ?? '?'}): catching up`);
    this.#renderPending();
  }

  /** A write made from this page; `check` reads the key back from the local replica. */
  onWrite(w: DemoWriteResult, check: (key: string, value: string) => Promise<boolean>): void {
    const row = this.#add(w.seq, 'written', `you wrote key ${shortHex(w.key, 6, 4)}`, 'committed, on its way…');
    this.#writes.push({ ...w, row, check });
  }

  #settleWrites(seq: number, keys: Uint8Array[] | undefined): void {
    const now = Date.now();
    const hexKeys = keys?.map(toHex);
    for (const w of [...this.#writes]) {
      if (!(w.seq <= seq || hexKeys?.includes(w.key))) continue;
      this.#writes.splice(this.#writes.indexOf(w), 1);
      const ms = now - w.committedAt;
      void w.check(w.key, w.value).then((ok) => {
        if (this.#commitTimes.length === 0) this.#e.commitLatency.textContent = formatMs(ms);
        this.#set(w.row, 'on-screen', ok ? `✓ on screen ${formatMs(ms)} after commit` : `✗ verified #${seq} but the key reads differently`);
        w.row.el.title = ok ? 'the key reads back from the local verified replica' : '';
      });
    }
  }

  #showRoot(seq: number, root: string): void {
    if (seq < this.#verified) return;
    this.#verified = seq;
    this.#e.root.textContent = root;
    this.#e.root.dataset.root = root;
    this.#e.seq.textContent = `#${seq}`;
    this.#e.seq.dataset.seq = String(seq);
    if (this.#verifyTimes.length) this.#e.verifyLatency.textContent = formatMs(median(this.#verifyTimes));
  }

  /** Announced rows older than `seq` are part of the state at `seq` now. */
  #fold(seq: number): void {
    for (const r of this.#rows) if (r.state === 'announced' && r.seq !== undefined && r.seq < seq) this.#set(r, 'folded', `folded into #${seq}`);
  }

  #sample(xs: number[], ms: number): void {
    xs.push(ms);
    if (xs.length > LATENCY_SAMPLES) xs.shift();
  }

  #renderBehind(): void {
    const behind = this.#announced >= 0 && this.#verified >= 0 ? Math.max(0, this.#announced - this.#verified) : undefined;
    this.#e.behind.textContent = behind === undefined ? '—' : behind === 0 ? 'up to date' : `${behind} behind`;
  }

  #renderPending(): void {
    const p = this.#pending;
    this.#e.pending.textContent = `${p ? formatCount(p.count) : '—'} · ${formatCount(this.#gapFills)}`;
    this.#e.pending.title = p ? `${formatCount(p.count)} deltas held (${formatBytes(p.bytes)}) until their parents are applied; ${this.#gapFills} gap fills` : '';
    this.#e.pending.classList.toggle('muted', !p);
  }

  #row(seq: number): FeedRow | undefined {
    return this.#rows.find((r) => r.seq === seq && r.state !== 'written' && r.state !== 'on-screen');
  }

  #add(seq: number | undefined, state: RowState, what: string, status: string): FeedRow {
    const li = document.createElement('li');
    if (seq !== undefined) li.dataset.seq = String(seq);
    const cells = ['time', 'seq', 'what', 'state'].map((c) => {
      const span = document.createElement('span');
      span.className = c;
      li.append(span);
      return span;
    });
    cells[0].textContent = clock();
    cells[1].textContent = seq === undefined ? '' : `#${seq}`;
    cells[2].textContent = what;
    const row: FeedRow = { el: li, seq, at: Date.now(), state };
    this.#set(row, state, status);
    this.#e.feed.prepend(li);
    this.#rows.unshift(row);
    while (this.#rows.length > FEED_ROWS) this.#rows.pop()!.el.remove();
    return row;
  }

  #set(row: FeedRow, state: RowState, text: string): void {
    row.state = state;
    row.el.dataset.state = state;
    row.el.querySelector('.state')!.textContent = text;
  }
}
