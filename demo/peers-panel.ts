/**
 * The connection panel: one row per full node: its role, connection status (a coloured dot),
 * transport and where the connection lives (worker or page), what it has served (a bar of its
 * share of the proofs, from the node's own metrics), how long it takes to answer, the proofs
 * the client rejected from it, and why it was banned. Rows are built once and updated in place.
 */
import type { DemoNodeInfo, DemoNodeStats } from './config.ts';
import { formatBytes, formatCount, formatMs, shortPeer } from './format.ts';
import type { PeerEvent } from './sdk.ts';

type Status = PeerEvent['status'] | 'dialing' | 'not dialed';

interface Row {
  el: HTMLLIElement;
  status: Status;
  penalties: number;
  reason: string;
  stats: DemoNodeStats | undefined;
  transport: string;
}

const STATUS_TEXT: Record<Status, string> = {
  connected: 'connected',
  disconnected: 'disconnected',
  failed: 'dial failed',
  penalised: 'penalised',
  banned: 'banned',
  dialing: 'dialing…',
  'not dialed': 'not dialed',
};

const TRANSPORT_TEXT: Record<string, string> = { websockets: 'WebSockets', 'webrtc-direct': 'WebRTC-Direct' };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  e.textContent = text;
  return e;
}

export class PeersPanel {
  readonly #list: HTMLUListElement;
  readonly #rows = new Map<string, Row>();
  readonly #names = new Map<string, string>();

  constructor(list: HTMLUListElement, nodes: DemoNodeInfo[]) {
    this.#list = list;
    for (const n of nodes) {
      this.#names.set(n.peerId, n.name);
      this.#row(n.peerId).status = n.serving ? 'dialing' : 'not dialed';
      if (!n.serving) this.#row(n.peerId).reason = 'not following the writer yet: the page does not dial it';
    }
    this.#renderAll();
  }

  /** A new client (transport change, reload): connections start again; bans are per client. */
  reset(transport: string): void {
    for (const r of this.#rows.values()) {
      if (r.status === 'not dialed') continue;
      r.status = 'dialing';
      r.penalties = 0;
      r.reason = '';
      r.transport = transport;
    }
    this.#renderAll();
  }

  /** A new sync (after a clear): its peer book starts without strikes or bans. */
  newSync(): void {
    for (const r of this.#rows.values()) {
      if (r.status === 'banned' || r.status === 'penalised') r.status = 'connected';
      r.penalties = 0;
      if (r.status !== 'not dialed') r.reason = '';
    }
    this.#renderAll();
  }

  onPeer(e: PeerEvent): void {
    const r = this.#row(e.peer);
    if (e.transport) r.transport = e.via ? `${e.transport} · in ${e.via === 'worker' ? 'worker' : 'page'}` : e.transport;
    if (e.status === 'penalised' || e.status === 'banned') {
      r.penalties++;
      r.reason = e.reason ?? '';
    } else if (e.status === 'failed') r.reason = e.reason ?? '';
    // a banned peer stays banned for this client, whatever its connection does
    if (r.status !== 'banned') r.status = e.status === 'penalised' && r.status === 'connected' ? 'penalised' : e.status;
    if (e.status === 'banned') r.status = 'banned';
    this.#render(e.peer);
  }

  onStats(stats: DemoNodeStats[]): void {
    for (const s of stats) this.#row(s.peerId).stats = s;
    this.#renderAll();
  }

  /** Peers the page currently sees as banned, for tests and the summary line. */
  banned(): string[] {
    return [...this.#rows].filter(([, r]) => r.status === 'banned').map(([id]) => id);
  }

  #row(peer: string): Row {
    let r = this.#rows.get(peer);
    if (!r) {
      const li = el('li', 'peer');
      li.dataset.peer = peer;
      li.dataset.name = this.#names.get(peer) ?? 'peer';
      li.append(
        el('span', 'dot'),
        el('div', 'who'),
        el('span', 'status'),
        el('span', 'transport'),
        el('div', 'share'),
        el('span', 'served'),
        el('span', 'rejected'),
        el('p', 'reason'),
      );
      const who = li.querySelector('.who')!;
      who.append(el('b', '', this.#names.get(peer) ?? 'peer'), el('span', 'mono id', shortPeer(peer)));
      (who as HTMLElement).title = peer;
      li.querySelector('.share')!.append(el('div', 'fill'));
      this.#list.append(li);
      r = { el: li, status: 'dialing', penalties: 0, reason: '', stats: undefined, transport: '' };
      this.#rows.set(peer, r);
    }
    return r;
  }

  #renderAll(): void {
    for (const id of this.#rows.keys()) this.#render(id);
  }

  #render(peer: string): void {
    const r = this.#rows.get(peer)!;
    const li = r.el;
    li.dataset.status = r.status;
    li.querySelector('.status')!.textContent = STATUS_TEXT[r.status];
    const [t, ...rest] = r.transport.split(' · ');
    li.querySelector('.transport')!.textContent = r.transport ? [TRANSPORT_TEXT[t] ?? t, ...rest].join(' · ') : '—';
    const total = [...this.#rows.values()].reduce((a, x) => a + (x.stats?.proofsServed ?? 0), 0);
    const s = r.stats;
    const share = total && s ? s.proofsServed / total : 0;
    (li.querySelector('.share .fill') as HTMLElement).style.width = `${(share * 100).toFixed(1)}%`;
    li.querySelector('.served')!.textContent = s
      ? `${formatCount(s.proofsServed)} proofs · ${formatBytes(s.bytesServed)}${s.meanServeMs != null ? ` · answers in ${formatMs(s.meanServeMs)}` : ''}`
      : 'served: —';
    const rej = li.querySelector('.rejected') as HTMLElement;
    rej.textContent = `${r.penalties} rejected`;
    rej.dataset.count = String(r.penalties);
    const reason = li.querySelector('.reason') as HTMLElement;
    const why = r.status === 'banned' ? `banned: ${r.reason}` : r.reason ? (r.status === 'failed' ? r.reason : `last rejection: ${r.reason}`) : s?.misbehaving ? 'told to send tampered proofs…' : '';
    reason.textContent = why || ' ';
    reason.title = why;
  }
}
