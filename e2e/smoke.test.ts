/**
 * Browser smoke test: headless Chromium loads a Vite-served page that imports the client
 * transport and dials a full node in a child process over /ws and /webrtc-direct.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { Cleanup, launchChromium, openPage, pageResult, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';

interface Outcome {
  ok: boolean;
  echoed?: string;
  remoteAddr?: string;
  error?: string;
  ms: number;
}
interface SmokeResult {
  ws: Outcome;
  webrtcDirect: Outcome;
  strict: string;
  hasRTCPeerConnection: boolean;
}

const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

beforeAll(async () => {
  [node, vite, browser] = await Promise.all([
    startNode().then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/smoke/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('browser smoke', () => {
  it('a page dials the node over /ws and /webrtc-direct and echoes', async () => {
    const q = new URLSearchParams({ ws: node.file.ws!, rtc: node.file.webrtcDirect! });
    const { page, log } = await openPage(browser, `${vite.url}/e2e/smoke/index.html?${q}`);
    const result = await pageResult<SmokeResult>(page, log, 60_000);
    if (process.env.E2E_VERBOSE) console.info(JSON.stringify(result, null, 2));
    const context = `${JSON.stringify(result, null, 2)}\nnode:\n${node.output()}\npage:\n${log.join('\n')}`;
    expect(result.hasRTCPeerConnection, context).toBe(true);
    expect(result.ws, context).toMatchObject({ ok: true, echoed: 'hello over websockets' });
    expect(result.ws.remoteAddr).toContain('/ws');
    expect(result.webrtcDirect, context).toMatchObject({ ok: true, echoed: 'hello over webrtc-direct' });
    expect(result.webrtcDirect.remoteAddr).toContain('/webrtc-direct');
    // production defaults refuse loopback ws:// before dialing
    expect(result.strict).not.toBe('dialed');
  }, 90_000);
});
