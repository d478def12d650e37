/**
 * The npm package's shape, without building it (e2e/package.pack.ts packs, installs and runs it):
 * the exports map, the framework-free main entry, and a demo that uses only the public entries.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(clientDir, 'src');

interface Manifest {
  name: string;
  private?: boolean;
  type: string;
  files: string[];
  exports: Record<string, string | Record<string, string>>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(clientDir, 'package.json'), 'utf8')) as Manifest;

/** Import specifiers of a TypeScript file (static imports, re-exports, side-effect imports). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /(?:^|\n)\s*(?:import|export)\s[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  return [...text.matchAll(re)].map((m) => (m[1] ?? m[2])!);
}

function resolveRelative(from: string, spec: string): string {
  const base = resolve(dirname(from), spec.replace(/\.js$/, ''));
  for (const candidate of [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts')]) if (existsSync(candidate)) return candidate;
  throw new Error(`${relative(clientDir, from)}: cannot resolve ${spec}`);
}

describe('package.json', () => {
  it('publishes realtime-client with three entry points from dist/', () => {
    expect(manifest.name).toBe('realtime-client');
    expect(manifest.private).toBeUndefined();
    expect(manifest.type).toBe('module');
    expect(manifest.files.sort()).toEqual(['README.md', 'dist/']);
    expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(manifest.exports['./react']).toEqual({ types: './dist/react/index.d.ts', import: './dist/react/index.js' });
    expect(manifest.exports['./styles.css']).toMatchObject({ types: './dist/styles.css.d.ts', import: './dist/styles.css' });
  });

  it('has React as a peer and socket.io-client as a dependency', () => {
    expect(manifest.peerDependencies).toEqual({ react: '^18 || ^19', 'react-dom': '^18 || ^19' });
    expect(Object.keys(manifest.dependencies)).toEqual(['socket.io-client']);
  });
});

describe('entry points', () => {
  it('the main entry (src/index.ts) is framework-free: nothing it imports reaches React', () => {
    const seen = new Set<string>();
    const queue = [join(src, 'index.ts')];
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of specifiers(file)) {
        expect(spec, `${relative(clientDir, file)} imports ${spec}`).not.toMatch(/^react(-dom)?(\/|$)/);
        if (!spec.startsWith('.')) continue;
        expect(spec, `${relative(clientDir, file)}: relative imports end in .js (NodeNext output)`).toMatch(/\.js$/);
        const target = resolveRelative(file, spec);
        expect(relative(src, target), `${relative(clientDir, file)} imports ${spec}`).not.toMatch(/^react\//);
        queue.push(target);
      }
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  it('the demo imports only the public entry points, never the library by path', () => {
    const demo = join(src, 'demo');
    const files = readdirSync(demo).filter((f) => /\.tsx?$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    const used = new Set<string>();
    for (const file of files) {
      for (const spec of specifiers(join(demo, file))) {
        if (spec.startsWith('.')) expect(spec, `src/demo/${file} imports ${spec}`).toMatch(/^\.\/[^/]+$/);
        if (spec.startsWith('realtime-client')) used.add(spec);
      }
    }
    expect([...used].sort()).toEqual(['realtime-client', 'realtime-client/react', 'realtime-client/styles.css']);
  });
});
