// flespi misbehaves for a while (fault injection over the sandbox's control API, the sandbox in its
// own process): rate limits, then server errors, then broken JSON, then requests that hang past the
// client's timeout. "Nothing lost": every message injected before, during and after reaches every
// sink; faults hit the fetch, never a sink, so no sink sees a message twice.
//
// Over MQTT the broker drops every client connection a few times mid-stream: the persistent session
// keeps what was not acknowledged, so everything arrives; what was received but not yet acknowledged
// when the connection dropped comes again (counted and reported).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient } from '../../src/core/flespi/client';
import { FlespiError } from '../../src/core/errors';
import { HttpHandler } from '../../src/core/handlers/http';
import { WialonHandler } from '../../src/core/handlers/wialon';
import { Receiver, type SourceErrorEvent } from '../../src/core/receiver/receiver';
import { MqttSource } from '../../src/core/sources/mqtt';
import { RestSource } from '../../src/core/sources/rest';
import { CHANNEL, HttpSink, Injector, Ledger, WialonSink, control, delay, startSandboxProcess, waitUntil, type SandboxProcess } from './support';

const TIMEOUT = { timeout: 90_000 };

let sandbox: SandboxProcess;

before(async () => {
  sandbox = await startSandboxProcess();
});

after(async () => {
  await sandbox?.stop();
});

test('429s, then 500/503s, then malformed JSON, then hangs past the timeout: every message arrives at every sink, none twice', TIMEOUT, async (t) => {
  const ledger = new Ledger(['http', 'wialon']);
  const http = await new HttpSink(ledger, 'http').listen();
  const wialon = await new WialonSink(ledger, 'wialon').listen();
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, timeoutMs: 700 });
  const receiver = new Receiver({
    source: new RestSource({ client, channelId: CHANNEL, limitCount: 100, timeout: 1 }),
    handlers: [
      new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 5000 }, 'http'),
      new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 2000, window: 16, connectTimeoutMs: 2000 }, 'wialon'),
    ],
    retry: { initialMs: 50, maxMs: 400 },
  });
  const errors: SourceErrorEvent[] = [];
  receiver.on('source-error', (e) => errors.push(e));
  const injector = new Injector(sandbox);
  const fault = (kind: string, count: number, extra: object = {}) =>
    control(sandbox.restUrl, sandbox.token, 'POST', '/sandbox/faults', { kind, count, match: '/messages', ...extra });
  try {
    await injector.inject(200);
    await fault('429', 1, { retryAfter: 1 });
    await fault('429', 3);
    await fault('500', 3);
    await fault('503', 2);
    await fault('malformed', 3);
    await fault('hang', 2);
    injector.start(10, 50);
    await receiver.start();
    const pendingFaults = async () =>
      ((await control(sandbox.restUrl, sandbox.token, 'GET', '/sandbox/info')) as { result: [{ faults: unknown[] }] }).result[0].faults.length;
    await waitUntil(
      async () => (await pendingFaults()) === 0,
      () => 'faults still pending',
    );
    await injector.stop();
    const expected = injector.injected;
    await ledger.waitForAll(expected, () => wialon.sync());
    ledger.assertAllArrived(t, expected);
    for (const sink of ledger.sinkNames) assert.equal(ledger.duplicates(sink), 0, `${sink} got no message twice`);

    const kinds = errors.map((e) => (e.error instanceof FlespiError ? e.error.kind : e.error.name));
    t.diagnostic(`source errors, in order: ${kinds.join(', ')}`);
    assert.deepEqual(kinds, [...Array(4).fill('rate-limited'), ...Array(5).fill('server'), ...Array(3).fill('malformed'), ...Array(2).fill('timeout')]);
    assert.ok(
      errors.every((e) => !e.fatal && e.phase === 'fetch'),
      'every fault was retried',
    );
    assert.ok(errors[0]!.retryInMs! >= 1000, `Retry-After: 1 was honoured (waited ${errors[0]!.retryInMs} ms)`);
    assert.match(errors.at(-1)!.error.message, /no answer from http:\/\/127\.0\.0\.1:\d+ within 1\.7 s/);
    assert.equal(receiver.state, 'running', 'the receiver recovered by itself');
  } finally {
    await injector.stop();
    await receiver.stop();
    await Promise.all([http.close(), wialon.close()]);
  }
});

test(
  'MQTT: the broker drops every client connection three times mid-stream; the session keeps the rest and every message arrives at every sink',
  TIMEOUT,
  async (t) => {
    const channel = 1002; // the REST case above used 1001
    const ledger = new Ledger(['http', 'wialon']);
    const http = await new HttpSink(ledger, 'http').listen();
    const wialon = await new WialonSink(ledger, 'wialon').listen();
    const source = new MqttSource({
      url: `mqtt://127.0.0.1:${sandbox.mqttPort}`,
      token: sandbox.token,
      channelId: channel,
      clientId: `reliability-drops-${Date.now()}`,
      batchMaxMessages: 50,
      batchMaxWaitMs: 50,
      reconnect: { initialMs: 100, maxMs: 500 },
    });
    const receiver = new Receiver({
      source,
      handlers: [
        new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 5000 }, 'http'),
        new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 2000, window: 16, connectTimeoutMs: 2000 }, 'wialon'),
      ],
      retry: { initialMs: 50, maxMs: 400 },
    });
    const injector = new Injector(sandbox, channel);
    try {
      await receiver.start();
      injector.start(10, 25);
      let dropped = 0;
      for (let i = 0; i < 3; i++) {
        await waitUntil(
          () => ledger.distinct('http') >= 150 * (i + 1),
          () => ledger.summary(injector.injected),
        );
        dropped += ((await control(sandbox.restUrl, sandbox.token, 'POST', '/sandbox/mqtt/drop-clients')) as { result: [{ dropped: number }] }).result[0]
          .dropped;
        await delay(300);
      }
      await waitUntil(
        () => ledger.distinct('http') >= 600,
        () => ledger.summary(injector.injected),
      );
      await injector.stop();
      const expected = injector.injected;
      await ledger.waitForAll(expected, () => wialon.sync());
      wialon.sync();
      t.diagnostic(`reconnects ${source.stats.reconnects}, redelivered by the broker ${source.stats.redelivered}`);
      ledger.assertAllArrived(t, expected);
      assert.ok(
        dropped >= 3 && source.stats.reconnects >= 3,
        `the connection was dropped and re-established three times (reconnects: ${source.stats.reconnects})`,
      );
    } finally {
      await injector.stop();
      await receiver.stop();
      await Promise.all([http.close(), wialon.close()]);
    }
  },
);
