/**
 * Runs a node script as a child process for tests: waits for its "ready" line (an event,
 * not a poll), reads its addresses.json, and stops it on request or when the parent exits
 * (the child watches its stdin). Used by src/node tests and the e2e harness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDRESSES_FILE, type AddressesFile } from '../host.ts';

export const ECHO_NODE_SCRIPT = fileURLToPath(new URL('./echo-node.ts', import.meta.url));
export const FULL_NODE_SCRIPT = fileURLToPath(new URL('./full-node.ts', import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  dataDir: string;
  file: AddressesFile;
  /** stderr and stdout seen so far, for failure messages. */
  output(): string;
  /** SIGTERM, wait for exit (SIGKILL after `graceMs`), remove the data dir unless kept. */
  stop(options?: { keepDataDir?: boolean; graceMs?: number }): Promise<void>;
}

/**
 * Resolves with the first match of `re` in the node's output from character `from` on; rejects
 * if the node exits first. Listens to the output (an event, not a poll).
 *
 * @example
 * await waitForOutput(replica, /log filled to \d+/);
 */
export function waitForOutput(n: NodeProcess, re: RegExp, from = 0): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(n.output().slice(from));
      if (!m) return;
      n.child.stdout!.off('data', check);
      n.child.stderr!.off('data', check);
      n.child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (): void => reject(new Error(`node exited while waiting for ${re}:\n${n.output().slice(-3000)}`));
    n.child.stdout!.on('data', check);
    n.child.stderr!.on('data', check);
    n.child.once('exit', onExit);
    check();
  });
}

export interface StartNodeOptions {
  script?: string;
  args?: string[];
  /** Reuse a data dir (restart tests); default a fresh temp dir. */
  dataDir?: string;
  readyTimeoutMs?: number;
}

/**
 * Starts `script <dataDir> ...args` on this Node binary and resolves once it prints "ready".
 *
 * @example
 * const node = await startNodeProcess();
 * const res = await request(client, multiaddr(node.file.ws!), ECHO, body, { maxResponseBytes: 2048 });
 * await node.stop();
 */
export async function startNodeProcess(options: StartNodeOptions = {}): Promise<NodeProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'proofsync-node-')));
  const child = spawn(process.execPath, [options.script ?? ECHO_NODE_SCRIPT, dataDir, ...(options.args ?? [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (o: { keepDataDir?: boolean; graceMs?: number } = {}): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), o.graceMs ?? 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (!o.keepDataDir && !options.dataDir) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node did not start within ${options.readyTimeoutMs ?? 20_000} ms:\n${out}`)), options.readyTimeoutMs ?? 20_000);
      const onData = (): void => {
        if (/^ready /m.test(out)) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node exited (${code ?? signal}) before ready:\n${out}`));
      });
    });
    const file = JSON.parse(await readFile(join(dataDir, ADDRESSES_FILE), 'utf8')) as AddressesFile;
    return { child, dataDir, file, output: () => out, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
