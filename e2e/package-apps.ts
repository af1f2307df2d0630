/**
 * The package as a user gets it: `npm pack` of this repository, the example apps of examples/
 * copied out and installed from that tarball, a static file server for what their bundlers
 * built, and the full node run by the installed `proofsync` command.
 *
 * The apps are installed together as the workspaces of one temporary folder: one `npm install`
 * (each app's own package.json, its bundler included, is what npm reads), instead of three that
 * would each resolve and link the same ~260 packages again.
 *
 * @example
 * const tarball = await packTarball(dir);
 * const apps = await installExamples(dir, tarball, ['vite', 'esbuild']);
 * await buildExample(apps, 'vite');
 * const server = await serveStatic(join(apps, 'vite', 'dist'), { '/config.json': JSON.stringify(config) });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { REPO_ROOT } from './harness.ts';
import { ADDRESSES_FILE, type AddressesFile } from '../src/node/host.ts';

/** npm and the tools it starts run on this Node (the npm scripts' Node 24), without the outer npm's settings. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  return env;
}

/** Runs a command to its end; rejects with its output when it fails or outlives `timeoutMs`. */
export function run(command: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(out);
      else reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) ended with ${code ?? signal}:\n${out.slice(-4000)}`));
    });
  });
}

/** `npm pack` (its `prepack` builds dist/) into `dir`; returns the tarball's path. */
export async function packTarball(dir: string): Promise<string> {
  const out = await run('npm', ['pack', '--json', '--pack-destination', dir], REPO_ROOT);
  const [info] = JSON.parse(out.slice(out.indexOf('[\n'))) as { filename: string }[];
  return join(dir, info!.filename);
}

/** Copies the named examples into `dir/apps`, points their `proofsync` dependency at the tarball and installs them. */
export async function installExamples(dir: string, tarball: string, names: readonly string[]): Promise<string> {
  const apps = join(dir, 'apps');
  for (const name of names) {
    await cp(join(REPO_ROOT, 'examples', name), join(apps, name), { recursive: true, filter: (p) => !/[/\\](node_modules|dist)$/.test(p) });
    const file = join(apps, name, 'package.json');
    const pkg = JSON.parse(await readFile(file, 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies.proofsync = `file:${tarball}`;
    await writeFile(file, JSON.stringify(pkg, null, 2));
  }
  await writeFile(join(apps, 'package.json'), JSON.stringify({ name: 'proofsync-examples', private: true, workspaces: names }));
  // the registry is reached only for what npm's cache lacks
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], apps, 600_000);
  return apps;
}

/** The example's own `npm run build`. */
export function buildExample(apps: string, name: string): Promise<string> {
  return run('npm', ['run', 'build'], join(apps, name));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** A plain HTTP server for a folder of built files on 127.0.0.1 (`extra`: fixed answers by path, e.g. a config). */
export async function serveStatic(root: string, extra: Record<string, string> = {}): Promise<StaticServer> {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path in extra) {
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(extra[path]);
      return;
    }
    const file = resolve(base, `.${path.endsWith('/') ? `${path}index.html` : path}`);
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

export interface InstalledNode {
  child: ChildProcess;
  file: AddressesFile;
  output(): string;
  stop(): Promise<void>;
}

/** Runs `node_modules/.bin/proofsync node --data DIR ...args` of an installed app until "ready". */
export async function startInstalledNode(apps: string, dataDir: string, args: string[]): Promise<InstalledNode> {
  const bin = join(apps, 'node_modules', '.bin', 'proofsync');
  const child = spawn(process.execPath, [bin, 'node', '--data', dataDir, ...args], { cwd: apps, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await new Promise<void>((ok, reject) => {
      const timer = setTimeout(() => reject(new Error(`the installed proofsync node did not start within 60 s:\n${out}`)), 60_000);
      const onData = (): void => {
        if (/^ready /m.test(out)) {
          clearTimeout(timer);
          ok();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the installed proofsync node exited (${code ?? signal}) before ready:\n${out}`));
      });
    });
    const file = JSON.parse(await readFile(join(dataDir, ADDRESSES_FILE), 'utf8')) as AddressesFile;
    return { child, file, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
