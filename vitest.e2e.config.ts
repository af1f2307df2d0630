import { defineConfig } from 'vitest/config';

/** Browser end-to-end tests alone: `npx vitest run -c vitest.e2e.config.ts`. */
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
