import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// Unit and component tests. Library tests run in Node against a real Socket.IO server on loopback;
// component tests opt into jsdom with a `@vitest-environment jsdom` comment.
export default defineConfig({
  plugins: [react()],
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    environment: 'node',
    testTimeout: 20000,
    hookTimeout: 20000,
    teardownTimeout: 5000,
    restoreMocks: true,
    setupFiles: ['test/setup.ts'],
  },
});
