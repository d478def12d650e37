// npm run build:lib (also `prepack`, so `npm pack` always packs a fresh build): the library as
// ESM .js + .d.ts into dist/ (tsconfig.lib.json), plus dist/styles.css (the components' styles,
// exported as `realtime-client/styles.css`) and a declaration for it.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const clientDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(clientDir, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
const built = spawnSync(process.execPath, [tsc, '-p', join(clientDir, 'tsconfig.lib.json')], { cwd: clientDir, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
// src/react/styles.css @imports its parts (for Vite); the package gets them inlined, in that order.
const stylesDir = join(clientDir, 'src', 'react');
const entry = readFileSync(join(stylesDir, 'styles.css'), 'utf8');
const inlined = entry.replace(/^@import '([^']+)';$/gm, (_, part) => readFileSync(join(stylesDir, part), 'utf8').trimEnd());
if (/@import/.test(inlined)) throw new Error('build-lib: an @import was left in styles.css');
writeFileSync(join(dist, 'styles.css'), inlined);
writeFileSync(join(dist, 'styles.css.d.ts'), '// `import "realtime-client/styles.css"` is a side-effect import: nothing to type.\nexport {};\n');
