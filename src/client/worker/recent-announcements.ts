/**
 * The engine host's memory of recent signed announcements, by state root: the `seq` the page
 * hears with a root, and the heads and log size that place a synced state in the delta DAG
 * (live/host.ts). Bounded: a writer announcing every second must not grow a tab's memory.
 */
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { toHex } from '../../core/bytes.ts';

/** Roots remembered; older ones are forgotten first. */
export const KNOWN_ROOTS = 64;

export class RecentAnnouncements {
  readonly #byRoot = new Map<string, VerifiedAnnouncement>();
  readonly #limit: number;

  constructor(limit = KNOWN_ROOTS) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#byRoot.size;
  }

  /** Remembers `ann` under its state root, forgetting the oldest root past the bound. */
  remember(ann: VerifiedAnnouncement): void {
    this.#byRoot.set(toHex(ann.stateRoot), ann);
    if (this.#byRoot.size > this.#limit) this.#byRoot.delete(this.#byRoot.keys().next().value!);
  }

  get(root: Uint8Array): VerifiedAnnouncement | undefined {
    return this.#byRoot.get(toHex(root));
  }

  seqOf(root: Uint8Array): number | undefined {
    return this.#byRoot.get(toHex(root))?.seq;
  }
}
