// Bundles the CLI, the extension and the webview with esbuild into dist/.
// Usage: node scripts/build.mjs [--watch] [--production] [--quiet]
import { existsSync } from 'node:fs';
import * as esbuild from 'esbuild';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const quiet = args.has('--quiet');

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: quiet ? 'error' : 'info',
  legalComments: 'none',
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  {
    ...common,
    entryPoints: { cli: 'src/cli/main.ts', extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  },
  {
    ...common,
    entryPoints: { 'webview/tail': 'webview/tail/main.ts' },
    outdir: 'dist',
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    loader: { '.css': 'text' },
  },
];

// Entry points that do not exist yet are skipped, so each part can be built on its own.
const existing = builds
  .map((b) => ({ ...b, entryPoints: Object.fromEntries(Object.entries(b.entryPoints).filter(([, f]) => existsSync(f))) }))
  .filter((b) => Object.keys(b.entryPoints).length > 0);

if (args.has('--watch')) {
  for (const b of existing) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(existing.map((b) => esbuild.build(b)));
}
