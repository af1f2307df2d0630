/**
 * The key-space map: a canvas strip from key 00… (left) to ff… (right), each stretch coloured by
 * the root its local key-values stand at: the sync's target (green), an older signed root being
 * caught up (amber), or not fetched yet (grey). Segments come from the progress the sync engine
 * persists (docs/sync.md: a partition of the key space, each segment tagged with a root).
 *
 * When progress events carry no segments, the map shows what it can know, drawn from the left
 * and said so in its caption: the fraction at the target, and the most ever covered (a range
 * verified at an older root stays verified; a new root only makes it stale).
 */
import { fitCanvas } from './format.ts';

export interface MapSegment {
  /** Inclusive start; undefined: the beginning of the key space. */
  start: Uint8Array | undefined;
  /** Exclusive end; undefined: to the end of the key space. */
  end: Uint8Array | undefined;
  /** Verified at the target root, at an older signed root, or not fetched yet. */
  state: 'target' | 'older' | 'none';
}

export type SegmentState = 'target' | 'older' | 'missing';

/** A key's position in [0, 1) from its first 6 bytes (finer than any pixel). */
export function keyPosition(key: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < 6; i++) v = v * 256 + (key[i] ?? 0);
  return v / 2 ** 48;
}

const COLOURS: Record<SegmentState, string> = { target: '#16a34a', older: '#d97706', missing: '#e2e8f0' };

export interface MapPicture {
  /** Stretches of [0, 1] and their state. */
  spans: { from: number; to: number; state: SegmentState }[];
  /** Exact (segments reported) or approximate (only the covered fraction). */
  exact: boolean;
}


/** The picture for reported segments. */
export function pictureFromSegments(segments: MapSegment[]): MapPicture {
  return {
    exact: true,
    spans: segments.map((s) => ({
      from: s.start ? keyPosition(s.start) : 0,
      to: s.end ? keyPosition(s.end) : 1,
      state: s.state === 'none' ? 'missing' : s.state,
    })),
  };
}

/**
 * The picture when only fractions are known: `atTarget` of the key space verified at the target
 * root, `covered` verified at some signed root (the target, or an older one to catch up from).
 */
export function pictureFromFractions(atTarget: number, covered: number): MapPicture {
  const clamp = (x: number): number => Math.min(1, Math.max(0, x));
  const t = clamp(atTarget);
  const c = Math.max(t, clamp(covered));
  return {
    exact: false,
    spans: ([
      { from: 0, to: t, state: 'target' },
      { from: t, to: c, state: 'older' },
      { from: c, to: 1, state: 'missing' },
    ] satisfies MapPicture['spans']).filter((s) => s.to > s.from),
  };
}

/** Share of the key space in each state. */
export function coverage(p: MapPicture): Record<SegmentState, number> {
  const out: Record<SegmentState, number> = { target: 0, older: 0, missing: 0 };
  for (const s of p.spans) out[s.state] += s.to - s.from;
  return out;
}

/** Draws pictures on a canvas that follows its CSS size (device pixels, so it stays crisp). */
export class KeySpaceMap {
  readonly #canvas: HTMLCanvasElement;
  #picture: MapPicture = { spans: [], exact: false };

  constructor(canvas: HTMLCanvasElement) {
    this.#canvas = canvas;
    new ResizeObserver(() => this.#draw()).observe(canvas);
  }

  show(p: MapPicture): void {
    this.#picture = p;
    const c = coverage(p);
    // what the page shows, for people reading the DOM and for the end-to-end test
    this.#canvas.dataset.covered = c.target.toFixed(4);
    this.#canvas.dataset.older = c.older.toFixed(4);
    this.#canvas.dataset.exact = String(p.exact);
    this.#draw();
  }

  #draw(): void {
    const fit = fitCanvas(this.#canvas);
    if (!fit) return;
    const { g, w, h, dpr } = fit;
    g.fillStyle = COLOURS.missing;
    g.fillRect(0, 0, w, h);
    for (const s of this.#picture.spans) {
      if (s.state === 'missing') continue;
      g.fillStyle = COLOURS[s.state];
      const x0 = Math.floor(s.from * w);
      g.fillRect(x0, 0, Math.max(1, Math.ceil(s.to * w) - x0), h);
    }
    // 16 ticks: one per first hex digit of the key
    g.fillStyle = 'rgba(255,255,255,0.55)';
    for (let i = 1; i < 16; i++) g.fillRect(Math.round((i / 16) * w), 0, Math.max(1, Math.round(dpr)), h);
  }
}
