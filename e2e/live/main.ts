/**
 * Test page for live updates: `window.live` starts a light client, subscribes to the
 * whole key space and records every update (delta id, log index, root, commit-to-callback
 * latency) and the `live`, `pending` and `gapFill` events, for e2e/live.test.ts and
 * bench/live.bench.ts. Bytes cross as hex.
 */
import { openDB } from 'idb';
import { createLightClient, type LightClient, type LiveTuning } from '../../src/client/index.ts';
import { toHex } from '../../src/core/bytes.ts';
import type { ApplyTimings } from '../../src/client/live/types.ts';

export interface LiveStart {
  db: string;
  writer: string;
  bootstrap: string[];
  storageName: string;
  /** The store's write-log bound (bench: small, so compactions happen during a run). */
  writeLogBytes?: number;
  live?: LiveTuning;
}

export interface RecordedUpdate {
  deltaId: string | null;
  logIndex: number | null;
  root: string;
  keys: number | null;
  /** Date.now() at the callback minus the writer's HLC wall time at its commit. */
  latencyMs: number | null;
  /** performance.now() at the callback. */
  at: number;
}

export interface LiveRecord {
  synced: { root: string; seq: number }[];
  updates: RecordedUpdate[];
  live: { mode: string; reason?: string; logSize: number; applied: number; catchUps: number; timings?: ApplyTimings; warm?: boolean; unstored?: number; at: number }[];
  pending: { count: number; restored: number; received: number; rejected: number; expired: number; evicted: number; abandoned: number } | undefined;
  gapFills: { phase: string; peer?: string; missing: number; fetched: number; rounds: number; reason?: string }[];
  errors: { name: string; message: string }[];
  /** `peer` events other than connects and disconnects (penalties, bans, failures). */
  peers: { peer: string; status: string; reason?: string }[];
}

let client: LightClient | undefined;
let rec: LiveRecord = fresh();
let lastProgress: unknown;
const peerEvents: string[] = [];

function fresh(): LiveRecord {
  return { synced: [], updates: [], live: [], pending: undefined, gapFills: [], errors: [], peers: [] };
}

const live = {
  start(o: LiveStart): void {
    rec = fresh();
    client = createLightClient({ db: o.db, writer: o.writer, bootstrap: o.bootstrap, allowInsecureLoopback: true, storage: { name: o.storageName, minFreeBytes: 0, writeLogBytes: o.writeLogBytes }, live: o.live });
    client.subscribe({}, (u) => {
      rec.updates.push({
        deltaId: u.deltaId ? toHex(u.deltaId) : null,
        logIndex: u.logIndex ?? null,
        root: toHex(u.root),
        keys: u.keys?.length ?? null,
        latencyMs: u.hlcWallMs !== undefined ? Date.now() - u.hlcWallMs : null,
        at: performance.now(),
      });
    });
    client.on('synced', (s) => rec.synced.push({ root: toHex(s.root), seq: s.seq }));
    client.on('live', (l) => rec.live.push({ mode: l.mode, reason: l.reason, logSize: l.logSize, applied: l.applied, catchUps: l.catchUps, timings: l.timings, warm: l.warm, unstored: l.unstored, at: performance.now() }));
    client.on('pending', (p) => (rec.pending = { count: p.count, restored: p.restored, received: p.received, rejected: p.rejected, expired: p.expired, evicted: p.evicted, abandoned: p.abandoned }));
    client.on('gapFill', (g) => rec.gapFills.push({ phase: g.phase, peer: g.peer, missing: g.missing, fetched: g.fetched, rounds: g.rounds, reason: g.reason }));
    client.on('error', ({ error }) => rec.errors.push({ name: error.name, message: error.message }));
    // for the message of a sync that does not finish (what the engine last said, and its peers)
    client.on('progress', (p) => (lastProgress = p));
    client.on('peer', (p) => {
      peerEvents.push(`${p.peer.slice(-6)} ${p.status}${p.reason ? `: ${p.reason}` : ''}`);
      if (p.status !== 'connected' && p.status !== 'disconnected') rec.peers.push({ peer: p.peer, status: p.status, reason: p.reason });
    });
  },
  recorded: (): LiveRecord => rec,
  /** Only the newest `n` updates (large runs stay cheap to poll). */
  tail(n: number): LiveRecord {
    return { ...rec, updates: n > 0 ? rec.updates.slice(-n) : [], live: rec.live.slice(-Math.max(n, 1)) };
  },
  async synced(timeoutMs: number): Promise<{ root: string; seq: number }> {
    try {
      const s = await client!.synced({ signal: AbortSignal.timeout(timeoutMs) });
      return { root: toHex(s.root), seq: s.seq };
    } catch (err) {
      const state = { progress: lastProgress, peers: peerEvents.slice(-20), errors: rec.errors.slice(-10), live: rec.live.slice(-5) };
      throw new Error(`${(err as Error).name}: ${(err as Error).message}; ${JSON.stringify(state, (_k, v) => (v instanceof Uint8Array ? toHex(v) : typeof v === 'bigint' ? String(v) : v))}`);
    }
  },
  /** The newest progress event (a failure message shows where a sync stands). */
  progress: () => JSON.parse(JSON.stringify(lastProgress ?? null, (_k, v) => (v instanceof Uint8Array ? toHex(v) : typeof v === 'bigint' ? String(v) : v))),
  dropGossip: (n: number) => client!.dropGossipForTesting(n),
  async status() {
    const s = await client!.status();
    return { live: s.live ? { mode: s.live.mode, pending: s.live.pending, logSize: s.live.logSize, root: s.live.root ? toHex(s.live.root) : null } : null };
  },
  /** The ids in the IndexedDB pending store (read directly, as another reader of the origin would). */
  async storedPending(storageName: string): Promise<string[]> {
    const db = await openDB(storageName);
    try {
      return (await db.getAllKeys('pending')).map((k) => toHex(new Uint8Array(k as ArrayBuffer)));
    } finally {
      db.close();
    }
  },
  pause: () => client!.pause(),
  /** Resumes; returns performance.now() just before the call. */
  async resume(): Promise<number> {
    const t = performance.now();
    await client!.resume();
    return t;
  },
  /** Ed25519 verifications per second with WebCrypto, one awaited at a time (as the worker checks gossip). */
  async verifyRate(n: number): Promise<number> {
    const key = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const msg = new Uint8Array(49).fill(7);
    const sig = await crypto.subtle.sign({ name: 'Ed25519' }, key.privateKey, msg);
    const t = performance.now();
    for (let i = 0; i < n; i++) if (!(await crypto.subtle.verify({ name: 'Ed25519' }, key.publicKey, sig, msg))) throw new Error('verify failed');
    return n / ((performance.now() - t) / 1000);
  },
  close: () => client?.close(),
};

export type Live = typeof live;
(window as unknown as { live: Live }).live = live;
document.getElementById('out')!.textContent = 'ready';
(window as unknown as { __ready: boolean }).__ready = true;
