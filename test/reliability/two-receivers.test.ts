// Two receivers on one position (issue 11, case 5), through `flespi-receiver run`: a second run on
// the same checkpoint refuses and names the first; a lock left by a SIGKILLed run is taken over;
// two configs on one channel over MQTT get their own broker sessions (no duplicates); and two
// receivers configured with one clientId are told so loudly instead of stealing the session from
// each other.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { assertOneLineError, CHANNEL, control, HttpSink, Injector, Ledger, numbered, range, runCli, startCli, waitUntil, type CliProcess } from './support';

const TIMEOUT = { timeout: 90_000 };

let sandbox: Sandbox;
let dir: string;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  dir = await mkdtemp(join(tmpdir(), 'reliability-two-receivers-'));
});

after(async () => {
  await sandbox?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Writes `<dir>/<name>/receiver.json` forwarding `channel` to `url`; returns its path. */
async function config(name: string, url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const file = join(folder, 'receiver.json');
  await writeFile(
    file,
    JSON.stringify({
      flespi: { baseUrl: sandbox.restUrl },
      channel: CHANNEL,
      source: { limitCount: 100, timeout: 1 },
      handlers: [{ type: 'http', name: 'http', url, timeoutMs: 10_000 }],
      receiver: { retry: { initialMs: 100, maxMs: 1000 } },
      ...extra,
    }),
  );
  return file;
}

const env = () => ({ FLESPI_TOKEN: sandbox.token });
const mqttClients = async () =>
  ((await control(sandbox.restUrl, sandbox.token, 'GET', '/sandbox/info')) as { result: [{ mqtt_clients: number }] }).result[0].mqtt_clients;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test(
  'two `run`s of one config: the second refuses with one line naming the first (pid, command) and how to proceed; the first carries on and releases the lock when it stops',
  TIMEOUT,
  async (t) => {
    const ledger = new Ledger(['http']);
    const http = await new HttpSink(ledger, 'http').listen();
    const file = await config('same-checkpoint', http.url);
    const lock = join(dir, 'same-checkpoint', `receiver.channel-${CHANNEL}.checkpoint.json.lock`);
    let first: CliProcess | undefined;
    try {
      first = await startCli(['run', file], { env: env() });
      await waitUntil(
        () => /receiving channel/.test(first!.stderr()),
        () => `the first run did not start; stderr: ${first!.stderr()}`,
      );
      const pid = first.child.pid!;

      const second = await runCli(['run', file], { env: env() });
      const line = assertOneLineError(
        second,
        new RegExp(
          `checkpoint .*receiver\\.channel-${CHANNEL}\\.checkpoint\\.json is in use by another receiver: pid ${pid} on this machine \\(flespi-receiver run ${escape(file)}\\)`,
        ),
      );
      assert.equal(second.status, 2, 'exit code 2: fix the setup');
      assert.match(line, new RegExp(`Stop that receiver first \\(kill ${pid}\\), or give this config its own "checkpoint" file`));
      t.diagnostic(line);

      sandbox.inject(CHANNEL, numbered(1, 300));
      const expected = range(1, 300);
      await waitUntil(
        () => ledger.complete(expected),
        () => `${ledger.summary(expected)}; stderr: ${first!.stderr()}`,
      );
      assert.equal(ledger.duplicates('http'), 0);
      first.child.kill('SIGTERM');
      assert.equal(await first.exit, 0, `stderr: ${first.stderr()}`);
      assert.ok(!existsSync(lock), 'the lock is gone after a graceful stop');
      const third = await startCli(['run', file], { env: env() });
      await waitUntil(
        () => /receiving channel/.test(third.stderr()),
        () => `a run after the first stopped starts; stderr: ${third.stderr()}`,
      );
      third.child.kill('SIGTERM');
      assert.equal(await third.exit, 0);
    } finally {
      first?.child.kill('SIGKILL');
      await http.close();
    }
  },
);

test('a run SIGKILLed while holding the lock: the next run takes the stale lock over, says so, and delivers', TIMEOUT, async () => {
  const ledger = new Ledger(['http']);
  const http = await new HttpSink(ledger, 'http').listen();
  const file = await config('stale-lock', http.url, { channel: 1002 });
  const lock = join(dir, 'stale-lock', 'receiver.channel-1002.checkpoint.json.lock');
  let cli: CliProcess | undefined;
  try {
    cli = await startCli(['run', file], { env: env() });
    await waitUntil(
      () => /receiving channel/.test(cli!.stderr()),
      () => `stderr: ${cli!.stderr()}`,
    );
    const killedPid = cli.child.pid!;
    cli.child.kill('SIGKILL');
    await cli.exit;
    assert.equal((JSON.parse(await readFile(lock, 'utf8')) as { pid: number }).pid, killedPid, 'SIGKILL left the lock behind');

    cli = await startCli(['run', file], { env: env() });
    await waitUntil(
      () => /receiving channel/.test(cli!.stderr()),
      () => `the run after the kill did not start; stderr: ${cli!.stderr()}`,
    );
    assert.match(
      cli.stderr(),
      new RegExp(`warn: took over ${escape(lock)}: the receiver that held it \\(pid ${killedPid} on this machine .*\\) is no longer running`),
    );
    sandbox.inject(1002, numbered(1, 100));
    await waitUntil(
      () => ledger.complete(range(1, 100)),
      () => `${ledger.summary(range(1, 100))}; stderr: ${cli!.stderr()}`,
    );
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exit, 0, `stderr: ${cli.stderr()}`);
  } finally {
    cli?.child.kill('SIGKILL');
    await http.close();
  }
});

test('MQTT: two configs on one channel with the default clientId get a session each, and each gets every message once', TIMEOUT, async (t) => {
  const channel = 1001;
  const ledger = new Ledger(['a', 'b']);
  const sinks = [await new HttpSink(ledger, 'a').listen(), await new HttpSink(ledger, 'b').listen()];
  const source = { type: 'mqtt', url: sandbox.mqttUrl, batchMaxMessages: 50, batchMaxWaitMs: 50 };
  const files = [await config('mqtt-a', sinks[0]!.url, { source }), await config('mqtt-b', sinks[1]!.url, { source })];
  const clis: CliProcess[] = [];
  const before = await mqttClients();
  try {
    for (const file of files) clis.push(await startCli(['run', file], { env: env() }));
    const stderr = () => clis.map((c, i) => `[${i}] ${c.stderr()}`).join('\n');
    await waitUntil(
      async () => (await mqttClients()) === before + 2,
      () => `both receivers connected at once (two sessions); clients: ${before} before; stderr:\n${stderr()}`,
      10_000,
    );

    const injector = new Injector({ restUrl: sandbox.restUrl, token: sandbox.token, epoch: 1 }, channel);
    for (let i = 0; i < 10; i++) {
      await injector.inject(100);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const expected = range(1, 1000);
    await waitUntil(
      () => ledger.complete(expected),
      () => `${ledger.summary(expected)}; stderr:\n${stderr()}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // late duplicates would arrive by now
    for (const sink of ['a', 'b']) t.diagnostic(`${sink}: ${ledger.distinct(sink)} distinct, ${ledger.duplicates(sink)} duplicates`);
    assert.equal(ledger.duplicates('a'), 0, 'no message twice at a');
    assert.equal(ledger.duplicates('b'), 0, 'no message twice at b');
    assert.equal(await mqttClients(), before + 2, 'both still connected');
    assert.doesNotMatch(stderr(), /took over|same clientId/);
    for (const cli of clis) cli.child.kill('SIGTERM');
    for (const cli of clis) assert.equal(await cli.exit, 0, `stderr:\n${stderr()}`);
  } finally {
    for (const cli of clis) cli.child.kill('SIGKILL');
    for (const sink of sinks) await sink.close();
  }
});

test(
  'MQTT: two configs given the same clientId: the first is told loudly that the second took its session over and stops (exit 1); the second gets everything',
  TIMEOUT,
  async () => {
    const channel = 1002;
    const ledger = new Ledger(['a', 'b']);
    const sinks = [await new HttpSink(ledger, 'a').listen(), await new HttpSink(ledger, 'b').listen()];
    const source = { type: 'mqtt', url: sandbox.mqttUrl, clientId: 'two-receivers-shared', batchMaxWaitMs: 50 };
    const files = [await config('shared-a', sinks[0]!.url, { channel, source }), await config('shared-b', sinks[1]!.url, { channel, source })];
    let first: CliProcess | undefined;
    let second: CliProcess | undefined;
    const before = await mqttClients();
    try {
      first = await startCli(['run', files[0]!], { env: env() });
      await waitUntil(
        async () => /receiving channel/.test(first!.stderr()) && (await mqttClients()) === before + 1,
        () => `stderr: ${first!.stderr()}`,
      );
      second = await startCli(['run', files[1]!], { env: env() });
      const code = await Promise.race([first.exit, new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000))]);
      assert.equal(code, 1, `the first receiver stops with an error; stderr: ${first.stderr()}`);
      assert.match(
        first.stderr(),
        /flespi-receiver: flespi MQTT at mqtt:\/\/127\.0\.0\.1:\d+: another client connected with the same clientId "two-receivers-shared" and took over its session \(DISCONNECT 0x8E\)\. .*Give each receiver its own clientId/,
      );

      const injector = new Injector({ restUrl: sandbox.restUrl, token: sandbox.token, epoch: 1 }, channel);
      await injector.inject(200);
      await waitUntil(
        () => ledger.complete(range(1, 200)) || ledger.distinct('b') === 200,
        () => `${ledger.summary(range(1, 200))}; stderr: ${second!.stderr()}`,
      );
      assert.equal(ledger.distinct('b'), 200, 'the receiver that took the session gets every message');
      assert.equal(ledger.duplicates('b'), 0);
      assert.equal(await mqttClients(), before + 1, 'nobody took the session back');
      second.child.kill('SIGTERM');
      assert.equal(await second.exit, 0, `stderr: ${second.stderr()}`);
    } finally {
      first?.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
      for (const sink of sinks) await sink.close();
    }
  },
);
