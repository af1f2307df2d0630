/**
 * The journal of the live follower: verified groups of deltas applied to one long-lived trie
 * view whose records reach the store only at a checkpoint (apply-loop.ts). With deltas queued
 * up, the next group builds on it; meanwhile the deltas themselves, kept in the pending store,
 * are what makes them durable (a reload applies them again on the stored state). Why: a
 * checkpoint writes the upper trie levels, which every delta changes, once for thousands of
 * deltas instead of once per group (measured on 1M keys in Chromium, see README).
 *
 * It also answers reads of the journaled state: the view itself cannot, since between two turns
 * of a group it holds changes not yet checked against their `stateRoot`.
 */
import { toHex } from '../../core/bytes.ts';
import type { VerifiedDelta } from '../../core/delta.ts';
import type { TrieView } from '../../core/trie.ts';
import type { KeyChange } from '../../core/types.ts';

/** What a checkpoint writes: the view, and the deltas whose trie changes it holds. */
export interface JournalContents {
  view: TrieView;
  deltas: VerifiedDelta[];
}

export class Journal {
  #view: TrieView | undefined;
  /** The local root of the view's verified state. */
  #root: Uint8Array | undefined;
  #deltas: VerifiedDelta[] = [];
  /** Each group's in-scope changes, in order (to rebuild the view, and for `read`). */
  #changes: KeyChange[][] = [];
  /** The verified changes by key (hex): the first `#indexed` entries of `#changes`. */
  readonly #values = new Map<string, Uint8Array | null>();
  #indexed = 0;

  /** The view, while the journal is open (it holds at least one group). */
  get view(): TrieView | undefined {
    return this.#view;
  }

  /** The local root the journaled state stands at, while open. */
  get root(): Uint8Array | undefined {
    return this.#root;
  }

  /** Journaled deltas (`LiveStateEvent.unstored` while a checkpoint is not durable). */
  get size(): number {
    return this.#deltas.length;
  }

  /** The journaled changes, one entry per delta, in the order applied. */
  get changes(): readonly KeyChange[][] {
    return this.#changes;
  }

  /** Records verified deltas applied on `view` (`changes`: each one's in-scope actions); the view becomes the journal's. */
  add(view: TrieView, deltas: readonly VerifiedDelta[], changes: readonly KeyChange[][]): void {
    if (deltas.length !== changes.length) throw new RangeError(`expected one change list per delta, got ${changes.length} for ${deltas.length}`);
    this.#view = view;
    this.#root = view.root;
    this.#deltas.push(...deltas);
    this.#changes.push(...changes);
  }

  /** After a mismatch: `view` holds the same verified state rebuilt without the offender. */
  replaceView(view: TrieView): void {
    if (this.#view) this.#view = view;
  }

  /**
   * A key's value in the journaled state: the value, `null` for a deleted key, `undefined` when
   * no journaled delta touched it (read the stored state).
   */
  read(key: Uint8Array): Uint8Array | null | undefined {
    // indexed on demand: reads are rare next to the puts a burst applies
    for (; this.#indexed < this.#changes.length; this.#indexed++) {
      for (const c of this.#changes[this.#indexed]) this.#values.set(toHex(c.key), c.value ?? null);
    }
    return this.#values.get(toHex(key));
  }

  /** Closes the journal and hands over what a checkpoint writes; undefined when it was not open. */
  take(): JournalContents | undefined {
    const view = this.#view;
    const deltas = this.#deltas;
    this.clear();
    return view ? { view, deltas } : undefined;
  }

  /** Forgets everything (a failed write, a reset). */
  clear(): void {
    this.#view = undefined;
    this.#root = undefined;
    this.#deltas = [];
    this.#changes = [];
    this.#values.clear();
    this.#indexed = 0;
  }
}
