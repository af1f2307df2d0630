/**
 * Benchmark plumbing: each suite measures, then calls `writeResults`, which writes
 * bench/results/NAME.json as {"suite","machine","figures":[{name,value,unit,goal}]}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** "<= X", ">= X" or null */
  goal: string | null;
}

export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? 'cpu'} x${c.length}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

export function writeResults(suite: string, figures: Figure[]): void {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${suite}.json`);
  writeFileSync(file, JSON.stringify({ suite, machine: machine(), figures }, null, 2) + '\n');
  for (const f of figures) {
    const met = f.goal ? (goalMet(f) ? 'met' : 'NOT met') : '';
    console.log(`${suite}: ${f.name} = ${round(f.value)} ${f.unit}${f.goal ? ` (goal ${f.goal}: ${met})` : ''}`);
  }
  console.log(`wrote ${file}`);
}

export function goalMet(f: Figure): boolean {
  if (!f.goal) return true;
  const [op, x] = f.goal.split(' ');
  return op === '<=' ? f.value <= Number(x) : f.value >= Number(x);
}

const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 1000) / 1000);

/** Seeded random bytes (mulberry32 per 4 bytes): benchmarks are reproducible. */
export function seededBytes(seed: number): (n: number) => Uint8Array {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const x = next();
      out[i] = x;
      if (i + 1 < n) out[i + 1] = x >>> 8;
      if (i + 2 < n) out[i + 2] = x >>> 16;
      if (i + 3 < n) out[i + 3] = x >>> 24;
    }
    return out;
  };
}

export const now = () => performance.now();

/**
 * A helper server process (src/node/testing/process.ts's protocol) runs until its stdin closes
 * or it gets SIGTERM, then runs `stop` and exits.
 */
export function runUntilStdinEnds(stop: () => Promise<void>): void {
  const exit = async (): Promise<void> => {
    await stop();
    process.exit(0);
  };
  process.stdin.on('end', exit);
  process.stdin.on('error', exit);
  process.on('SIGTERM', exit);
  process.stdin.resume();
}

/**
 * A Vite plugin for the benchmarks' `preview` servers: hashed assets (`/assets/…`) are served
 * as a production host serves them and as `npm run demo` does (demo/server/static.ts), cached
 * for good. Vite's preview marks every file `no-cache`, so each navigation revalidated each
 * script with the server first, which no returning visitor of a deployed app waits for.
 */
export function immutableAssets(): import('vite').Plugin {
  return {
    name: 'proofsync-bench-immutable-assets',
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.url?.startsWith('/assets/')) {
          // the static handler sets its own cache-control after this one: have the last word
          const setHeader = res.setHeader.bind(res);
          res.setHeader = (name: string, value: number | string | readonly string[]) =>
            setHeader(name, name.toLowerCase() === 'cache-control' ? 'public, max-age=31536000, immutable' : value);
        }
        next();
      });
    },
  };
}
