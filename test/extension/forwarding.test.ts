import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { silentLogger } from '../../src/core/logger';
import { FileCheckpointStore } from '../../src/core/receiver/checkpoint';
import { MqttSource } from '../../src/core/sources/mqtt';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { ForwardingManager, type ForwardingDeps, type ForwardingSpec } from '../../src/extension/forwarding/manager';
import { NdjsonFileHandler } from '../../src/extension/sinks/ndjsonFile';

/** Resolves once `check()` holds, re-checking on every change the manager reports. */
function until(manager: ForwardingManager, check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (check()) return resolve();
    const listener = () => {
      if (!check()) return;
      manager.off('change', listener);
      resolve();
    };
    manager.on('change', listener);
  });
}

function deps(sandbox: Sandbox, dir: string, saved: ForwardingSpec[][], token = sandbox.token): ForwardingDeps {
  return {
    build: async (spec) => ({
      source: new RestSource({ client: new FlespiClient({ token, baseUrl: sandbox.restUrl }), channelId: spec.channelId, timeout: 1 }),
      handlers: spec.sinks.map((sink) => new NdjsonFileHandler(join(dir, `${sink}.ndjson`), false, sink)),
      checkpoints: new FileCheckpointStore(join(dir, `channel-${spec.channelId}.json`)),
    }),
    save: (specs) => void saved.push([...specs]),
    log: silentLogger,
    receiverOptions: { retry: { initialMs: 10, maxMs: 50 } },
  };
}

async function idents(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).trim().split('\n').map((line) => (JSON.parse(line) as { ident: string }).ident);
}

test('forwarding: runs, is persisted, and after a "reload" resumes from the checkpoint without duplicates', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  const saved: ForwardingSpec[][] = [];
  try {
    const channelId = sandbox.channels[0]!.id;
    const spec: ForwardingSpec = { channelId, channelName: 'first', sinks: ['a', 'b'], connection: 'sandbox' };
    sandbox.inject(channelId, ['m1', 'm2', 'm3'].map((ident) => ({ ident, timestamp: 1_700_000_000 })));

    const first = new ForwardingManager(deps(sandbox, dir, saved));
    const forwarding = await first.start(spec);
    await until(first, () => forwarding.messagesForwarded === 3);
    assert.deepEqual(saved.at(-1), [spec]);
    assert.equal(first.sinkStatus('a')[0]!.stats!.totalMessages, 3);
    assert.equal(first.sinkStatus('b')[0]!.stats!.failures, 0);
    await first.suspendAll();
    assert.deepEqual(first.list(), []);
    assert.deepEqual(saved.at(-1), [spec], 'suspending keeps the list for the next window');

    sandbox.inject(channelId, ['m4', 'm5'].map((ident) => ({ ident, timestamp: 1_700_000_001 })));
    const second = new ForwardingManager(deps(sandbox, dir, saved), saved.at(-1));
    assert.deepEqual(await second.resume('other-connection'), []);
    assert.deepEqual(second.list(), [], 'forwardings of another connection stay asleep');
    assert.deepEqual(await second.resume('sandbox'), []);
    const resumed = second.get(channelId)!;
    await until(second, () => resumed.messagesForwarded === 2);
    for (const sink of ['a', 'b']) assert.deepEqual(await idents(join(dir, `${sink}.ndjson`)), ['m1', 'm2', 'm3', 'm4', 'm5']);

    await second.stop(channelId);
    assert.deepEqual(saved.at(-1), [], 'a stopped forwarding does not resume');
    assert.equal(second.get(channelId), undefined);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding: a rejected token stops the receiver once, with the flespi error, and keeps it listed as failed', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  try {
    const manager = new ForwardingManager(deps(sandbox, dir, [], 'x'.repeat(64)));
    const failures: Error[] = [];
    manager.on('failed', (_forwarding, error) => failures.push(error));
    const forwarding = await manager.start({ channelId: sandbox.channels[0]!.id, channelName: 'c', sinks: ['a'], connection: 'sandbox' });
    await until(manager, () => failures.length > 0);
    assert.equal(forwarding.state, 'failed');
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof FlespiError);
    assert.equal(failures[0].kind, 'auth');
    assert.equal(manager.list()[0], forwarding);
    await manager.stop(forwarding.spec.channelId);
    assert.deepEqual(manager.list(), []);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding: a removed sink leaves its forwardings, which continue to the other sinks or stop', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  const saved: ForwardingSpec[][] = [];
  try {
    const channelId = sandbox.channels[0]!.id;
    const manager = new ForwardingManager(deps(sandbox, dir, saved));
    const first = await manager.start({ channelId, channelName: 'c', sinks: ['a', 'b'], connection: 'sandbox' });
    sandbox.inject(channelId, [{ ident: 'm1', timestamp: 1_700_000_000 }]);
    await until(manager, () => first.messagesForwarded === 1);

    await manager.dropSink('a');
    assert.deepEqual(saved.at(-1)!.map((s) => s.sinks), [['b']]);
    const second = manager.get(channelId)!;
    assert.deepEqual(second.spec.sinks, ['b']);
    sandbox.inject(channelId, [{ ident: 'm2', timestamp: 1_700_000_001 }]);
    await until(manager, () => second.messagesForwarded === 1);
    assert.deepEqual(await idents(join(dir, 'a.ndjson')), ['m1']);
    assert.deepEqual(await idents(join(dir, 'b.ndjson')), ['m1', 'm2']);

    await manager.dropSink('b');
    assert.deepEqual(saved.at(-1), []);
    assert.equal(manager.get(channelId), undefined);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding: with the MQTT source the messages reach the sinks too', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  try {
    const channelId = sandbox.channels[0]!.id;
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const manager = new ForwardingManager({
      ...deps(sandbox, dir, []),
      // The options the extension's controller passes when flespi.forwarding.source is "mqtt".
      build: async (spec) => ({
        source: new MqttSource({ url: sandbox.mqttUrl, token: sandbox.token, channelId: spec.channelId, clientId: `flespi-vscode-${spec.channelId}-test`, gapFill: { client } }),
        handlers: spec.sinks.map((sink) => new NdjsonFileHandler(join(dir, `${sink}.ndjson`), false, sink)),
        checkpoints: new FileCheckpointStore(join(dir, `channel-${spec.channelId}.json`)),
      }),
    });
    const forwarding = await manager.start({ channelId, channelName: 'c', sinks: ['a'], connection: 'sandbox' });
    await until(manager, () => forwarding.state === 'running');
    sandbox.inject(channelId, ['q1', 'q2', 'q3'].map((ident) => ({ ident, timestamp: 1_700_000_000 })));
    await until(manager, () => forwarding.messagesForwarded === 3);
    assert.deepEqual(await idents(join(dir, 'a.ndjson')), ['q1', 'q2', 'q3']);
    await manager.stop(channelId);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
