// Bundles the CLI, the library, the extension and the webview with esbuild into dist/.
// Usage: node scripts/build.mjs [--watch] [--production] [--quiet] [--outdir=DIR]   (DIR: dist by default)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';
import { handlerTypings } from './handler-typings.mjs';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const quiet = args.has('--quiet');
// Tests that pack or bundle build into a folder of their own, so a parallel build of dist/ cannot tear their files.
const outdir = [...args].find((a) => a.startsWith('--outdir='))?.slice('--outdir='.length) ?? 'dist';

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: quiet ? 'error' : 'info',
  legalComments: 'none',
};

const node = { ...common, outdir, platform: 'node', format: 'cjs', target: 'node20' };

// axios bundles the `form-data` package (and through it mime-db, 134 KB) for multipart bodies,
// which we never send. Without it axios falls back to Node's own FormData when one is sent; the
// shim must not touch globalThis.FormData itself, as that loads Node's fetch stack at start.
/** @type {import('esbuild').Plugin} */
const nodeFormData = {
  name: 'node-form-data',
  setup(build) {
    build.onResolve({ filter: /^form-data$/ }, () => ({ path: 'form-data', namespace: 'node-form-data' }));
    build.onLoad({ filter: /.*/, namespace: 'node-form-data' }, () => ({ contents: 'module.exports = undefined;', loader: 'js' }));
  },
};

// Parts of the extension that activation does not need are separate bundles, loaded on first use:
// every kilobyte in dist/extension.js is compiled before activate() runs. The CLI shares them (it
// then compiles sucrase only for custom handlers).
// Only whole npm packages and the sandbox (which shares no classes with the extension) qualify:
// a module of ours in two bundles would be two classes, and `instanceof` would fail across them.
const resolvePackage = createRequire(import.meta.url).resolve;
const lazyBundles = {
  sucrase: { filter: /^sucrase$/, entry: resolvePackage('sucrase') }, // custom handlers only
  sandbox: { filter: /\/sandbox\/index(\.js)?$/, entry: 'src/sandbox/index.ts' }, // "Use Local Sandbox" only
  axios: { filter: /^axios$/, entry: resolvePackage('axios') }, // the first REST request
  mqtt: { filter: /^mqtt$/, entry: resolvePackage('mqtt') }, // a tail, an MQTT source or sink
};
/** @type {import('esbuild').Plugin} */
const loadLazily = {
  name: 'load-lazily',
  setup(build) {
    // The import becomes a bundled module that requires the separate file: esbuild then loads it
    // when the importing code first runs, and named imports work as for any CommonJS module.
    for (const [name, { filter }] of Object.entries(lazyBundles)) {
      build.onResolve({ filter }, () => ({ path: name, namespace: 'load-lazily' }));
    }
    build.onLoad({ filter: /.*/, namespace: 'load-lazily' }, ({ path }) => ({ contents: `module.exports = require('./${path}.js');`, loader: 'js' }));
    build.onResolve({ filter: /.*/, namespace: 'load-lazily' }, ({ path }) => ({ path, external: true }));
  },
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  { ...node, entryPoints: { cli: 'src/cli/main.ts' }, plugins: [nodeFormData, loadLazily] },
  // The npm package's entry (`require('flespi-receiver')`); its types come from tsconfig.lib.json.
  { ...node, entryPoints: { lib: 'src/index.ts' }, plugins: [nodeFormData, loadLazily] },
  { ...node, entryPoints: { extension: 'src/extension/extension.ts' }, external: ['vscode'], plugins: [nodeFormData, loadLazily] },
  { ...node, entryPoints: Object.fromEntries(Object.entries(lazyBundles).map(([name, { entry }]) => [name, entry])), plugins: [nodeFormData] },
  {
    ...common,
    entryPoints: { 'webview/tail': 'webview/tail/main.ts' },
    outdir,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    loader: { '.css': 'text' },
  },
];

// The webview bundle carries npm packages whose licences ask that their notices go with it
// (esbuild drops legal comments): their licence texts go next to it, into the VSIX.
const webviewPackages = ['leaflet', 'uplot', '@vscode-elements/elements', '@tanstack/virtual-core', 'lit', 'lit-html', 'lit-element', '@lit/reactive-element'];
function writeWebviewNotices() {
  const parts = webviewPackages.flatMap((name) => {
    const dir = `node_modules/${name}`;
    const file = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'].map((f) => `${dir}/${f}`).find((f) => existsSync(f));
    if (!file) return [];
    const { version } = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
    return [`${name} ${version}\n${'='.repeat(name.length + version.length + 1)}\n\n${readFileSync(file, 'utf8').trim()}\n`];
  });
  mkdirSync(`${outdir}/webview`, { recursive: true });
  writeFileSync(`${outdir}/webview/third-party-notices.txt`, `Third-party software bundled into tail.js, with its licence notices.\n\n${parts.join('\n\n')}`);
}

// "flespi: New Handler…" writes these typings next to a new handler: generated from src/core/api.ts,
// read by the command only (never on activation). Once per build, also with --watch.
function writeHandlerTypings() {
  mkdirSync(outdir, { recursive: true });
  writeFileSync(`${outdir}/handler-typings.d.ts`, handlerTypings());
}

if (args.has('--watch')) {
  for (const b of builds) await (await esbuild.context(b)).watch();
  writeHandlerTypings();
} else {
  // esbuild works in its own process meanwhile: the TypeScript emit adds little to the build's time.
  const bundled = Promise.all(builds.map((b) => esbuild.build(b)));
  writeHandlerTypings();
  await bundled;
}
if (existsSync('webview/tail/main.ts')) writeWebviewNotices();
