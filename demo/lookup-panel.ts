/**
 * The lookup box: a hex key → its value, and what it was verified against. "Look up" asks the
 * local replica for a single-key proof (`prove`), which the worker verified and this page checks
 * again (`verifyKeyProof`), and shows the proof's size. "Verify remotely" asks a full node
 * (`getVerified`): its proof is checked against the newest signed root, so it answers before
 * the local sync has finished.
 */
import { formatBytes, formatMs, parseHexInput, shortHex } from './format.ts';
import { rangeProofSize, toHex, verifyKeyProof, type LightClient } from './sdk.ts';

export interface LookupElements {
  form: HTMLFormElement;
  input: HTMLInputElement;
  remote: HTMLButtonElement;
  samples: HTMLElement;
  result: HTMLElement;
}

export class LookupPanel {
  readonly #e: LookupElements;
  readonly #client: () => LightClient | undefined;
  readonly #names: (peer: string) => string;
  #busy = 0;
  /** Once the client has synced: resolves at its next verified root (or after `ms`). */
  #nextSynced: ((ms: number) => Promise<void>) | undefined;

  constructor(e: LookupElements, client: () => LightClient | undefined, names: (peer: string) => string, samples: string[]) {
    this.#e = e;
    this.#client = client;
    this.#names = names;
    e.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.#run('local');
    });
    e.remote.addEventListener('click', () => void this.#run('remote'));
    for (const k of samples) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sample mono';
      b.textContent = shortHex(k, 6, 4);
      b.title = k;
      b.addEventListener('click', () => {
        e.input.value = k;
        void this.#run('local');
      });
      e.samples.append(b);
    }
  }

  /** Called once the client stands at a signed root (and again after a clear, with undefined). */
  setNextSynced(f: ((ms: number) => Promise<void>) | undefined): void {
    this.#nextSynced = f;
  }

  #show(kind: 'ok' | 'absent' | 'error' | 'busy', lines: { cls: string; text: string; title?: string }[]): void {
    const r = this.#e.result;
    r.dataset.kind = kind;
    r.replaceChildren(
      ...lines.map((l) => {
        const p = document.createElement('p');
        p.className = l.cls;
        p.textContent = l.text;
        if (l.title) p.title = l.title;
        return p;
      }),
    );
  }

  async #run(where: 'local' | 'remote'): Promise<void> {
    const client = this.#client();
    let key: Uint8Array;
    try {
      key = parseHexInput(this.#e.input.value);
    } catch (err) {
      this.#show('error', [{ cls: 'status', text: (err as Error).message }]);
      return;
    }
    if (!client) return this.#show('error', [{ cls: 'status', text: 'the client is not running' }]);
    const ticket = ++this.#busy;
    this.#show('busy', [{ cls: 'status', text: where === 'local' ? 'proving from the local replica…' : 'asking a full node for a proof…' }]);
    const t0 = performance.now();
    try {
      if (where === 'local') {
        let p = await client.prove(key, { signal: AbortSignal.timeout(15_000) });
        // following live writes, the local trie is between two signed roots for a moment after
        // each one: once synced, prove again at the next verified root
        for (let i = 0; i < 3 && p.seq === undefined && this.#nextSynced; i++) {
          await this.#nextSynced(2_000);
          p = await client.prove(key, { signal: AbortSignal.timeout(15_000) });
        }
        const ms = performance.now() - t0;
        let checked = true;
        try {
          verifyKeyProof(p.root, key, p.value, p.proof);
        } catch {
          checked = false;
        }
        const size = rangeProofSize({ startProof: p.proof, endProof: [], keyValues: [] });
        const root = toHex(p.root);
        if (ticket !== this.#busy) return;
        const against =
          p.seq !== undefined ? `✓ verified against signed root ${shortHex(root)} (seq #${p.seq})` : `✓ verified against the local root ${shortHex(root)}: sync in progress, not a signed root yet`;
        this.#show(p.value ? 'ok' : 'absent', [
          { cls: 'status', text: against, title: root },
          { cls: 'value mono', text: p.value ? toHex(p.value) : p.seq !== undefined ? '(absent: proven not in the database)' : '(not in the local replica yet: try Verify remotely)' },
          { cls: 'detail', text: `proof: ${p.proof.length} nodes, ${formatBytes(size)} · local replica · ${formatMs(ms)} · ${checked ? 'checked again on this page ✓' : 'FAILED the check on this page'}` },
        ]);
      } else {
        const r = await client.getVerified(key, { signal: AbortSignal.timeout(15_000) });
        const ms = performance.now() - t0;
        const root = toHex(r.root);
        if (ticket !== this.#busy) return;
        this.#show(r.value ? 'ok' : 'absent', [
          { cls: 'status', text: `✓ verified against signed root ${shortHex(root)} (seq #${r.seq})`, title: root },
          { cls: 'value mono', text: r.value ? toHex(r.value) : '(absent: proven not in the database)' },
          { cls: 'detail', text: `proven by the ${this.#names(r.peer)} node · ${formatMs(ms)} · single-key proof checked in the worker` },
        ]);
      }
    } catch (err) {
      if (ticket !== this.#busy) return;
      const e = err as Error;
      this.#show('error', [
        { cls: 'status', text: `✗ ${e.name}` },
        { cls: 'value', text: e.message },
      ]);
    }
  }
}
