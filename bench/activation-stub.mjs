// Fallback activation timing (used by bench/startup.ts only when no VS Code can run): loads
// dist/extension.js in plain Node (no tsx) against a minimal `vscode` stub and calls activate().
// Answers { value: total ms, extra: { 'require ms', 'activate ms' } } over IPC.
import Module, { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const disposable = { dispose() {} };
const event = () => disposable;
// Any property, call or construction gives this again; events give a disposable; get(name, default) gives the default.
const special = { then: undefined, event, get: (_name, fallback) => fallback, [Symbol.toPrimitive]: () => '', [Symbol.iterator]: function* () {} };
const anything = new Proxy(function () {}, {
  get: (_t, key) => (key in special ? special[key] : String(key).startsWith('on') ? event : anything),
  set: () => true,
  apply: () => anything,
  construct: () => anything,
});
// esbuild's CommonJS interop copies the module's own names, so the stub has every name of the API.
const api = readFileSync(join(root, 'node_modules', '@types', 'vscode', 'index.d.ts'), 'utf8');
const names = new Set([...api.matchAll(/^\texport (?:namespace|class|enum|const|function|let) (\w+)/gm)].map((m) => m[1]));
const stub = Object.fromEntries([...names].map((name) => [name, anything]));
const load = Module._load;
Module._load = (request, ...rest) => (request === 'vscode' ? stub : load(request, ...rest));

async function main() {
  const context = {
    subscriptions: [],
    extensionPath: root,
    extensionUri: anything,
    globalState: anything,
    workspaceState: anything,
    secrets: anything,
    globalStorageUri: anything,
    storageUri: undefined,
    extension: anything,
    environmentVariableCollection: anything,
    logUri: anything,
    extensionMode: 1,
  };
  const t0 = performance.now();
  const extension = require(join(root, 'dist', 'extension.js'));
  const loaded = performance.now();
  await extension.activate(context);
  const done = performance.now();
  process.send({ value: done - t0, extra: { 'require ms': loaded - t0, 'activate ms': done - loaded } });
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
