import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { handlerTypes } from '../../src/core/handlers/registry';
import { SINK_TYPES } from '../../src/extension/sinks/sinkFields';
import { DEFAULT_COLUMNS } from '../../src/shared/tailProtocol';

interface Manifest {
  activationEvents: string[];
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations: string[] } };
  contributes: {
    commands: { command: string; title: string; category: string }[];
    menus: Record<string, { command: string }[]>;
    views: Record<string, { id: string; name: string }[]>;
    viewsContainers: { activitybar: { id: string; icon: string }[] };
    viewsWelcome: { view: string; contents: string }[];
    configuration: { properties: Record<string, { scope?: string; default?: unknown; items?: { properties: { type: { enum: string[] } } } }> };
    walkthroughs: { steps: { media: { markdown: string }; description: string }[] }[];
  };
  icon: string;
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;
const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
const registered = new Set([...readFileSync('src/extension/extension.ts', 'utf8').matchAll(/command\(\s*'(flespi\.[\w.]+)'/g)].map((m) => m[1]!));

test('manifest: every contributed command is registered, titled and in the flespi category, and vice versa', () => {
  assert.deepEqual([...contributed].sort(), [...registered].sort());
  for (const c of manifest.contributes.commands) {
    assert.equal(c.category, 'flespi', c.command);
    assert.ok(c.title.length > 0, c.command);
  }
});

test('manifest: menus, welcome links and walkthrough buttons only use commands that exist', () => {
  for (const [menu, items] of Object.entries(manifest.contributes.menus))
    for (const item of items) assert.ok(contributed.has(item.command), `${menu}: ${item.command}`);
  const linked = [
    ...manifest.contributes.viewsWelcome.map((w) => w.contents),
    ...manifest.contributes.walkthroughs.flatMap((w) => w.steps.map((s) => s.description)),
  ].flatMap((text) => [...text.matchAll(/\(command:(flespi\.[\w.]+)\)/g)].map((m) => m[1]!));
  assert.ok(linked.includes('flespi.setToken') && linked.includes('flespi.useSandbox'));
  for (const command of linked) assert.ok(contributed.has(command), command);
});

test('manifest: views, icons and walkthrough media exist; activation stays minimal', () => {
  assert.deepEqual(
    manifest.contributes.views.flespi!.map((v) => [v.id, v.name]),
    [
      ['flespi.channels', 'Channels'],
      ['flespi.sinks', 'Sinks'],
    ],
  );
  assert.ok(existsSync(manifest.contributes.viewsContainers.activitybar[0]!.icon));
  assert.ok(existsSync(manifest.icon));
  for (const step of manifest.contributes.walkthroughs[0]!.steps) assert.ok(existsSync(step.media.markdown), step.media.markdown);
  assert.deepEqual(manifest.activationEvents.sort(), ['onStartupFinished', 'onWebviewPanel:flespi.tail']);
});

test('manifest: the sink schema lists the types the registry builds; workspaces cannot redirect the token', () => {
  const properties = manifest.contributes.configuration.properties;
  assert.deepEqual(properties['flespi.sinks']!.items!.properties.type.enum.sort(), [...handlerTypes].sort());
  assert.deepEqual(SINK_TYPES.map((t) => t.type).sort(), [...handlerTypes].sort());
  assert.equal(properties['flespi.baseUrl']!.scope, 'machine');
  assert.equal(properties['flespi.mqttUrl']!.scope, 'machine');
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
  for (const key of manifest.capabilities.untrustedWorkspaces.restrictedConfigurations) assert.ok(properties[key], key);
  assert.ok(!Object.keys(properties).some((key) => /token|password|secret/i.test(key)), 'no setting holds a secret');
});

test('manifest: the default tail columns are the ones the tail falls back to', () => {
  assert.deepEqual(manifest.contributes.configuration.properties['flespi.tail.columns']!.default, [...DEFAULT_COLUMNS]);
});
