// Integration checks that run inside a real VS Code extension host (launched by test/vscode/run.ts).
// VS Code calls run(); it throws when a check fails. No mocha: a list of named checks with node:assert.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { scopedSecretKey, USER_SCOPE, workspaceScope } from '../../src/extension/sinks/sinkSecrets';
import { SinkStore } from '../../src/extension/sinks/sinkStore';

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
      const properties = Object.assign({}, ...(Array.isArray(sections) ? sections : [sections ?? {}]).map((s) => s.properties ?? {})) as Record<
        string,
        { default?: unknown }
      >;
      for (const [key, schema] of Object.entries(properties)) {
        if (!('default' in schema)) continue;
        assert.deepEqual(vscode.workspace.getConfiguration().inspect(key)?.defaultValue, schema.default, `default of ${key}`);
      }
    },
  ],
  [
    "sink secrets are scoped by VS Code's own workspace identity: a workspace sink's secret is not visible to a user-settings sink of the same name",
    async () => {
      // The real workspace, settings scopes and trust; SecretStorage is a map with its methods (the
      // extension's own storage belongs to its context, which a test cannot reach).
      const values = new Map<string, string>();
      const secrets = {
        get: async (key: string) => values.get(key),
        store: async (key: string, value: string) => void values.set(key, value),
        delete: async (key: string) => void values.delete(key),
        onDidChange: new vscode.EventEmitter<vscode.SecretStorageChangeEvent>().event,
      };
      const memento = { get: () => undefined, update: async () => {}, keys: () => [] };
      const context = {
        secrets,
        workspaceState: memento,
        globalState: memento,
        globalStorageUri: vscode.Uri.file(mkdtempSync(join(tmpdir(), 'flespi-suite-'))),
      } as unknown as vscode.ExtensionContext;
      const log = vscode.window.createOutputChannel('flespi suite', { log: true });
      const store = new SinkStore(context, log);
      const config = () => vscode.workspace.getConfiguration('flespi');
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      assert.ok(folder, 'the suite runs with a workspace folder');
      const workspace = workspaceScope(folder.toString());
      try {
        await store.save(
          { name: 'http', type: 'http', url: 'https://workspace.example/in', secretHeaders: ['Authorization'] },
          { headers: { Authorization: 'Bearer workspace' } },
        );
        assert.equal(config().inspect<unknown[]>('sinks')?.workspaceValue?.length, 1, 'a folder is open: the sink went to the workspace settings');
        assert.equal(store.scopeId(), workspace);
        assert.deepEqual([...values.keys()], [scopedSecretKey(workspace, 'http')]);
        assert.deepEqual(await store.secrets('http'), { headers: { Authorization: 'Bearer workspace' } });

        // The same name in the user settings, once the workspace no longer defines sinks.
        await config().update('sinks', undefined, vscode.ConfigurationTarget.Workspace);
        await config().update(
          'sinks',
          [{ name: 'http', type: 'http', url: 'https://user.example/in', secretHeaders: ['Authorization'] }],
          vscode.ConfigurationTarget.Global,
        );
        assert.equal(store.scopeId(), USER_SCOPE);
        assert.equal(await store.secrets('http'), undefined, "the user-settings sink does not get the workspace sink's header");
      } finally {
        await config().update('sinks', undefined, vscode.ConfigurationTarget.Global);
        await config().update('sinks', undefined, vscode.ConfigurationTarget.Workspace);
        store.dispose();
        log.dispose();
      }
    },
  ],
  [
    'flespi: Check Connection… runs the doctor against the sandbox and opens a Markdown report in which every check passed',
    async () => {
      await extension().activate();
      await vscode.commands.executeCommand('flespi.useSandbox');
      try {
        await vscode.commands.executeCommand('flespi.checkConnection', { id: 1001, name: 'sandbox-teltonika' });
        const report = vscode.workspace.textDocuments.find(
          (d) => d.isUntitled && d.languageId === 'markdown' && d.getText().startsWith('# flespi connection check'),
        );
        assert.ok(report, 'no untitled Markdown report was opened');
        assert.ok(
          vscode.window.visibleTextEditors.some((editor) => editor.document === report),
          'the report is shown in an editor',
        );
        const text = report.getText();
        assert.match(text, /^# flespi connection check \(sandbox\)$/m);
        assert.match(text, /channel 1001 "sandbox-teltonika"/);
        for (const id of ['token', 'channel', 'read-by-key', 'read-by-time', 'long-poll', 'mqtt', 'mqtt-share', 'clock', 'buffer', 'rate-limit']) {
          assert.match(text, new RegExp(`^\\| ✅ pass \\| \\*\\*${id}\\*\\*`, 'm'), `the report has no passed row for ${id}:\n${text}`);
        }
        assert.match(text, /\*\*10 passed, 0 warnings, 0 failed in [\d.]+ s\.\*\* Nothing failed\./);
        assert.doesNotMatch(text, /[A-Za-z0-9]{64}/, 'nothing like a token is in the report');
      } finally {
        await vscode.commands.executeCommand('flespi.disconnect');
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
