/**
 * Test page for the light client: exposes `window.lc`, a thin driver the e2e tests call with
 * `page.evaluate` (bytes as hex, so everything crosses as JSON). It records the client's events
 * and the main thread's long tasks (PerformanceObserver 'longtask'), which decide where
 * connections live (docs/design.md "Threads").
 */
import { createLightClient, preloadLightClient, type LightClient, type LightClientOptions, type ProgressEvent } from '../../src/client/index.ts';
import { fromHex, toHex } from '../../src/core/bytes.ts';
import { verifyKeyProof } from '../../src/core/proof.ts';
import type { BaselineRequest, BaselineResult } from './baseline-worker.ts';
import { BOOTED_MESSAGE } from './boot-signal.ts';

// as an app would, first thing: the worker boots while the page waits for its first `start`
// (`?preload=0`: the worker starts with the client, for the benchmark's comparison)
if (new URLSearchParams(location.search).get('preload') !== '0') preloadLightClient();

export interface StartOptions {
  db: string;
  writer: string;
  bootstrap: string[];
  storageName?: string;
  ranges?: { start?: string; end?: string }[];
  websocketsIn?: 'worker' | 'main';
  transports?: LightClientOptions['transports'];
  keyLimit?: number;
  concurrency?: number;
  requestTimeoutMs?: number;
  /** `sync.banAfter`: invalid answers before a peer is banned. */
  banAfter?: number;
  autoStart?: boolean;
  minFreeBytes?: number;
  discovery?: LightClientOptions['discovery'];
  /** Static proof mirrors (base URLs). */
  snapshots?: string[];
  /** A worker that never answers (stalled-worker.ts): what the page answers alone. */
  stallWorker?: boolean;
}

export interface Recorded {
  progress: number;
  last: (Omit<ProgressEvent, 'target'> & { target?: string }) | undefined;
  synced: { root: string; seq: number; localRoot: string }[];
  errors: { name: string; message: string; fatal: boolean }[];
  peers: { peer: string; status: string; transport?: string; via?: string; reason?: string }[];
  roles: string[];
  longTasks: { count: number; over50: number; totalMs: number; maxMs: number };
  startedAt: number;
}

let client: LightClient | undefined;
const rec: Recorded = {
  progress: 0,
  last: undefined,
  synced: [],
  errors: [],
  peers: [],
  roles: [],
  longTasks: { count: 0, over50: 0, totalMs: 0, maxMs: 0 },
  startedAt: 0,
};

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    rec.longTasks.count++;
    if (e.duration > 50) rec.longTasks.over50++;
    rec.longTasks.totalMs += e.duration;
    rec.longTasks.maxMs = Math.max(rec.longTasks.maxMs, e.duration);
  }
}).observe({ type: 'longtask', buffered: true });

const fractionWaiters = new Set<{ fraction: number; resolve: (f: number) => void }>();

const hex = (b: Uint8Array | undefined): string | null => (b ? toHex(b) : null);

const lc = {
  start(o: StartOptions): void {
    rec.startedAt = performance.now();
    client = createLightClient({
      db: o.db,
      writer: o.writer,
      bootstrap: o.bootstrap,
      allowInsecureLoopback: true,
      storage: { name: o.storageName, minFreeBytes: o.minFreeBytes },
      ranges: o.ranges?.map((r) => ({ start: r.start ? fromHex(r.start) : undefined, end: r.end ? fromHex(r.end) : undefined })),
      websocketsIn: o.websocketsIn,
      transports: o.transports,
      autoStart: o.autoStart,
      snapshots: o.snapshots,
      sync: { keyLimit: o.keyLimit, concurrency: o.concurrency, requestTimeoutMs: o.requestTimeoutMs, banAfter: o.banAfter },
      discovery: o.discovery,
      worker: o.stallWorker ? new Worker(new URL('./stalled-worker.ts', import.meta.url), { type: 'module' }) : undefined,
    });
    client.on('progress', (p) => {
      rec.progress++;
      rec.last = { ...p, target: p.target ? toHex(p.target) : undefined };
      for (const w of fractionWaiters) if (p.fraction >= w.fraction) w.resolve(p.fraction);
    });
    client.on('synced', (s) => rec.synced.push({ root: toHex(s.root), seq: s.seq, localRoot: toHex(s.localRoot) }));
    client.on('error', ({ error, fatal }) => rec.errors.push({ name: error.name, message: error.message, fatal }));
    client.on('peer', (p) => rec.peers.push(p));
    client.on('role', (r) => rec.roles.push(r.role));
  },
  recorded: (): Recorded => rec,
  /** Resolves at the first progress event with at least `fraction` of the key space done (an event, not a poll). */
  fractionDone(fraction: number, timeoutMs: number): Promise<number> {
    if ((rec.last?.fraction ?? 0) >= fraction) return Promise.resolve(rec.last!.fraction);
    return new Promise((resolve, reject) => {
      const w = { fraction, resolve: (f: number) => (clearTimeout(timer), fractionWaiters.delete(w), resolve(f)) };
      const timer = setTimeout(() => (fractionWaiters.delete(w), reject(new Error(`no progress to ${fraction} within ${timeoutMs} ms`))), timeoutMs);
      fractionWaiters.add(w);
    });
  },
  resetLongTasks(): void {
    rec.longTasks = { count: 0, over50: 0, totalMs: 0, maxMs: 0 };
  },
  async synced(timeoutMs: number): Promise<{ root: string; seq: number; localRoot: string; ms: number }> {
    const s = await client!.synced({ signal: AbortSignal.timeout(timeoutMs) });
    return { root: toHex(s.root), seq: s.seq, localRoot: toHex(s.localRoot), ms: performance.now() - rec.startedAt };
  },
  async get(key: string, consistency?: 'synced' | 'local'): Promise<string | null> {
    return hex(await client!.get(fromHex(key), { consistency, signal: AbortSignal.timeout(60_000) }));
  },
  /** Values of many keys, in order (one round trip each, as an app would). */
  async getMany(keys: string[]): Promise<(string | null)[]> {
    const out: (string | null)[] = [];
    for (const k of keys) out.push(hex(await client!.get(fromHex(k), { signal: AbortSignal.timeout(60_000) })));
    return out;
  },
  async getError(key: string): Promise<string> {
    try {
      await client!.get(fromHex(key), { consistency: 'local' });
      return 'no error';
    } catch (err) {
      return (err as Error).name;
    }
  },
  async entries(consistency?: 'synced' | 'local', start?: string, end?: string): Promise<{ key: string; value: string }[]> {
    const out: { key: string; value: string }[] = [];
    const range = { start: start ? fromHex(start) : undefined, end: end ? fromHex(end) : undefined };
    for await (const kv of client!.entries(range, { consistency })) {
      out.push({ key: toHex(kv.key), value: toHex(kv.value) });
    }
    return out;
  },
  /** prove(key), then check the proof again on this thread as a user would. */
  async prove(key: string): Promise<{ value: string | null; root: string; seq: number | undefined; nodes: number; checked: boolean }> {
    const k = fromHex(key);
    const p = await client!.prove(k);
    let checked = true;
    try {
      verifyKeyProof(p.root, k, p.value, p.proof);
    } catch {
      checked = false;
    }
    return { value: hex(p.value), root: toHex(p.root), seq: p.seq, nodes: p.proof.length, checked };
  },
  async getVerified(key: string): Promise<{ value: string | null; root: string; seq: number; peer: string; ms: number }> {
    const r = await client!.getVerified(fromHex(key), { signal: AbortSignal.timeout(20_000) });
    return { value: hex(r.value), root: toHex(r.root), seq: r.seq, peer: r.peer, ms: performance.now() - rec.startedAt };
  },
  /** The name of the error getVerified(key) fails with ('no error' if it answers). */
  async getVerifiedError(key: string): Promise<string> {
    try {
      await client!.getVerified(fromHex(key), { signal: AbortSignal.timeout(20_000) });
      return 'no error';
    } catch (err) {
      return (err as Error).name;
    }
  },
  /** getVerified for every key (4 at a time); returns the keys whose proven value differs. */
  async verifyAll(entries: { key: string; value: string | null }[]): Promise<string[]> {
    const wrong: string[] = [];
    for (let i = 0; i < entries.length; i += 4) {
      await Promise.all(
        entries.slice(i, i + 4).map(async (e) => {
          const r = await client!.getVerified(fromHex(e.key), { signal: AbortSignal.timeout(20_000) });
          if (hex(r.value) !== e.value) wrong.push(e.key);
        }),
      );
    }
    return wrong;
  },
  async status() {
    const s = await client!.status();
    return { role: s.role, paused: s.paused, seq: s.seq, synced: s.synced ? toHex(s.synced.root) : null, peers: s.peers, heapUsed: s.heapUsed };
  },
  /** The benchmark's raw baseline (baseline-worker.ts) in its own worker. */
  baseline(req: BaselineRequest): Promise<BaselineResult> {
    const w = new Worker(new URL('./baseline-worker.ts', import.meta.url), { type: 'module' });
    return new Promise<BaselineResult>((resolve, reject) => {
      w.onmessage = (m: MessageEvent<BaselineResult>) => {
        w.terminate();
        resolve(m.data);
      };
      w.onerror = (e) => reject(new Error(`baseline worker failed: ${e.message}`));
      w.postMessage(req);
    });
  },
  pause: () => client!.pause(),
  resume: () => client!.resume(),
  clear: () => client!.clear(),
  close: () => client?.close(),
};

/** The driver's type, for the tests' `page.evaluate` callbacks. */
export type Lc = typeof lc;
(window as unknown as { lc: Lc }).lc = lc;

/**
 * `?boot=<JSON of Boot>`: the page itself starts the client and reads one key as it loads, as an
 * app does, with no test driver between navigation and `createLightClient` (its round trips
 * took 150-450 ms of the benchmark's "from navigation" figures on a loaded machine). The
 * outcome lands in `window.__boot`.
 */
export interface Boot {
  o: StartOptions;
  /** The key to read; with `read: 'head'`, the state root (hex) to wait for. */
  key: string;
  /** `head`: no read; the answer comes once the client is synced at root `key` (its value: that root). */
  read: 'local' | 'verified' | 'head';
}
export interface BootResult {
  /** ms from navigation start to the answer. */
  ms: number;
  value: string | null;
  error?: string;
}
const boot = new URLSearchParams(location.search).get('boot');
if (boot) {
  const b = JSON.parse(boot) as Boot;
  lc.start(b.o);
  const atRoot = async (root: string): Promise<string> => {
    for (;;) {
      const s = await lc.synced(120_000);
      if (s.root === root) return s.root;
      await new Promise((resolve) => setTimeout(resolve, 5)); // the next synced event
    }
  };
  const read = b.read === 'verified' ? lc.getVerified(b.key).then((r) => r.value) : b.read === 'head' ? atRoot(b.key) : lc.get(b.key, 'local');
  const done = (r: BootResult): void => {
    (window as unknown as { __boot: BootResult }).__boot = r;
    // the driver waits for this message, not by polling the page: polling makes Playwright load its
    // injected script into the page (a 30 ms parse on the main thread, bench/startup-trace.ts) while
    // the client is starting
    console.debug(BOOTED_MESSAGE);
  };
  void read.then(
    (value) => done({ ms: performance.now(), value }),
    (err: unknown) => done({ ms: performance.now(), value: null, error: String(err) }),
  );
}
document.getElementById('out')!.textContent = 'ready';
(window as unknown as { __ready: boolean }).__ready = true;
