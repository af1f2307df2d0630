import { defineConfig } from 'vite';

export default defineConfig({
  // the SDK's worker loads parts of itself lazily: it must be an ES module worker
  worker: { format: 'es' },
  build: { target: 'es2022' },
});
