// Builds the page and the SDK's worker as two ES module entry points into dist/, with shared
// code and the lazily loaded parts (the WebRTC bridge) split into chunks.
import { copyFile, mkdir } from 'node:fs/promises';
import * as esbuild from 'esbuild';

await esbuild.build({
  entryPoints: { main: 'src/main.ts', worker: 'src/worker.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outdir: 'dist',
  // libp2p's packages pick their browser code through the `browser` condition and field
  platform: 'browser',
  logLevel: 'warning',
});
await mkdir('dist', { recursive: true });
await copyFile('index.html', 'dist/index.html');
