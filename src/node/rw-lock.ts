/**
 * A readers-writer lock for the node's database: proofs read the trie and its history while a
 * commit replaces them, and a proof built across a commit could mix two states (a LevelDB read
 * is not a snapshot of the in-memory history). Readers share; a writer waits for the readers in
 * flight and holds new ones back until it is done (writer preference, so steady reads cannot
 * starve commits).
 */
export class RwLock {
  private readers = 0;
  private writing = false;
  private readonly waitingWriters: (() => void)[] = [];
  private waitingReaders: (() => void)[] = [];

  /** Runs `fn` with shared access. */
  async read<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writing || this.waitingWriters.length > 0) await new Promise<void>((resolve) => this.waitingReaders.push(resolve));
    else this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      this.wake();
    }
  }

  /** Runs `fn` with exclusive access. */
  async write<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writing || this.readers > 0) await new Promise<void>((resolve) => this.waitingWriters.push(resolve));
    else this.writing = true;
    try {
      return await fn();
    } finally {
      this.writing = false;
      this.wake();
    }
  }

  private wake(): void {
    if (this.writing || this.readers > 0) return;
    const writer = this.waitingWriters.shift();
    if (writer) {
      this.writing = true;
      writer();
      return;
    }
    const readers = this.waitingReaders;
    this.waitingReaders = [];
    this.readers += readers.length;
    for (const r of readers) r();
  }
}
