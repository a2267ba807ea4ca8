// Sink secrets are kept per scope (user settings, or one workspace): a workspace that defines a sink
// named like another workspace's never gets that one's secrets, and secrets stored before scopes
// move to the user settings by themselves but to a workspace only when the user says so.
// The backend is an in-memory key-value store with SecretStorage's three methods; the workspace
// identities and the real SecretStorage are checked in VS Code by test/vscode/suite.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  legacySecretKey,
  scopedSecretKey,
  SinkSecretVault,
  USER_SCOPE,
  workspaceScope,
  type LegacyQuestion,
  type SecretBackend,
} from '../../src/extension/sinks/sinkSecrets';

class MapBackend implements SecretBackend {
  readonly values = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}

const WS_A = workspaceScope('file:///home/me/project-a');
const WS_B = workspaceScope('file:///home/me/project-b.code-workspace');
const HEADER_A = JSON.stringify({ headers: { Authorization: 'Bearer secret-of-a' } });

test('secrets: a sink named "http" in workspace B does not get the header workspace A stored for its "http"', async () => {
  const backend = new MapBackend();
  const asked: LegacyQuestion[] = [];
  const vault = new SinkSecretVault(backend, async (q) => (asked.push(q), true));
  await vault.write(WS_A, 'http', HEADER_A);
  assert.equal(await vault.read(WS_A, 'http'), HEADER_A);
  assert.equal(await vault.read(WS_B, 'http'), undefined, 'another workspace, same sink name: nothing');
  assert.equal(await vault.read(USER_SCOPE, 'http'), undefined, 'a user-settings sink of that name: nothing');
  assert.deepEqual(asked, [], 'no question: there is no unscoped secret');
  await vault.remove(WS_B, 'http');
  assert.equal(await vault.read(WS_A, 'http'), HEADER_A, "removing B's sink leaves A's secret");
  assert.notEqual(WS_A, WS_B);
  assert.equal(workspaceScope('file:///home/me/project-a'), WS_A, 'the scope of a workspace is stable');
  assert.deepEqual([...backend.values.keys()], [scopedSecretKey(WS_A, 'http')]);
});

test('secrets stored before scopes: a user-settings sink takes them over without a question; they are then gone from the unscoped key', async () => {
  const backend = new MapBackend();
  await backend.store(legacySecretKey('http'), HEADER_A);
  const asked: LegacyQuestion[] = [];
  const logged: string[] = [];
  const vault = new SinkSecretVault(
    backend,
    async (q) => (asked.push(q), true),
    (m) => logged.push(m),
  );
  assert.equal(await vault.read(USER_SCOPE, 'http'), HEADER_A);
  assert.deepEqual(asked, []);
  assert.equal(backend.values.get(scopedSecretKey(USER_SCOPE, 'http')), HEADER_A);
  assert.equal(backend.values.has(legacySecretKey('http')), false, 'migrated once');
  assert.match(logged[0]!, /now belong to the user settings/);
  assert.equal(await vault.read(WS_B, 'http'), undefined, 'a workspace asking later gets nothing');
});

test('secrets stored before scopes: a workspace sink gets them only when the user says they are its own; a "no" leaves them for their workspace', async () => {
  const backend = new MapBackend();
  await backend.store(legacySecretKey('http'), HEADER_A);
  const answers = [false, true];
  const asked: LegacyQuestion[] = [];
  const vault = new SinkSecretVault(backend, async (q) => (asked.push(q), answers.shift()!));
  assert.equal(await vault.read(WS_B, 'http'), undefined, 'declined in B');
  assert.deepEqual(asked, [{ scope: WS_B, sinkName: 'http' }]);
  assert.equal(backend.values.get(legacySecretKey('http')), HEADER_A, 'still there for the workspace it belongs to');
  assert.equal(await vault.read(WS_A, 'http'), HEADER_A, 'accepted in A');
  assert.equal(backend.values.get(scopedSecretKey(WS_A, 'http')), HEADER_A);
  assert.equal(backend.values.has(legacySecretKey('http')), false);
  assert.equal(await vault.read(WS_A, 'http'), HEADER_A);
  assert.equal(asked.length, 2, 'asked once per scope, not on every read');
});
