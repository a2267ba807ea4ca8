// What activation loads: dist/extension.js alone. The bundles that load on first use (axios with the
// first request, MQTT.js with the first subscription or sink, the sandbox, sucrase for custom
// handlers, the tail webview) must not be required by loading the extension module or by activate().
// Built by scripts/build.mjs into a temp folder, then loaded in a child process with `vscode` stubbed.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = join(__dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'flespi-activation-'));
after(() => rmSync(out, { recursive: true, force: true }));

// The child: records every module it is asked for, stubs `vscode` with an object that answers anything.
const PROBE = `
const Module = require('node:module');
const asked = [];
const disposable = { dispose() {} };
const anything = new Proxy(function () {}, {
  get: (_t, key) => (key === 'then' ? undefined : key === Symbol.iterator ? function* () {} : key === Symbol.toPrimitive ? () => '' : typeof key === 'string' && key.startsWith('on') ? () => disposable : anything),
  apply: () => anything,
  construct: () => anything,
});
const load = Module._load;
Module._load = (request, ...rest) => {
  asked.push(request);
  return request === 'vscode' ? anything : load(request, ...rest);
};
const extension = require(process.argv[2]);
const loaded = [...asked];
Promise.resolve()
  .then(() => extension.activate({ subscriptions: [], extensionPath: process.argv[3], extensionUri: anything, globalState: anything, workspaceState: anything, secrets: anything, globalStorageUri: anything, logUri: anything, extension: anything, extensionMode: 1 }))
  .catch((error) => ({ error: String(error) }))
  .then((result) => process.stdout.write(JSON.stringify({ loaded, activated: asked.slice(loaded.length), error: result && result.error })));
`;

test('loading and activating the extension requires none of the bundles that load on first use', { timeout: 120_000 }, () => {
  execFileSync(process.execPath, ['scripts/build.mjs', '--production', '--quiet', `--outdir=${out}`], { cwd: root, stdio: 'inherit' });
  const chunks = readdirSync(out).filter((f) => f.endsWith('.js') && f !== 'extension.js' && f !== 'cli.js' && f !== 'lib.js');
  assert.ok(chunks.includes('mqtt.js') && chunks.includes('axios.js'), `the build has no separate MQTT.js and axios bundles: ${chunks.join(', ')}`);
  const probe = join(out, 'probe.cjs');
  writeFileSync(probe, PROBE);
  const child = spawnSync(process.execPath, [probe, join(out, 'extension.js'), root], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  const { loaded, activated } = JSON.parse(child.stdout) as { loaded: string[]; activated: string[] };
  const lazy = (requests: string[]) => requests.filter((r) => chunks.some((chunk) => r === `./${chunk}` || r.endsWith(`/${chunk}`)));
  assert.deepEqual(lazy(loaded), [], 'loading dist/extension.js required bundles meant for first use');
  assert.deepEqual(lazy(activated), [], 'activate() required bundles meant for first use');
});
