/**
 * A V8 CPU profile of a page's dedicated workers while `run` runs (Chrome DevTools Protocol:
 * the page's session auto-attaches to its workers; commands reach a worker through
 * `Target.sendMessageToTarget`). Benchmarks call it when `BENCH_PROFILE` names a directory: one
 * `.cpuprofile` per worker, for DevTools or `node --prof`-style analysis.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

export async function profileWorkers<T>(page: Page, dir: string, label: string, run: () => Promise<T>): Promise<T> {
  const cdp = await page.context().newCDPSession(page);
  const sessions: string[] = [];
  let next = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  cdp.on('Target.attachedToTarget', (e) => {
    if (e.targetInfo.type === 'worker') sessions.push(e.sessionId);
  });
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const msg = JSON.parse(e.message) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  });
  const send = (sessionId: string, method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
    });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  await new Promise((r) => setTimeout(r, 200)); // the attach events of running workers
  for (const s of sessions) {
    await send(s, 'Profiler.enable');
    await send(s, 'Profiler.setSamplingInterval', { interval: 200 });
    await send(s, 'Profiler.start');
  }
  try {
    return await run();
  } finally {
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < sessions.length; i++) {
      const r = (await send(sessions[i], 'Profiler.stop')) as { profile: unknown };
      const file = join(dir, `${label}-worker${i}.cpuprofile`);
      await writeFile(file, JSON.stringify(r.profile));
      console.log(`profile: ${file}`);
    }
    await cdp.detach();
  }
}
