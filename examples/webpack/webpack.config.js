import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './src/main.js',
  // ES module output: the page's script and the SDK's worker are modules, and the worker
  // loads its chunks with import() (a module worker has no importScripts)
  experiments: { outputModule: true },
  output: {
    path: fileURLToPath(new URL('./dist', import.meta.url)),
    module: true,
    filename: '[name].js',
    chunkFilename: '[name].[contenthash:8].js',
    chunkFormat: 'module',
    chunkLoading: 'import',
    workerChunkLoading: 'import',
    clean: true,
  },
  target: ['web', 'es2022'],
  performance: { hints: false },
};
