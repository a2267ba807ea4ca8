// The receiver itself dies: `flespi-receiver run <config>` (its own process, file checkpoint, an
// HTTP sink in this process) is SIGKILLed while the sink holds a batch it has already stored but
// not yet answered, then started again with the same config. "Nothing lost": it resumes from the
// checkpoint of the last batch it completed, and every id arrives. The batch in flight at the kill
// is sent again (at-least-once): at most one batch of duplicates, counted and reported.
//
// With the MQTT source the broker session is the checkpoint: what the killed receiver had not
// acknowledged, and what was published while it was down, comes when it reconnects with the same
// client id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { CHANNEL, HttpSink, Injector, Ledger, control, numbered, range, startCli, waitUntil, type CliProcess } from './support';

const LIMIT_COUNT = 100;
/** The batch the sink is holding when the receiver is killed. */
const KILLED_IN_BATCH = 5;

/** Makes the sink hold its answer to batch KILLED_IN_BATCH (the receiver waits mid-batch) until released. */
function holdAnswer(http: HttpSink): { readonly holding: boolean; release(): void } {
  let release: () => void = () => {};
  const hold = { holding: false, release: () => release() };
  http.beforeAnswer = async () => {
    if (http.batches.length !== KILLED_IN_BATCH) return;
    hold.holding = true;
    await new Promise<void>((resolve) => (release = resolve));
  };
  return hold;
}

const TIMEOUT = { timeout: 90_000 };

let sandbox: Sandbox;
let dir: string;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  dir = await mkdtemp(join(tmpdir(), 'reliability-crash-'));
});

after(async () => {
  await sandbox?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the CLI receiver is SIGKILLed mid-batch and restarted: it resumes from the file checkpoint and every id arrives', TIMEOUT, async (t) => {
  const ledger = new Ledger(['http']);
  const http = await new HttpSink(ledger, 'http').listen();
  const checkpoint = join(dir, 'state', 'channel.checkpoint.json');
  const config = join(dir, 'receiver.json');
  await writeFile(
    config,
    JSON.stringify({
      flespi: { baseUrl: sandbox.restUrl },
      channel: CHANNEL,
      source: { limitCount: LIMIT_COUNT, timeout: 1 },
      handlers: [{ type: 'http', name: 'http', url: http.url, timeoutMs: 10_000 }],
      checkpoint,
      receiver: { retry: { initialMs: 100, maxMs: 1000 } },
    }),
  );
  const env = { FLESPI_TOKEN: sandbox.token };
  sandbox.inject(CHANNEL, numbered(1, 1500));

  const hold = holdAnswer(http);
  let cli: CliProcess | undefined;
  try {
    cli = await startCli(['run', config], { env });
    await waitUntil(
      () => hold.holding,
      () => `the sink never got batch ${KILLED_IN_BATCH}; stderr: ${cli!.stderr()}`,
    );
    cli.child.kill('SIGKILL');
    assert.equal(await cli.exit, null, 'killed by the signal');
    hold.release();

    const saved = JSON.parse(await readFile(checkpoint, 'utf8')) as { currKey: number };
    assert.equal(saved.currKey, (KILLED_IN_BATCH - 1) * LIMIT_COUNT + 1, 'the checkpoint is the one after the last completed batch');

    sandbox.inject(CHANNEL, numbered(1501, 500)); // more arrives while the receiver is down
    http.beforeAnswer = undefined;
    cli = await startCli(['run', config], { env });
    const expected = range(1, 2000);
    await waitUntil(
      () => ledger.complete(expected),
      () => `${ledger.summary(expected)}; stderr: ${cli!.stderr()}`,
    );
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exit, 0, `a graceful stop after the restart; stderr: ${cli.stderr()}`);

    ledger.assertAllArrived(t, expected);
    assert.equal(
      http.batches[KILLED_IN_BATCH]![0],
      (KILLED_IN_BATCH - 1) * LIMIT_COUNT + 1,
      'the restarted receiver began with the batch that was in flight at the kill',
    );
    const duplicates = ledger.duplicates('http');
    t.diagnostic(`duplicates after the kill: ${duplicates} (the batch the sink had stored but not answered)`);
    assert.ok(duplicates <= LIMIT_COUNT, `at most one batch is delivered twice, got ${duplicates} duplicates`);
    assert.equal((JSON.parse(await readFile(checkpoint, 'utf8')) as { currKey: number }).currKey, 2001, 'the final checkpoint is after the last message');
  } finally {
    hold.release();
    cli?.child.kill('SIGKILL');
    await http.close();
  }
});

test(
  'the CLI receiver with the MQTT source is SIGKILLed mid-batch and restarted: the broker session hands back what it had not acknowledged, and every id arrives',
  TIMEOUT,
  async (t) => {
    const channel = 1002; // the REST case above used 1001
    const ledger = new Ledger(['http']);
    const http = await new HttpSink(ledger, 'http').listen();
    const config = join(dir, 'receiver-mqtt.json');
    await writeFile(
      config,
      JSON.stringify({
        flespi: { baseUrl: sandbox.restUrl },
        channel,
        source: { type: 'mqtt', url: sandbox.mqttUrl, clientId: 'reliability-crash', batchMaxMessages: LIMIT_COUNT, batchMaxWaitMs: 50 },
        handlers: [{ type: 'http', name: 'http', url: http.url, timeoutMs: 10_000 }],
        receiver: { retry: { initialMs: 100, maxMs: 1000 } },
      }),
    );
    const env = { FLESPI_TOKEN: sandbox.token };
    const injector = new Injector({ restUrl: sandbox.restUrl, token: sandbox.token, epoch: 1 }, channel);
    const subscribed = async () =>
      ((await control(sandbox.restUrl, sandbox.token, 'GET', '/sandbox/info')) as { result: [{ mqtt_clients: number }] }).result[0].mqtt_clients > 0;

    const hold = holdAnswer(http);
    let cli: CliProcess | undefined;
    try {
      cli = await startCli(['run', config], { env });
      await waitUntil(subscribed, () => `the receiver did not subscribe; stderr: ${cli!.stderr()}`);
      for (let i = 0; i < 15; i++) await injector.inject(100);
      await waitUntil(
        () => hold.holding,
        () => `the sink never got batch ${KILLED_IN_BATCH}; stderr: ${cli!.stderr()}`,
      );
      cli.child.kill('SIGKILL');
      assert.equal(await cli.exit, null, 'killed by the signal');
      hold.release();

      for (let i = 0; i < 5; i++) await injector.inject(100); // published while the receiver is down: the session keeps them
      http.beforeAnswer = undefined;
      cli = await startCli(['run', config], { env });
      const expected = range(1, 2000);
      await waitUntil(
        () => ledger.complete(expected),
        () => `${ledger.summary(expected)}; stderr: ${cli!.stderr()}`,
      );
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exit, 0, `a graceful stop after the restart; stderr: ${cli.stderr()}`);

      ledger.assertAllArrived(t, expected);
      const duplicates = ledger.duplicates('http');
      t.diagnostic(`duplicates after the kill: ${duplicates} (what the sink had stored but the killed receiver never acknowledged to the broker)`);
      assert.ok(duplicates <= LIMIT_COUNT, `at most one batch is delivered twice, got ${duplicates} duplicates`);
    } finally {
      hold.release();
      cli?.child.kill('SIGKILL');
      await http.close();
    }
  },
);
