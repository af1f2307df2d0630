/**
 * An async readers-writer lock. Proof generation reads the store across many awaits and must
 * not see a commit half-applied to its in-memory view of the root and history; commits wait for
 * readers in flight, and new readers queue behind a waiting writer (no writer starvation).
 */
export class RwLock {
  private readers = 0;
  private writing = false;
  private queue: { write: boolean; wake: () => void }[] = [];

  async read<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writing || this.queue.length) await new Promise<void>((wake) => this.queue.push({ write: false, wake }));
    else this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async write<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writing || this.readers || this.queue.length) await new Promise<void>((wake) => this.queue.push({ write: true, wake }));
    else this.writing = true;
    try {
      return await fn();
    } finally {
      this.writing = false;
      this.pump();
    }
  }

  /** Admits queued waiters: one writer, or every reader up to the next writer. */
  private pump(): void {
    if (this.writing || this.queue.length === 0) return;
    if (this.queue[0].write) {
      if (this.readers) return;
      this.writing = true;
      this.queue.shift()!.wake();
      return;
    }
    while (this.queue.length && !this.queue[0].write) {
      this.readers++;
      this.queue.shift()!.wake();
    }
  }
}
