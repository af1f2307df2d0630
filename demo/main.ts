/**
 * The demo page: a light client syncing a verified replica of the demo database in
 * this tab, drawn as it happens. It learns the database, the writer's key and the bootstrap
 * addresses from the demo server (/demo-config.json), and uses the SDK's public API only.
 *
 * Query parameters: `transport=webrtc-direct` (default websockets); `keyLimit` and
 * `concurrency` slow a sync down to watch it (or for the end-to-end test's mid-sync picture);
 * `snapshots=0` syncs from the nodes alone (the static mirror would answer a fresh sync's range
 * requests, so a lying replica would never be asked); `banAfter` sets the invalid answers a peer
 * may send before it is banned (default 3).
 * Rendering is coalesced to one update per animation frame, however often progress arrives.
 */
import type { DemoConfig, DemoNodeStats, DemoWriteResult, Transport } from './config.ts';
import { formatBytes, formatCount, formatMs, shortPeer } from './format.ts';
import { KeySpaceMap, pictureFromFractions, pictureFromSegments, type MapSegment } from './keyspace-map.ts';
import { LivePanel } from './live-panel.ts';
import { LookupPanel } from './lookup-panel.ts';
import { PeersPanel } from './peers-panel.ts';
import { createLightClient, fromHex, toHex, type LightClient, type ProgressEvent } from './sdk.ts';
import { ThroughputChart } from './throughput-chart.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
};

// ---- main-thread long tasks (the goal: none over 50 ms during a sync) -------------------------
const longTasks = { count: 0, over50: 0, maxMs: 0 };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      longTasks.count++;
      if (e.duration > 50) longTasks.over50++;
      longTasks.maxMs = Math.max(longTasks.maxMs, e.duration);
    }
  }).observe({ type: 'longtask', buffered: true });
} catch {
  // not every browser reports long tasks
}

async function loadConfig(): Promise<DemoConfig> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await fetch('/demo-config.json', { cache: 'no-store' }).catch(() => undefined);
    if (res?.ok) return (await res.json()) as DemoConfig;
    if (res && res.status !== 503) throw new Error('this page needs the demo server: start it with `npm run demo`');
    if (Date.now() > deadline) throw new Error('the demo nodes did not start');
    await new Promise((r) => setTimeout(r, 500));
  }
}

const PHASES: Record<string, string> = {
  connecting: 'connecting',
  fetching: 'fetching range proofs',
  'catching-up': 'catching up (change proofs)',
  'at-target': 'synced · following live',
  done: 'synced',
  failed: 'failed',
};

/** Progress as the engine persists it (docs/sync.md), when the SDK reports it (see keyspace-map.ts). */
type ProgressWithSegments = ProgressEvent & { segments?: MapSegment[] };

/** How long a catch-up to a newer root may last before the page shows it. */
const FOLLOW_GRACE_MS = 750;

function notice(text: string, kind: 'info' | 'error' = 'info'): void {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
  n.hidden = !text;
}

async function main(): Promise<void> {
  const config = await loadConfig();
  const params = new URLSearchParams(location.search);
  let transport: Transport = params.get('transport') === 'webrtc-direct' ? 'webrtc-direct' : 'websockets';
  const num = (name: string): number | undefined => (params.has(name) ? Number(params.get(name)) : undefined);
  const names = new Map(config.nodes.map((n) => [n.peerId, n.name]));
  const nameOf = (peer: string): string => names.get(peer) ?? `peer ${shortPeer(peer)}`;

  $('db-id').textContent = config.db;
  $('writer-id').textContent = config.writer;
  $('db-size').textContent = `${formatCount(config.keys)} keys · ${config.writesPerSecond} writes/s`;
  $('mode').textContent = config.mode === 'build' ? 'production build' : 'Vite dev server';
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="transport"]')) r.checked = r.value === transport;

  const map = new KeySpaceMap($<HTMLCanvasElement>('map'));
  const chart = new ThroughputChart($<HTMLCanvasElement>('chart'));
  const peers = new PeersPanel($<HTMLUListElement>('peers'), config.nodes);
  const live = new LivePanel({
    root: $('root'),
    seq: $('seq'),
    behind: $('behind'),
    verifyLatency: $('verify-latency'),
    commitLatency: $('commit-latency'),
    pending: $('pending'),
    feed: $<HTMLUListElement>('feed'),
  });

  let client: LightClient | undefined;
  let last: ProgressWithSegments | undefined;
  let paused = false;
  /**
   * The most of the key space seen verified at some signed root since this client started (1
   * once synced): the SDK's fraction is at the current target, and drops each time a live
   * write moves the target, while what was verified stays verified at its older root.
   */
  let covered = 0;
  let synced: { seq: number; root: string } | undefined;
  const pageStart = performance.now();
  let firstSyncedMs: number | undefined;
  let frame = 0;
  /** The live follower's mode, once the SDK reports it (deltas move the state between syncs). */
  let liveMode: 'syncing' | 'live' | 'catching-up' | undefined;
  /** The last progress at the target, and when the sync left it for a newer root. */
  let lastAtTarget: ProgressWithSegments | undefined;
  let leftTargetAt = 0;

  const render = (): void => {
    frame = 0;
    let p = last;
    // Following a live database, each new root is a short catch-up: keep showing the synced
    // picture unless the catch-up lasts (a flicker per write would hide what matters).
    if (p?.phase === 'catching-up' && lastAtTarget && leftTargetAt) {
      const wait = FOLLOW_GRACE_MS - (performance.now() - leftTargetAt);
      if (wait > 0) {
        p = lastAtTarget;
        setTimeout(schedule, wait + 10);
      }
    }
    // once live, deltas move the state and the stopped state sync's last phase no longer applies
    const phase = paused ? 'paused' : liveMode === 'live' ? 'at-target' : liveMode === 'catching-up' ? 'catching-up' : p ? p.phase : 'connecting';
    const atTarget = phase === 'at-target' || phase === 'done';
    const fraction = atTarget ? 1 : (p?.fraction ?? 0);
    document.body.dataset.phase = phase;
    const chip = $('phase');
    chip.textContent = atTarget && liveMode === 'live' ? 'synced · applying live deltas' : (PHASES[phase] ?? phase);
    chip.dataset.phase = phase;
    $('bar-fill').style.transform = `scaleX(${covered})`;
    $('pct').textContent = `${(covered * 100).toFixed(1)}%`;
    $('bar').setAttribute('aria-valuenow', (covered * 100).toFixed(1));
    map.show(p?.segments ? pictureFromSegments(p.segments) : pictureFromFractions(fraction, covered));
    $('map-caption').textContent = p?.segments
      ? `${p.rangesDone} ranges at the target root`
      : atTarget
        ? `every key at root ${synced ? synced.root.slice(0, 12) + '…' : ''}`
        : 'approximate: the SDK reports fractions, not which ranges';
    $('st-kv').textContent = formatCount(p?.keyValues ?? 0);
    $('st-bytes').textContent = formatBytes(p?.bytes ?? 0);
    $('st-proofs').textContent = formatCount(p?.requests ?? 0);
    const rejected = $('st-rejected');
    rejected.textContent = formatCount(p?.proofsRejected ?? 0);
    rejected.dataset.count = String(p?.proofsRejected ?? 0);
    $('st-peers').textContent = p ? `${p.peersUsed} · ${p.peersBanned}` : '—';
    $('st-target').textContent = p?.seq !== undefined ? `#${p.seq} · ${p.targetUpdates}` : '—';
  };
  const schedule = (): void => {
    frame ||= requestAnimationFrame(render);
  };

  const syncedWaiters: (() => void)[] = [];
  const nextSynced = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      syncedWaiters.push(resolve);
      setTimeout(resolve, ms);
    });

  const start = (t: Transport): void => {
    transport = t;
    peers.reset(t);
    chart.restart();
    last = undefined;
    lastAtTarget = undefined;
    covered = 0;
    liveMode = undefined;
    const c = createLightClient({
      db: config.db,
      writer: config.writer,
      bootstrap: config.bootstrap[t],
      transports: [t],
      allowInsecureLoopback: true, // the demo's nodes listen on loopback, over plain ws://
      storage: { name: `proofsync-demo:${config.db}` },
      headsPollMs: 1_000,
      sync: { keyLimit: num('keyLimit'), concurrency: num('concurrency'), banAfter: num('banAfter') },
      // a fresh page fetches the state at the snapshot's checkpoint as plain files, then catches up from the nodes
      snapshots: params.get('snapshots') === '0' ? undefined : config.snapshots?.map((p) => new URL(p, location.href).href),
    });
    client = c;
    c.on('progress', (p) => {
      if (client !== c) return;
      last = p;
      covered = Math.max(covered, p.phase === 'at-target' ? 1 : p.fraction);
      if (p.phase === 'at-target') {
        lastAtTarget = p;
        leftTargetAt = 0;
      } else if (lastAtTarget && !leftTargetAt) leftTargetAt = performance.now();
      chart.update(p.keyValues);
      schedule();
    });
    c.on('synced', (s) => {
      if (client !== c) return;
      covered = 1;
      synced = { seq: s.seq, root: toHex(s.root) };
      firstSyncedMs ??= performance.now() - pageStart;
      document.body.dataset.synced = 'true';
      $('synced-in').textContent = `synced ${formatMs(firstSyncedMs)} after the page opened`;
      live.onSynced(s.seq, synced.root);
      for (const w of syncedWaiters.splice(0)) w();
      lookup.setNextSynced(nextSynced);
      schedule();
    });
    c.on('announcement', (a) => client === c && live.onAnnouncement(a.seq, toHex(a.root)));
    // live deltas: each commit arrives as a verified delta once the sync is done
    c.on('update', (u) => {
      if (client !== c) return;
      synced = { seq: u.seq ?? synced?.seq ?? -1, root: toHex(u.root) };
      live.onDelta(u, synced.root);
      schedule();
      for (const w of syncedWaiters.splice(0)) w();
    });
    c.on('pending', (p) => client === c && live.onPending(p));
    c.on('gapFill', (g) => client === c && live.onGapFill(g, g.peer ? nameOf(g.peer) : 'a peer'));
    c.on('live', (m) => {
      if (client !== c) return;
      liveMode = m.mode;
      schedule();
    });
    c.on('peer', (e) => client === c && peers.onPeer(e));
    c.on('role', (r) => client === c && ($('role').textContent = r.role === 'reader' ? 'reading (another tab syncs)' : r.role));
    c.on('error', ({ error, fatal }) => {
      if (client !== c) return;
      notice(`${fatal ? 'Stopped: ' : ''}${error.name}: ${error.message}`, fatal ? 'error' : 'info');
    });
    schedule();
  };

  const lookup = new LookupPanel(
    { form: $<HTMLFormElement>('lookup'), input: $<HTMLInputElement>('key'), remote: $<HTMLButtonElement>('remote'), samples: $('samples'), result: $('result') },
    () => client,
    (peer) => names.get(peer) ?? `peer ${shortPeer(peer)}`,
    config.sampleKeys,
  );

  // ---- controls -----------------------------------------------------------------------------
  const act = (id: string, f: () => Promise<void>): void => {
    const b = $<HTMLButtonElement>(id);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await f();
      } catch (err) {
        notice(`${(err as Error).name}: ${(err as Error).message}`, 'error');
      } finally {
        b.disabled = false;
      }
    });
  };
  act('pause', async () => {
    await client?.pause();
    paused = true;
    schedule();
  });
  act('resume', async () => {
    await client?.resume();
    paused = false;
    schedule();
  });
  act('clear', async () => {
    await client?.clear();
    covered = 0;
    liveMode = undefined;
    lookup.setNextSynced(undefined);
    peers.newSync();
    last = undefined;
    lastAtTarget = undefined;
    chart.restart();
    delete document.body.dataset.synced;
    notice('local data cleared: syncing again from nothing');
    schedule();
  });
  act('write', async () => {
    const res = await fetch('/demo/write', { method: 'POST' });
    if (!res.ok) throw new Error(`the demo server could not write: ${res.status}`);
    const w = (await res.json()) as DemoWriteResult;
    live.onWrite(w, async (key, value) => {
      const v = await client?.get(fromHex(key), { consistency: 'local' });
      return !!v && toHex(v) === value;
    });
  });
  const misbehave = $<HTMLButtonElement>('misbehave');
  let misbehaving = false;
  if (!config.misbehave) {
    misbehave.disabled = true;
    misbehave.title = 'the replica does not follow the writer (or cannot misbehave) in this build of the node';
  }
  act('misbehave', async () => {
    const res = await fetch('/demo/misbehave', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ on: !misbehaving }) });
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    if (!res.ok) throw new Error(body.message ?? `the demo server answered ${res.status}`);
    misbehaving = !misbehaving;
    misbehave.textContent = misbehaving ? 'Make the replica honest again' : 'Make the replica misbehave';
    misbehave.setAttribute('aria-pressed', String(misbehaving));
    notice(
      misbehaving
        ? 'The replica now sends tampered proofs. A sync asks it for proofs (press “Clear local data” to sync again from both nodes): watch the client reject them, ban it and carry on.'
        : 'The replica is honest again (a peer banned by a sync stays banned for that sync).',
    );
  });
  if (!config.misbehave) misbehave.disabled = true;
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="transport"]')) {
    r.addEventListener('change', async () => {
      if (!r.checked || r.value === transport) return;
      const old = client;
      client = undefined;
      await old?.close();
      notice(`reconnecting over ${r.value === 'websockets' ? 'WebSockets' : 'WebRTC-Direct'}; the sync resumes from the local replica`);
      start(r.value as Transport);
    });
  }

  // ---- clocks -------------------------------------------------------------------------------
  setInterval(() => {
    chart.tick();
    $('longtasks').textContent = `${longTasks.over50} over 50 ms (max ${Math.round(longTasks.maxMs)} ms)`;
  }, 1_000);
  const poll = async (): Promise<void> => {
    const [stats, status] = await Promise.all([
      fetch('/demo/nodes', { cache: 'no-store' })
        .then((r) => (r.ok ? (r.json() as Promise<DemoNodeStats[]>) : undefined))
        .catch(() => undefined),
      client?.status({ signal: AbortSignal.timeout(2_000) }).catch(() => undefined),
    ]);
    if (stats) peers.onStats(stats);
    if (status?.heapUsed) {
      $('heap').textContent = formatBytes(status.heapUsed);
      $('heap-box').hidden = false;
    }
  };
  setInterval(() => void poll(), 2_000);
  void poll();

  start(transport);
  // for people poking at the page from DevTools, and for the measurements in the issue
  (window as unknown as { demo: unknown }).demo = {
    client: () => client,
    longTasks,
    firstSyncedMs: () => firstSyncedMs,
    nameOf,
  };
}

main().catch((err: unknown) => notice((err as Error).message, 'error'));
