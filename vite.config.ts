/**
 * Vite configuration of the demo page (issue 7): `demo/` is the root, `public/` the static
 * assets. The page imports the SDK by its public entry points (`proofsync/client`,
 * `proofsync/core`, `proofsync/protocol`), resolved here to the sources, so the worker that
 * `createLightClient` starts (`new Worker(new URL(...), { type: 'module' })`) is bundled by Vite
 * in dev and in `vite build` alike. `npm run demo` (demo/run.ts) adds the demo server's routes.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('./demo'),
  publicDir: here('./public'),
  resolve: {
    alias: [{ find: /^proofsync\/(core|protocol|client)$/, replacement: here('./src') + '/$1/index.ts' }],
  },
  // the worker lazily imports chunks: ES module workers (every browser the SDK targets has them)
  worker: { format: 'es' },
  server: {
    host: '127.0.0.1',
    fs: { allow: [here('.')] },
  },
  preview: { host: '127.0.0.1' },
  // scan the worker too, so no dependency is discovered (and the page reloaded) mid-sync
  optimizeDeps: { entries: ['index.html', '../src/client/worker/entry.ts'] },
  build: {
    outDir: here('./dist/demo'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2048,
  },
});
