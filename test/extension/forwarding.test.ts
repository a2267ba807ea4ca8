import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { silentLogger } from '../../src/core/logger';
import { FileCheckpointStore } from '../../src/core/receiver/checkpoint';
import { FileLock } from '../../src/core/receiver/lock';
import { MqttSource } from '../../src/core/sources/mqtt';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { ForwardingManager, type ForwardingDeps, type ForwardingSpec } from '../../src/extension/forwarding/manager';
import { ForwardingRecords, recordName } from '../../src/extension/forwarding/records';

const ROOT = resolve(__dirname, '../..');
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

function deps(sandbox: Sandbox, dir: string, records: ForwardingRecords, token = sandbox.token): ForwardingDeps {
  return {
    build: async (spec) => ({
      source: new RestSource({ client: new FlespiClient({ token, baseUrl: sandbox.restUrl }), channelId: spec.channelId, timeout: 1 }),
      handlers: spec.sinks.map((sink) => new NdjsonFileHandler(join(dir, `${sink}.ndjson`), false, sink)),
      checkpoints: new FileCheckpointStore(join(dir, `channel-${spec.channelId}.json`)),
    }),
    records,
    log: silentLogger,
    receiverOptions: { retry: { initialMs: 10, maxMs: 50 } },
  };
}

async function idents(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { ident: string }).ident);
}

test('forwarding: runs, is persisted, and after a "reload" resumes from the checkpoint without duplicates', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  const records = new ForwardingRecords(join(dir, 'forwardings'));
  try {
    const channelId = sandbox.channels[0]!.id;
    const spec: ForwardingSpec = { channelId, channelName: 'first', sinks: ['a', 'b'], connection: 'sandbox' };
    sandbox.inject(
      channelId,
      ['m1', 'm2', 'm3'].map((ident) => ({ ident, timestamp: 1_700_000_000 })),
    );

    const first = new ForwardingManager(deps(sandbox, dir, records));
    const forwarding = await first.start(spec);
    await until(first, () => forwarding.messagesForwarded === 3);
    assert.deepEqual(await records.list(), [spec]);
    assert.equal(first.sinkStatus('a')[0]!.stats!.totalMessages, 3);
    assert.equal(first.sinkStatus('b')[0]!.stats!.failures, 0);
    await first.suspendAll();
    assert.deepEqual(first.list(), []);
    assert.deepEqual(await records.list(), [spec], 'suspending keeps the record for the next window');

    sandbox.inject(
      channelId,
      ['m4', 'm5'].map((ident) => ({ ident, timestamp: 1_700_000_001 })),
    );
    const second = new ForwardingManager(deps(sandbox, dir, records));
    assert.deepEqual(await second.resume('other-connection'), []);
    assert.deepEqual(second.list(), [], 'forwardings of another connection stay asleep');
    assert.deepEqual(await second.resume('sandbox'), []);
    const resumed = second.get(channelId)!;
    await until(second, () => resumed.messagesForwarded === 2);
    for (const sink of ['a', 'b']) assert.deepEqual(await idents(join(dir, `${sink}.ndjson`)), ['m1', 'm2', 'm3', 'm4', 'm5']);

    await second.stop(channelId);
    assert.deepEqual(await records.list(), [], 'a stopped forwarding does not resume');
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
    const manager = new ForwardingManager(deps(sandbox, dir, new ForwardingRecords(join(dir, 'forwardings')), 'x'.repeat(64)));
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
  const records = new ForwardingRecords(join(dir, 'forwardings'));
  try {
    const channelId = sandbox.channels[0]!.id;
    const manager = new ForwardingManager(deps(sandbox, dir, records));
    const first = await manager.start({ channelId, channelName: 'c', sinks: ['a', 'b'], connection: 'sandbox' });
    sandbox.inject(channelId, [{ ident: 'm1', timestamp: 1_700_000_000 }]);
    await until(manager, () => first.messagesForwarded === 1);

    await manager.dropSink('a');
    assert.deepEqual(
      (await records.list()).map((s) => s.sinks),
      [['b']],
    );
    const second = manager.get(channelId)!;
    assert.deepEqual(second.spec.sinks, ['b']);
    sandbox.inject(channelId, [{ ident: 'm2', timestamp: 1_700_000_001 }]);
    await until(manager, () => second.messagesForwarded === 1);
    assert.deepEqual(await idents(join(dir, 'a.ndjson')), ['m1']);
    assert.deepEqual(await idents(join(dir, 'b.ndjson')), ['m1', 'm2']);

    await manager.dropSink('b');
    assert.deepEqual(await records.list(), []);
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
      ...deps(sandbox, dir, new ForwardingRecords(join(dir, 'forwardings'))),
      // The options the extension's controller passes when flespi.forwarding.source is "mqtt".
      build: async (spec) => ({
        source: new MqttSource({
          url: sandbox.mqttUrl,
          token: sandbox.token,
          channelId: spec.channelId,
          clientId: `flespi-vscode-${spec.channelId}-test`,
          gapFill: { client },
        }),
        handlers: spec.sinks.map((sink) => new NdjsonFileHandler(join(dir, `${sink}.ndjson`), false, sink)),
        checkpoints: new FileCheckpointStore(join(dir, `channel-${spec.channelId}.json`)),
      }),
    });
    const forwarding = await manager.start({ channelId, channelName: 'c', sinks: ['a'], connection: 'sandbox' });
    await until(manager, () => forwarding.state === 'running');
    sandbox.inject(
      channelId,
      ['q1', 'q2', 'q3'].map((ident) => ({ ident, timestamp: 1_700_000_000 })),
    );
    await until(manager, () => forwarding.messagesForwarded === 3);
    assert.deepEqual(await idents(join(dir, 'a.ndjson')), ['q1', 'q2', 'q3']);
    await manager.stop(channelId);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- one window per forwarding (issue 11, case 5) ------------------------------------------------
// Each ForwardingManager below is one VS Code window: its own FileLock objects, the records folder and
// lock files shared through the file system as the windows of one profile share globalStorage.

/** A window: the manager with the extension's lock naming and the sink scope `scope`. */
function window(sandbox: Sandbox, dir: string, name: string, scope = 'user'): { manager: ForwardingManager; records: ForwardingRecords } {
  const records = new ForwardingRecords(join(dir, 'forwardings'));
  const manager = new ForwardingManager({
    ...deps(sandbox, dir, records),
    lock: (spec) => new FileLock(join(records.dir, `${recordName(spec)}.lock`), `workspace "${name}"`),
    scope: () => scope,
  });
  return { manager, records };
}

test('forwarding in two windows: the second window shows where it runs instead of running it again; once the first closes, the second takes over from the checkpoint, nothing twice', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  try {
    const channelId = sandbox.channels[0]!.id;
    const spec: ForwardingSpec = { channelId, channelName: 'c', sinks: ['a'], connection: 'sandbox' };
    const a = window(sandbox, dir, 'A');
    const b = window(sandbox, dir, 'B');
    sandbox.inject(
      channelId,
      ['m1', 'm2'].map((ident) => ({ ident, timestamp: 1_700_000_000 })),
    );
    const running = await a.manager.start(spec);
    await until(a.manager, () => running.messagesForwarded === 2);

    // Window B starts (a reload of another window): it must not run the same forwarding.
    assert.deepEqual(await b.manager.resume('sandbox'), []);
    const shown = b.manager.get(channelId)!;
    assert.equal(shown.state, 'elsewhere');
    assert.equal(shown.owner?.pid, process.pid);
    assert.equal(shown.where, `another window (pid ${process.pid}, workspace "A")`);
    assert.equal(shown.receiver, undefined, 'no receiver in window B');
    await assert.rejects(b.manager.stop(channelId), /is forwarded in another window .*: stop it in that window/);
    const again = await b.manager.start(spec);
    assert.equal(again.state, 'elsewhere', 'starting it in B too is refused the same way');
    assert.equal(await b.manager.adoptOrphans(), true, 'still running in A');

    sandbox.inject(channelId, [{ ident: 'm3', timestamp: 1_700_000_001 }]);
    await until(a.manager, () => running.messagesForwarded === 3);
    await a.manager.suspendAll(); // window A closes
    sandbox.inject(channelId, [{ ident: 'm4', timestamp: 1_700_000_002 }]);
    assert.equal(await b.manager.adoptOrphans(), false, 'nothing left elsewhere');
    const adopted = b.manager.get(channelId)!;
    assert.equal(adopted.state === 'elsewhere', false);
    await until(b.manager, () => adopted.messagesForwarded === 1);
    assert.deepEqual(await idents(join(dir, 'a.ndjson')), ['m1', 'm2', 'm3', 'm4'], 'every message once, in order');
    await b.manager.stop(channelId);
    assert.deepEqual(await b.records.list(), []);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding records: windows change only their own forwarding, so none overwrites a forwarding another window started or stopped', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  try {
    const [first, second] = sandbox.channels;
    const a = window(sandbox, dir, 'A');
    const b = window(sandbox, dir, 'B');
    await a.manager.start({ channelId: first!.id, channelName: 'one', sinks: ['a'], connection: 'sandbox' });
    await b.manager.start({ channelId: second!.id, channelName: 'two', sinks: ['b'], connection: 'sandbox' });
    assert.deepEqual((await a.records.list()).map((s) => s.channelName).sort(), ['one', 'two']);
    await a.manager.stop(first!.id);
    await b.manager.suspendAll(); // B closes after A stopped its forwarding
    assert.deepEqual(
      (await a.records.list()).map((s) => [s.channelName, s.scope]),
      [['two', 'user']],
      "B closing kept its own record and did not bring back A's",
    );
    await a.manager.suspendAll();
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding held by another process (a window of another extension host): listed with its pid; taken over once that process is gone', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  const spec: ForwardingSpec = { channelId: sandbox.channels[0]!.id, channelName: 'c', sinks: ['a'], connection: 'sandbox', scope: 'user' };
  const { manager, records } = window(sandbox, dir, 'B');
  await records.put(spec);
  const lockFile = join(records.dir, `${recordName(spec)}.lock`);
  const holder = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { FileLock } = require(${JSON.stringify(join(ROOT, 'src/core/receiver/lock.ts'))}); new FileLock(${JSON.stringify(lockFile)}, 'workspace "A"').acquire().then(() => { console.log('held'); setTimeout(() => {}, 60000); });`,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
    });
    await manager.resume('sandbox');
    const forwarding = manager.get(spec.channelId)!;
    assert.equal(forwarding.state, 'elsewhere');
    assert.equal(forwarding.owner?.pid, holder.pid);
    assert.equal(forwarding.where, `another window (pid ${holder.pid}, workspace "A")`);

    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    assert.equal(await manager.adoptOrphans(), false);
    assert.notEqual(manager.get(spec.channelId)!.state, 'elsewhere', 'the stale lock of the dead window was taken over');
    sandbox.inject(spec.channelId, [{ ident: 'k1', timestamp: 1_700_000_000 }]);
    await until(manager, () => manager.get(spec.channelId)!.messagesForwarded === 1);
    await manager.suspendAll();
  } finally {
    holder.kill('SIGKILL');
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forwarding records of another sink scope (another workspace) are not resumed; a record from before scopes is claimed by the window that runs it', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-forwarding-'));
  try {
    const [first, second] = sandbox.channels;
    const { manager, records } = window(sandbox, dir, 'B', 'ws-b');
    await records.put({ channelId: first!.id, channelName: 'theirs', sinks: ['a'], connection: 'sandbox', scope: 'ws-a' });
    await records.put({ channelId: second!.id, channelName: 'legacy', sinks: ['b'], connection: 'sandbox' });
    await manager.resume('sandbox');
    assert.equal(manager.get(first!.id), undefined, "workspace A's forwarding (its sinks are A's) does not run in B");
    assert.ok(manager.get(second!.id));
    const scopes = Object.fromEntries((await records.list()).map((s) => [s.channelName, s.scope]));
    assert.deepEqual(scopes, { theirs: 'ws-a', legacy: 'ws-b' }, 'the legacy record now belongs to the window that runs it');
    await manager.suspendAll();
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
