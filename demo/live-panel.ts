/**
 * The live panel: the verified root and its sequence number, and a feed with one row per signed
 * announcement that moves from "announced" to "verified" (with the time it took) in place, or to
 * "folded into #n" when a newer root overtook it. Writes made from the page show their
 * commit-to-screen time: from the writer's answer to the moment the new root is verified here
 * and the key reads back from the local replica.
 */
import type { DemoWriteResult } from './config.ts';
import { clock, formatMs, shortHex } from './format.ts';

const FEED_ROWS = 30;

type RowState = 'announced' | 'verified' | 'folded' | 'written' | 'on-screen';

interface FeedRow {
  el: HTMLLIElement;
  seq: number;
  at: number;
  state: RowState;
}

export interface LiveElements {
  root: HTMLElement;
  seq: HTMLElement;
  behind: HTMLElement;
  verifyLatency: HTMLElement;
  commitLatency: HTMLElement;
  feed: HTMLUListElement;
}

export class LivePanel {
  readonly #e: LiveElements;
  readonly #rows: FeedRow[] = [];
  readonly #writes: (DemoWriteResult & { row: FeedRow; check: (key: string, value: string) => Promise<boolean> })[] = [];
  readonly #verifyTimes: number[] = [];
  #announced = -1;
  #verified = -1;

  constructor(e: LiveElements) {
    this.#e = e;
  }

  get verifiedSeq(): number {
    return this.#verified;
  }

  onAnnouncement(seq: number, root: string): void {
    if (seq <= this.#announced) return;
    this.#announced = seq;
    this.#add(seq, 'announced', `root ${shortHex(root)}`);
    this.#renderBehind();
  }

  onSynced(seq: number, root: string): void {
    const now = Date.now();
    this.#verified = Math.max(this.#verified, seq);
    this.#e.root.textContent = root;
    this.#e.root.dataset.root = root;
    this.#e.seq.textContent = `#${seq}`;
    this.#e.seq.dataset.seq = String(seq);
    for (const r of this.#rows) {
      if (r.state !== 'announced' || r.seq > seq) continue;
      if (r.seq === seq) {
        const ms = now - r.at;
        this.#verifyTimes.push(ms);
        if (this.#verifyTimes.length > 10) this.#verifyTimes.shift();
        this.#set(r, 'verified', `✓ verified in ${formatMs(ms)}`);
      } else this.#set(r, 'folded', `folded into #${seq}`);
    }
    if (!this.#rows.some((r) => r.seq === seq && r.state === 'verified')) {
      // verified without an announcement row (the first sync, or a reload)
      const row = this.#add(seq, 'verified', `root ${shortHex(root)}`);
      this.#set(row, 'verified', '✓ verified');
    }
    if (this.#verifyTimes.length) {
      const sorted = [...this.#verifyTimes].sort((a, b) => a - b);
      this.#e.verifyLatency.textContent = formatMs(sorted[Math.floor(sorted.length / 2)]);
    }
    for (const w of this.#writes.filter((x) => x.seq <= seq)) {
      this.#writes.splice(this.#writes.indexOf(w), 1);
      const ms = now - w.committedAt;
      void w.check(w.key, w.value).then((ok) => {
        this.#e.commitLatency.textContent = formatMs(ms);
        this.#set(w.row, 'on-screen', ok ? `✓ on screen ${formatMs(ms)} after commit` : `✗ verified #${seq} but the key reads differently`);
      });
    }
    this.#renderBehind();
  }

  /** A write made from this page; `check` reads the key back from the local replica. */
  onWrite(w: DemoWriteResult, check: (key: string, value: string) => Promise<boolean>): void {
    const row = this.#add(w.seq, 'written', `you wrote key ${shortHex(w.key, 6, 4)}`);
    this.#set(row, 'written', 'committed, on its way…');
    this.#writes.push({ ...w, row, check });
  }

  #renderBehind(): void {
    const behind = this.#announced >= 0 && this.#verified >= 0 ? Math.max(0, this.#announced - this.#verified) : undefined;
    this.#e.behind.textContent = behind === undefined ? '—' : behind === 0 ? 'up to date' : `${behind} behind`;
  }

  #add(seq: number, state: RowState, text: string): FeedRow {
    const li = document.createElement('li');
    li.dataset.seq = String(seq);
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = clock();
    const s = document.createElement('span');
    s.className = 'seq';
    s.textContent = `#${seq}`;
    const what = document.createElement('span');
    what.className = 'what';
    what.textContent = text;
    const st = document.createElement('span');
    st.className = 'state';
    li.append(time, s, what, st);
    const row: FeedRow = { el: li, seq, at: Date.now(), state };
    this.#set(row, state, state === 'announced' ? 'announced, verifying…' : '');
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
