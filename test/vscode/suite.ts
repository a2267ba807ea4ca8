// Integration checks that run inside a real VS Code extension host (launched by test/vscode/run.ts).
// VS Code calls run(); it throws when a check fails. No mocha: a list of named checks with node:assert.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

const EXTENSION_ID = 'flespi-receiver.flespi-receiver';

interface Manifest {
  contributes?: {
    commands?: { command: string; title: string; category?: string }[];
    viewsContainers?: { activitybar?: { id: string; title: string }[] };
    views?: Record<string, { id: string; name: string }[]>;
    configuration?: { properties?: Record<string, { default?: unknown }> } | { properties?: Record<string, { default?: unknown }> }[];
  };
}

function extension(): vscode.Extension<unknown> {
  const found = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(found, `extension ${EXTENSION_ID} is not loaded: was it started with --extensionDevelopmentPath set to the project?`);
  return found;
}

function manifest(): Manifest {
  return extension().packageJSON as Manifest;
}

const checks: [string, () => Promise<void>][] = [
  [
    'the extension activates',
    async () => {
      await extension().activate();
      assert.equal(extension().isActive, true);
    },
  ],
  [
    'every contributed command is registered, under the "flespi" category',
    async () => {
      const contributed = manifest().contributes?.commands ?? [];
      assert.ok(contributed.length > 0, 'package.json contributes no commands');
      const registered = new Set(await vscode.commands.getCommands(true));
      const missing = contributed.filter((c) => !registered.has(c.command)).map((c) => c.command);
      assert.deepEqual(missing, [], `commands in package.json that the extension does not register: ${missing.join(', ')}`);
      const uncategorized = contributed.filter((c) => c.category !== 'flespi').map((c) => c.command);
      assert.deepEqual(uncategorized, [], `commands without the "flespi" category: ${uncategorized.join(', ')}`);
    },
  ],
  [
    'the flespi view container opens and its views can be focused',
    async () => {
      const container = manifest().contributes?.viewsContainers?.activitybar?.find((c) => c.title === 'flespi');
      assert.ok(container, 'no activity-bar container titled "flespi"');
      await vscode.commands.executeCommand(`workbench.view.extension.${container.id}`);
      const views = manifest().contributes?.views?.[container.id] ?? [];
      assert.ok(views.length > 0, `the container ${container.id} has no views`);
      for (const view of views) await vscode.commands.executeCommand(`${view.id}.focus`);
    },
  ],
  [
    'every setting reads back its declared default in a fresh profile',
    async () => {
      const sections = manifest().contributes?.configuration;
      const properties = Object.assign({}, ...(Array.isArray(sections) ? sections : [sections ?? {}]).map((s) => s.properties ?? {})) as Record<string, { default?: unknown }>;
      for (const [key, schema] of Object.entries(properties)) {
        if (!('default' in schema)) continue;
        assert.deepEqual(vscode.workspace.getConfiguration().inspect(key)?.defaultValue, schema.default, `default of ${key}`);
      }
    },
  ],
];

export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const [name, check] of checks) {
    try {
      await check();
      console.log(`ok - ${name}`);
    } catch (error) {
      failures.push(name);
      console.log(`not ok - ${name}\n  ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  console.log(`# pass ${checks.length - failures.length}\n# fail ${failures.length}`);
  if (failures.length > 0) throw new Error(`${failures.length} of ${checks.length} VS Code integration checks failed: ${failures.join('; ')}`);
}
