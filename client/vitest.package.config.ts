import { defineConfig } from 'vitest/config';

// The package test (npm run test:package): `npm pack`, a fresh Vite + React app in a temporary
// folder that installs the tarball, type-checks and builds, then shows live jobs in Chromium against
// the real server on another origin. It starts its own server and worker (no globalSetup).
export default defineConfig({
  test: {
    include: ['e2e/**/*.pack.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 150_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    retry: 0,
  },
});
