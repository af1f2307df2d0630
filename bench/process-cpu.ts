/**
 * CPU seconds of the benchmark's own processes (Linux /proc): every thread of this process's
 * descendants that is a Chromium process (the browser we launched, not another one on the
 * machine), by process type and thread name, and the whole machine's busy share. Used by
 * bench/sync-ab.ts and bench/browser.bench.ts to tell where a browser sync's CPU goes (the
 * worker's thread, V8's helpers in the renderer's thread pool, IndexedDB's backend in the
 * browser process) and whether the machine was saturated.
 */
import { readdir, readFile } from 'node:fs/promises';

/** The parent pid of every process (Linux /proc). */
async function parents(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat) out.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  return out;
}

/**
 * CPU seconds (user + system) of every thread of this process's descendants (the browser we
 * launched, not another one on the machine), keyed by process type and thread name.
 */
export async function threadCpu(): Promise<Map<string, number>> {
  const ppid = await parents();
  const mine = (pid: number): boolean => {
    for (let p = ppid.get(pid); p !== undefined && p > 1; p = ppid.get(p)) if (p === process.pid) return true;
    return false;
  };
  const out = new Map<string, number>();
  for (const pid of ppid.keys()) {
    if (!mine(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmd.includes('chrom')) continue;
    const type = cmd.match(/--type=([a-z-]+)/)?.[1] ?? 'browser';
    for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
      if (!stat) continue;
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = `${type}/${name}`;
      out.set(key, (out.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    }
  }
  return out;
}

/** Busy and total CPU ticks of the whole machine so far (/proc/stat), or undefined elsewhere. */
export async function machineTicks(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    const total = t.reduce((x, y) => x + y, 0);
    return { busy: total - t[3] - (t[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** `after - before` per key, the keys with at least `min` seconds, largest first. */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>, min = 0.05): [string, number][] {
  return [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as [string, number]).filter(([, v]) => v >= min).sort((x, y) => y[1] - x[1]);
}

/**
 * Waits until the machine is quiet: a `windowMs` window in which its cores were busy less than
 * `share` of the time, or `maxMs` in all. A benchmark that times a navigation opens the tab
 * first and waits here, as a user's tab is open before the address is typed: headless Chromium
 * loads its omnibox WebUI (dozens of scripts) in every new tab, and on 2 cores that work took
 * about half of a fresh page's first `getVerified` (`SETTLE=1500 node bench/startup-trace.ts
 * 2000 4`: 522-578 ms against 975-1,322 ms navigating at once).
 */
export async function machineQuiet(maxMs = 5000, windowMs = 250, share = 0.3): Promise<void> {
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const a = await machineTicks();
    await new Promise((r) => setTimeout(r, windowMs));
    const b = await machineTicks();
    if (!a || !b || (b.busy - a.busy) / Math.max(1, b.total - a.total) < share) return;
  }
}
