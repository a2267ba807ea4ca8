// Two clients with one clientId: the broker gives the session to the newest connection. An MQTT 5
// broker that says so (DISCONNECT 0x8E: the sandbox's, like flespi's) makes the source stop with a
// clear error instead of taking the session back. MQTT 3.1.1 brokers only close the socket, and so
// does Mosquitto 2.0 for MQTT 5 clients: the source reports the repeated quick closes loudly and
// backs off instead of reconnecting in a tight loop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../../src/core/logger';
import { defaultClientId, MqttSessionTakenOverError, MqttSource } from '../../src/core/sources/mqtt';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';

const CHANNEL = 1001;

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, debug() {}, info() {}, warn() {}, error: (message) => errors.push(message) };
}

describe('MqttSource session takeover', { timeout: 30_000 }, () => {
  let broker: RunningMosquitto;
  let sandbox: Sandbox;
  before(async () => {
    broker = await startMosquitto();
    sandbox = await startSandbox({ simulate: false });
  });
  after(async () => {
    await broker?.stop();
    await sandbox?.stop();
  });

  test('MQTT 5 (sandbox broker): another client with the same clientId takes the session (DISCONNECT 0x8E); the source stops with an error naming the clientId and does not take it back', async () => {
    const clientId = 'takeover-v5';
    const log = recordingLogger();
    const source = new MqttSource({
      url: sandbox.mqttUrl,
      token: sandbox.token,
      channelId: CHANNEL,
      clientId,
      protocolVersion: 5,
      reconnect: { initialMs: 50, maxMs: 200 },
      log,
    });
    let rival: MqttClient | undefined;
    try {
      await source.open(undefined);
      rival = await mqtt.connectAsync(sandbox.mqttUrl, { clientId, username: sandbox.token, protocolVersion: 5, clean: false, reconnectPeriod: 0 });
      let rivalClosed = 0;
      rival.on('close', () => rivalClosed++);
      await assert.rejects(source.next(new AbortController().signal), (error: unknown) => {
        assert.ok(error instanceof MqttSessionTakenOverError, `got ${String(error)}`);
        assert.equal(error.retryable, false, 'the receiver must not retry it');
        assert.match(error.message, /another client connected with the same clientId "takeover-v5" and took over its session \(DISCONNECT 0x8E\)/);
        assert.match(error.message, /Give each receiver its own clientId/);
        return true;
      });
      assert.equal(source.stats.takeovers, 1);
      assert.ok(
        log.errors.some((line) => /took over its session/.test(line)),
        'logged as an error',
      );
      assert.equal(source.state, 'offline');
      await new Promise((resolve) => setTimeout(resolve, 1000)); // 20 reconnect periods of the source
      assert.equal(rivalClosed, 0, 'the source did not reconnect and take the session back');
      assert.equal(rival.connected, true);
    } finally {
      await source.close();
      await rival?.endAsync(true);
    }
  });

  for (const protocolVersion of [4, 5] as const)
    test(`Mosquitto, MQTT ${protocolVersion === 4 ? '3.1.1' : '5 (Mosquitto 2.0 closes without DISCONNECT)'}: a rival that keeps reconnecting with the same clientId is reported as a probable takeover, and the source backs off instead of a tight loop`, async () => {
      const clientId = `takeover-quick-${protocolVersion}`;
      const log = recordingLogger();
      const details: string[] = [];
      const source = new MqttSource({
        url: broker.url,
        token: 'any',
        channelId: CHANNEL,
        clientId,
        protocolVersion,
        reconnect: { initialMs: 50, maxMs: 5000 },
        log,
        onState: (state, detail) => state === 'reconnecting' && details.push(detail ?? ''),
      });
      let rival: MqttClient | undefined;
      try {
        await source.open(undefined);
        // A second receiver with the same id, reconnecting 10 times a second whenever it is kicked out.
        rival = mqtt.connect(broker.url, { clientId, protocolVersion, clean: false, reconnectPeriod: 100 });
        const watchMs = 4000;
        await new Promise((resolve) => setTimeout(resolve, watchMs));
        const reconnects = source.stats.reconnects;
        assert.ok(source.stats.takeovers >= 1, `takeover counted; reconnect details: ${details.join(' | ')}`);
        assert.ok(
          log.errors.some((line) => line.includes(`most likely another client uses the same clientId "${clientId}"`)),
          `reported loudly; errors: ${log.errors.join(' | ')}`,
        );
        assert.ok(
          details.some((d) => /another client uses the same clientId/.test(d)),
          'the state detail says so too (status lines, Sinks view)',
        );
        // Without backoff the source reconnected about every 50 ms (80 times in 4 s); with it, delays double from the third quick close.
        assert.ok(reconnects <= 12, `at most 12 reconnects in ${watchMs} ms, got ${reconnects}`);
        const delays = details.map((d) => Number(/retrying in ([\d.]+) s/.exec(d)?.[1])).filter((n) => Number.isFinite(n));
        assert.ok(Math.max(...delays) >= 0.4, `the delay grew: ${delays.join(', ')} s`);
      } finally {
        rival?.end(true);
        await source.close();
      }
    });

  test('the default clientId is stable for one position owner and differs between owners', () => {
    const a = defaultClientId(CHANNEL, undefined, undefined, '/srv/a/receiver.channel-1001.checkpoint.json');
    assert.equal(a, defaultClientId(CHANNEL, undefined, undefined, '/srv/a/receiver.channel-1001.checkpoint.json'), 'a restart resumes its own session');
    assert.notEqual(a, defaultClientId(CHANNEL, undefined, undefined, '/srv/b/receiver.channel-1001.checkpoint.json'));
    assert.notEqual(a, defaultClientId(CHANNEL));
    assert.match(a, /^flespi-receiver-1001-/);
  });
});
