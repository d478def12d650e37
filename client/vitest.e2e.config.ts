import { defineConfig } from 'vitest/config';

// Browser end-to-end tests: Debian's Chromium driven by playwright-core against the real Python
// server and demo worker, started by e2e/globalSetup.ts. One file at a time: they share the server.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    globalSetup: ['e2e/globalSetup.ts'],
    fileParallelism: false,
    testTimeout: 90000,
    hookTimeout: 60000,
    teardownTimeout: 20000,
    retry: 0,
  },
});
