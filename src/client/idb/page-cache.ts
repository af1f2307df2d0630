/**
 * A least-recently-used cache of decoded pages, bounded by their encoded bytes. Keyed by the
 * page's slot object (page-index.ts): a slot is replaced, never mutated, when its page changes,
 * so a stale entry can never be returned for a new page.
 */
import type { Page } from './page.ts';

export class PageCache<K> {
  private readonly map = new Map<K, Page>();
  private held = 0;

  readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
    if (!(maxBytes >= 0)) throw new RangeError(`expected cache size >= 0 bytes, got ${maxBytes}`);
  }

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.map.size;
  }

  /** The page, marked most recently used. */
  get(key: K): Page | undefined {
    const page = this.map.get(key);
    if (page) {
      this.map.delete(key);
      this.map.set(key, page);
    }
    return page;
  }

  /** The page without touching its recency. */
  peek(key: K): Page | undefined {
    return this.map.get(key);
  }

  set(key: K, page: Page): void {
    this.delete(key);
    this.map.set(key, page);
    this.held += page.byteLength;
    // evict oldest first; the newest entry stays even if it alone is over budget
    for (const [k, p] of this.map) {
      if (this.held <= this.maxBytes || k === key) break;
      this.map.delete(k);
      this.held -= p.byteLength;
    }
  }

  delete(key: K): void {
    const page = this.map.get(key);
    if (page) {
      this.map.delete(key);
      this.held -= page.byteLength;
    }
  }

  clear(): void {
    this.map.clear();
    this.held = 0;
  }
}
