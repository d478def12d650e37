import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

// Two pages, built into the Python package: the demo (realtime/static/index.html, served at `/`) and
// the API reference (realtime/static/docs.html, served at `/docs`), their assets in
// realtime/static/assets/* (served at `/assets/`). Everything is bundled: nothing is fetched from
// another host at run time.
//
// The demo is built from the package's public entry points, exactly as an app that installed the
// tarball would import them; these aliases (mirrored by `paths` in tsconfig.json) point them at the
// sources.
export default defineConfig({
  base: '/',
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^realtime-client$/, replacement: here('./src/index.ts') },
      { find: /^realtime-client\/react$/, replacement: here('./src/react/index.ts') },
      { find: /^realtime-client\/styles\.css$/, replacement: here('./src/react/styles.css') },
    ],
  },
  build: {
    outDir: '../realtime/static',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    // Swagger UI is one large bundle (~1.5 MB) and only the docs page loads it.
    chunkSizeWarningLimit: 2500,
    rolldownOptions: {
      input: {
        index: here('./index.html'),
        docs: here('./docs.html'),
      },
    },
  },
  server: {
    // `npm run dev` against a local `python -m realtime serve --demo` (port 8080).
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/demo': 'http://127.0.0.1:8080',
      '/openapi.json': 'http://127.0.0.1:8080',
      '/socket.io': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
});
