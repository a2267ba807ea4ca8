// Code as it ships: scripts/build.mjs bundles each entry with esbuild into one file, where a call or a
// constant from another source file is a plain local reference. tsx loads the source file by file, and
// there every use of an import from another file is a property read through a getter: in a loop that
// runs per byte (the Wialon codec) that alone cost 25–30% once the codec was split into files. So a
// bench of such code loads it bundled, as users run it.
import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The exports of these source files (paths from the project root), bundled into one module and loaded. */
export function loadBundled<T>(...sources: string[]): T {
  const folder = mkdtempSync(join(tmpdir(), 'flespi-bench-bundle-'));
  try {
    const file = join(folder, 'bundle.js');
    const contents = sources.map((source) => `export * from ${JSON.stringify(resolve(__dirname, '..', source))};`).join('\n');
    buildSync({
      stdin: { contents, resolveDir: resolve(__dirname, '..'), loader: 'ts' },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: file,
      logLevel: 'error',
    });
    writeFileSync(join(folder, 'package.json'), '{"type":"commonjs"}');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading the file just built
    return require(file) as T;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
