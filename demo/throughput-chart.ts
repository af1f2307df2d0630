/**
 * Throughput over time: key-values verified per second over the last minute, as bars on a
 * canvas (one per second), with the peak written in the corner. Fed with the progress
 * counters, which are per session (a new client starts again from 0).
 */
import { fitCanvas } from './format.ts';

const SECONDS = 60;

export class ThroughputChart {
  readonly #canvas: HTMLCanvasElement;
  readonly #rates: number[] = [];
  #last: number | undefined;
  #current = 0;

  constructor(canvas: HTMLCanvasElement) {
    this.#canvas = canvas;
    new ResizeObserver(() => this.#draw()).observe(canvas);
  }

  /** The latest cumulative key-value count (call as often as progress arrives). */
  update(keyValues: number): void {
    this.#current = keyValues;
  }

  /** Closes one second: its rate becomes a bar. */
  tick(): number {
    const rate = this.#last === undefined || this.#current < this.#last ? 0 : this.#current - this.#last;
    this.#last = this.#current;
    this.#rates.push(rate);
    if (this.#rates.length > SECONDS) this.#rates.shift();
    this.#draw();
    return rate;
  }

  /** A new session: counters restart at 0. */
  restart(): void {
    this.#last = undefined;
    this.#current = 0;
  }

  get peak(): number {
    return Math.max(0, ...this.#rates);
  }

  #draw(): void {
    const fit = fitCanvas(this.#canvas);
    if (!fit) return;
    const { g, w, h, dpr } = fit;
    g.clearRect(0, 0, w, h);
    g.fillStyle = '#f1f5f9';
    g.fillRect(0, 0, w, h);
    const peak = this.peak;
    const bar = w / SECONDS;
    const top = 14 * dpr;
    g.fillStyle = '#4f46e5';
    this.#rates.forEach((r, i) => {
      if (!peak || !r) return;
      const bh = Math.max(1, (r / peak) * (h - top));
      const x = (SECONDS - this.#rates.length + i) * bar;
      g.fillRect(Math.floor(x) + 1, h - bh, Math.max(1, Math.ceil(bar) - 2), bh);
    });
    g.fillStyle = '#475569';
    g.font = `${11 * dpr}px ui-sans-serif, system-ui, sans-serif`;
    g.textBaseline = 'top';
    g.textAlign = 'left';
    g.fillText(peak ? `peak ${new Intl.NumberFormat('en').format(peak)}/s` : 'waiting for proofs', 4 * dpr, 2 * dpr);
    g.textAlign = 'right';
    g.fillText('60 s', w - 4 * dpr, 2 * dpr);
  }
}
