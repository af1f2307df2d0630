/**
 * The clock seam of the state sync: time for peer latency, backoff and request deadlines.
 * `systemClock` for real use; `VirtualClock` for deterministic tests, whose time moves only when
 * told to or, with `auto`, when everything else is idle (no pending promise work), jumping to
 * the next timer. No test waits on wall-clock time.
 */

export interface Clock {
  /** Milliseconds. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

const later: (f: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
    ? (f) => (globalThis as unknown as { setImmediate: (f: () => void) => void }).setImmediate(f)
    : (f) => setTimeout(f, 0);

export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];
  readonly #auto: boolean;
  #scheduled = false;

  /** With `auto` (default true), idle time jumps to the next timer. */
  constructor(options: { start?: number; auto?: boolean } = {}) {
    this.#now = options.start ?? 0;
    this.#auto = options.auto ?? true;
  }

  now(): number {
    return this.#now;
  }

  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      if (this.#auto) this.#schedule();
    });
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const to = this.#now + ms;
    while (this.#timers.length && this.#timers[0].at <= to) {
      const t = this.#timers.shift()!;
      this.#now = Math.max(this.#now, t.at);
      t.resolve();
    }
    this.#now = to;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    later(() => {
      this.#scheduled = false;
      const t = this.#timers.shift();
      if (!t) return;
      this.#now = Math.max(this.#now, t.at);
      t.resolve();
      if (this.#timers.length) this.#schedule();
    });
  }
}
