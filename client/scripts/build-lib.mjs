// npm run build:lib (also `prepack`, so `npm pack` always packs a fresh build): the library as
// ESM .js + .d.ts into dist/ (tsconfig.lib.json), plus dist/styles.css (the components' styles,
// exported as `realtime-client/styles.css`) and a declaration for it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const clientDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(clientDir, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
const built = spawnSync(process.execPath, [tsc, '-p', join(clientDir, 'tsconfig.lib.json')], { cwd: clientDir, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
copyFileSync(join(clientDir, 'src', 'react', 'styles.css'), join(dist, 'styles.css'));
writeFileSync(join(dist, 'styles.css.d.ts'), '// `import "realtime-client/styles.css"` is a side-effect import: nothing to type.\nexport {};\n');
