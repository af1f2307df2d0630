/**
 * `npm run demo`: a writer node with a generated database committing live writes, a
 * replica following it, and the demo page (Vite's dev server, or with `--build` the production
 * bundle on a small static server), all on loopback, data in a temp dir. Prints the page's URL
 * and the writer's peer id. The writer keeps static proofs of its state (`--snapshot-dir`),
 * served under /snapshots/ for the page's first sync (docs/static-proofs.md). Ctrl-C (or SIGTERM) stops every process it started and removes the
 * temp dir.
 *
 *   node demo/run.ts [--keys 200000] [--simulate-writes 2] [--port 5173] [--build] [--data DIR]
 *
 * `--stop-on-stdin-close` also stops when stdin ends (tests: the demo dies with its parent).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toHex } from '../src/core/bytes.ts';
import { generateKeyValues } from '../src/node/generate.ts';
import type { DemoConfig } from './config.ts';
import { demoApi, type DemoState } from './server/api.ts';
import { NodeStartFailed, nodeStatus, startDemoNode, type DemoNode } from './server/nodes.ts';
import { serveStatic } from './server/static.ts';
import { staticFileHandler } from '../src/node/testing/static-server.ts';

const CONFIG_FILE = fileURLToPath(new URL('../vite.config.ts', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('../dist/demo', import.meta.url));
const SAMPLE_KEYS = 6;
/** Where the page's server serves the writer's snapshot directory. */
const SNAPSHOT_PATH = '/snapshots/';

function options() {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '200000' },
      'simulate-writes': { type: 'string', default: '2' },
      seed: { type: 'string', default: '1' },
      port: { type: 'string', default: '5173' },
      build: { type: 'boolean', default: false },
      data: { type: 'string' },
      'stop-on-stdin-close': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name: 'keys' | 'seed' | 'port'): number => {
    const n = Number(values[name].replaceAll('_', ''));
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`--${name} must be a non-negative integer, got ${JSON.stringify(values[name])}`);
    return n;
  };
  const rate = Number(values['simulate-writes']);
  if (!(rate >= 0)) throw new RangeError(`--simulate-writes must be commits per second (0: none), got ${values['simulate-writes']}`);
  return { keys: int('keys'), seed: int('seed'), port: int('port'), rate, build: values.build, data: values.data, stdin: values['stop-on-stdin-close'], help: values.help };
}

const say = (line: string): void => void process.stderr.write(`demo: ${line}\n`);

/** Closes what was started, in reverse order; a second signal kills at once. */
class Shutdown {
  readonly #tasks: (() => Promise<void>)[] = [];
  #running: Promise<void> | undefined;
  urgent = false;

  add(task: () => Promise<void>): void {
    this.#tasks.push(task);
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      for (const t of this.#tasks.reverse()) await t().catch((err: unknown) => say(`stopping: ${(err as Error).message}`));
    })();
    return this.#running;
  }
}

/** The replica: `--follow` the writer when the node has it, else a plain second node (not dialed). */
async function startReplica(dir: string, writer: DemoNode, signal: AbortSignal): Promise<{ node: DemoNode; following: boolean }> {
  try {
    const node = await startDemoNode('replica', dir, ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], { signal });
    return { node, following: true };
  } catch (err) {
    if (!(err instanceof NodeStartFailed && err.code === 2)) throw err;
    say('this proofsync node has no --follow yet: the replica runs as a plain second node and the page does not dial it');
    const node = await startDemoNode('replica', `${dir}-plain`, ['--replica', '--db', writer.file.db!], { signal });
    return { node, following: false };
  }
}

/** Waits (bounded) until the replica serves the writer's database at some signed root. */
async function replicaCaughtUp(replica: DemoNode, writer: DemoNode, signal: AbortSignal, timeoutMs = 180_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let said = 0;
  while (Date.now() < deadline && !signal.aborted) {
    const [r, w] = await Promise.all([nodeStatus(replica).catch(() => undefined), nodeStatus(writer).catch(() => undefined)]);
    if (r?.seq != null && w?.seq != null && w.seq - r.seq <= 20) return true;
    if (Date.now() - said > 5_000) {
      said = Date.now();
      say(`replica catching up (seq ${r?.seq ?? '-'} of ${w?.seq ?? '-'})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

async function main(): Promise<number> {
  const o = options();
  if (o.help) {
    process.stdout.write('usage: node demo/run.ts [--keys N] [--simulate-writes PER_SECOND] [--seed S] [--port P] [--build] [--data DIR]\n');
    return 0;
  }
  const shutdown = new Shutdown();
  const life = new AbortController();
  let exitCode = 0;
  const onSignal = (sig: string): void => {
    if (life.signal.aborted) {
      shutdown.urgent = true;
      return;
    }
    say(`${sig}: stopping`);
    life.abort(new Error(sig));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGHUP', () => onSignal('SIGHUP'));
  if (o.stdin) {
    process.stdin.resume();
    process.stdin.on('end', () => onSignal('stdin closed'));
  }
  const stopped = new Promise<void>((resolve) => life.signal.addEventListener('abort', () => resolve(), { once: true }));

  const dataDir = o.data ?? (await mkdtemp(join(tmpdir(), 'proofsync-demo-')));
  if (!o.data) shutdown.add(() => rm(dataDir, { recursive: true, force: true }));
  const state: { current: DemoState | undefined } = { current: undefined };
  // the writer keeps its static proofs here (--snapshot-dir); the page's server serves them as files
  const snapshotDir = join(dataDir, 'snapshots');
  const snapshots = staticFileHandler(snapshotDir, { prefix: SNAPSHOT_PATH });
  const api = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    if ((req.url ?? '').startsWith(SNAPSHOT_PATH)) {
      snapshots(req, res).catch(() => (res.headersSent ? res.destroy() : res.writeHead(500).end()));
      return;
    }
    if (state.current) return demoApi(state.current)(req, res, next);
    if ((req.url ?? '').startsWith('/demo')) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Starting', message: 'the demo nodes are still starting' }));
    } else next();
  };

  try {
    const started = Date.now();
    say(`${o.keys.toLocaleString('en')} keys, ${o.rate} writes/s, data in ${dataDir}`);
    // the page's server starts (or builds) while the writer generates its database
    const page = (async () => {
      const vite = await import('vite');
      if (o.build) {
        await vite.build({ configFile: CONFIG_FILE, logLevel: 'warn', mode: 'production' });
        const s = await serveStatic(BUILD_DIR, o.port, api).catch(() => serveStatic(BUILD_DIR, 0, api));
        shutdown.add(() => s.close());
        return s.url;
      }
      // Vite's dev server exits the process on SIGTERM and at the end of stdin: this launcher
      // stops the nodes first, so take those listeners back
      const sigterm = new Set(process.listeners('SIGTERM'));
      const stdinEnd = new Set(process.stdin.listeners('end'));
      const server = await vite.createServer({
        configFile: CONFIG_FILE,
        logLevel: 'warn',
        clearScreen: false,
        server: { port: o.port, strictPort: false, hmr: false },
        plugins: [{ name: 'proofsync-demo-api', configureServer: (s) => void s.middlewares.use(api) }],
      });
      for (const l of process.listeners('SIGTERM')) if (!sigterm.has(l)) process.off('SIGTERM', l);
      for (const l of process.stdin.listeners('end')) if (!stdinEnd.has(l)) process.stdin.off('end', l as () => void);
      shutdown.add(() => server.close());
      await server.listen();
      const url = server.resolvedUrls?.local[0];
      if (!url) throw new Error('vite did not report a local URL');
      return url;
    })();
    page.catch(() => {});

    // A checkpoint every 10 s (the node's default is 60 s): the demo's live writes move the head
    // fast, and a fresh page syncs to the newest checkpoint, then catches up by change proofs;
    // a recent checkpoint keeps that catch-up short.
    const checkpoints = ['--checkpoint-interval', '10'];
    const writer = await startDemoNode('writer', join(dataDir, 'writer'), ['--generate', String(o.keys), '--seed', String(o.seed), '--snapshot-dir', snapshotDir, ...checkpoints, ...(o.rate > 0 ? ['--simulate-writes', String(o.rate)] : [])], { signal: life.signal });
    shutdown.add(() => writer.stop(shutdown.urgent ? 0 : 5_000));
    say(`writer ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const replica = await startReplica(join(dataDir, 'replica'), writer, life.signal);
    shutdown.add(() => replica.node.stop(shutdown.urgent ? 0 : 5_000));
    const serving = replica.following && (await replicaCaughtUp(replica.node, writer, life.signal));
    if (replica.following && !serving && !life.signal.aborted) say('the replica has not caught up; the page dials the writer only');

    const kvs = generateKeyValues(o.keys, o.seed);
    const step = Math.max(1, Math.floor(kvs.length / SAMPLE_KEYS));
    const nodes = serving ? [writer, replica.node] : [writer];
    const config: DemoConfig = {
      db: writer.file.db!,
      writer: writer.file.peerId,
      bootstrap: {
        websockets: nodes.map((n) => n.file.ws).filter((a): a is string => !!a),
        'webrtc-direct': nodes.map((n) => n.file.webrtcDirect).filter((a): a is string => !!a),
      },
      nodes: [
        { name: 'writer', peerId: writer.file.peerId, serving: true },
        { name: 'replica', peerId: replica.node.file.peerId, serving },
      ],
      sampleKeys: kvs.filter((_, i) => i % step === Math.floor(step / 2)).slice(0, SAMPLE_KEYS).map((kv) => toHex(kv.key)),
      keys: o.keys,
      writesPerSecond: o.rate,
      misbehave: serving,
      snapshots: [SNAPSHOT_PATH],
      mode: o.build ? 'build' : 'dev',
    };
    state.current = { config, nodes: [writer, replica.node], misbehaving: false };
    const url = await page;
    if (life.signal.aborted) return 130;
    process.stdout.write(`writer  ${writer.file.peerId}\nopen    ${url}\n`);
    say(`ready after ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C stops everything`);

    // a node that dies takes the demo down (its page would only show errors)
    const died = new Promise<string>((resolve) => {
      // (Ctrl-C in a terminal signals the nodes too: an exit after a signal is no failure)
      for (const n of [writer, replica.node]) n.child.once('exit', (code, sig) => !life.signal.aborted && resolve(`the ${n.name} node exited (${code ?? sig}):\n${n.tail().slice(-1500)}`));
    });
    const why = await Promise.race([stopped.then(() => undefined), died]);
    if (why) {
      say(why);
      exitCode = 1;
    }
  } catch (err) {
    if (!life.signal.aborted) {
      say(`failed: ${(err as Error).message}`);
      exitCode = 1;
    }
  } finally {
    await shutdown.run();
  }
  return exitCode;
}

process.exitCode = await main();
// libp2p-free here, but Vite may keep handles (its watcher, esbuild service): leave promptly
setImmediate(() => process.exit());
