/**
 * Size budgets of what a dApp downloads: the main-thread entry (`proofsync/client`), the worker
 * (`proofsync/client/worker`) and the WebRTC bridge chunk (loaded by the entry only when some
 * address needs the main thread). Each is bundled on its own with esbuild (minified ES module
 * for browsers, every dependency inlined, the bridge left out of the entry as the lazy chunk
 * it is) and measured gzipped at level 9; `npm run size` fails when one grows more than 5% over
 * its budget in scripts/size-budgets.json, and `npm run size -- --update` records new budgets.
 *
 * Bundled from the sources, which are the shipped modules less their types: esbuild strips
 * them as tsc does, so the figure is the same without a 40 s build first.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
export const BUDGETS_FILE = fileURLToPath(new URL('./size-budgets.json', import.meta.url));
/** How far over its budget a bundle may grow before the check fails. */
export const TOLERANCE = 0.05;

export const ENTRIES = {
  main: 'src/client/index.ts',
  worker: 'src/client/worker/entry.ts',
  /** The worker's libp2p stack: its own chunk, imported by the worker at start. */
  network: 'src/client/worker/network.ts',
  bridge: 'src/client/worker/bridge-main.ts',
} as const;
export type EntryName = keyof typeof ENTRIES;

/**
 * The entry loads the bridge, and the worker its network stack, with `import()`: in a real
 * bundle each is another chunk, so it is left out here (and measured as its own entry).
 */
const lazyChunks: Plugin = {
  name: 'lazy-chunks',
  setup(b) {
    b.onResolve({ filter: /(bridge-main|\/network)\.ts$/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
  },
};

export interface Measured {
  raw: number;
  gzip: number;
  /** The largest inputs by bytes in the minified bundle, for deciding what to cut. */
  largest: { path: string; bytes: number }[];
}

export async function measure(name: EntryName): Promise<Measured> {
  const out = await build({
    entryPoints: [resolve(root, ENTRIES[name])],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    outdir: 'out',
    logLevel: 'error',
    plugins: [lazyChunks],
  });
  const js = out.outputFiles.find((f) => f.path.endsWith('.js'))!;
  const output = Object.values(out.metafile.outputs).find((o) => o.entryPoint)!;
  const largest = Object.entries(output.inputs)
    .map(([path, i]) => ({ path, bytes: i.bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 12);
  return { raw: js.contents.length, gzip: gzipSync(js.contents, { level: 9 }).length, largest };
}

export type Budgets = Record<EntryName, number>;

export async function readBudgets(): Promise<Budgets> {
  return JSON.parse(await readFile(BUDGETS_FILE, 'utf8')) as Budgets;
}

/** The entries over budget by more than the tolerance, with a message each. */
export function overBudget(sizes: Record<EntryName, number>, budgets: Budgets): string[] {
  return (Object.keys(ENTRIES) as EntryName[])
    .filter((n) => sizes[n] > budgets[n] * (1 + TOLERANCE))
    .map((n) => `${n}: ${sizes[n]} B gzip is ${(((sizes[n] - budgets[n]) / budgets[n]) * 100).toFixed(1)}% over its budget of ${budgets[n]} B (allowed: ${TOLERANCE * 100}%)`);
}

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const update = process.argv.includes('--update');
  const verbose = process.argv.includes('--verbose');
  const sizes = {} as Record<EntryName, number>;
  for (const name of Object.keys(ENTRIES) as EntryName[]) {
    const m = await measure(name);
    sizes[name] = m.gzip;
    process.stdout.write(`${name.padEnd(7)} ${kib(m.gzip).padStart(10)} gzip  ${kib(m.raw).padStart(10)} minified  (${ENTRIES[name]})\n`);
    if (verbose) for (const l of m.largest) process.stdout.write(`          ${kib(l.bytes).padStart(9)}  ${l.path}\n`);
  }
  if (update) {
    await writeFile(BUDGETS_FILE, JSON.stringify(sizes, null, 2) + '\n');
    process.stdout.write(`budgets written to ${BUDGETS_FILE}\n`);
  } else {
    const over = overBudget(sizes, await readBudgets());
    for (const o of over) process.stderr.write(`over budget: ${o}\n`);
    process.exitCode = over.length ? 1 : 0;
  }
}
