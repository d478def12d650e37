import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The demo page is built into the Python package, which serves realtime/static/index.html at `/`
// and realtime/static/assets/* at `/assets/`.
export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: '../realtime/static',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    // `npm run dev` against a local `python -m realtime serve --demo` (port 8080).
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/demo': 'http://127.0.0.1:8080',
      '/socket.io': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
});
