import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { classifyFailure } from '../../src/core/errors';
import type { Handler, HandlerContext } from '../../src/core/handler';
import { awsIotSpec, mqttSpec, MqttHandler } from '../../src/core/handlers/mqtt';
import type { HandlerEnv, HandlerSpec } from '../../src/core/handlers/spec';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import type { Options } from '../../src/core/options';
import { createTestPki, type TestPki } from '../support/certs';
import { settingsError } from '../support/specs';
import { memoryLogger, unexpectedReject } from '../support/logger';
import { freePort, startMosquitto, type RunningMosquitto } from '../support/mosquitto';
import { depthOf, nested, recordingContext } from '../support/rejects';
import { subscribe } from '../support/subscriber';

const env: HandlerEnv = { resolvePath: (p) => resolve(p) };
const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

function messages(from: number, count: number): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    ident: `dev-${(from + i) % 3}`,
    'channel.id': 100 + ((from + i) % 2),
    'server.timestamp': 1700000000.5 + from + i,
    seq: from + i,
  }));
}

function ctx(signal = new AbortController().signal): HandlerContext {
  return { signal, attempt: 1, log: silentLogger, reject: unexpectedReject };
}

function create(options: Options, spec: HandlerSpec = mqttSpec, pathEnv: HandlerEnv = env): MqttHandler {
  const handler = spec.create(options, pathEnv, 'test');
  assert.ok(handler instanceof MqttHandler);
  return handler;
}

/** Starts the handler, expecting start() to fail; returns the error message. */
async function startError(handler: Handler): Promise<string> {
  try {
    await handler.start();
  } catch (error) {
    return (error as Error).message;
  } finally {
    await handler.stop();
  }
  assert.fail('start() succeeded but should have failed');
}

describe('MQTT sink against Mosquitto with TLS and required client certificates', () => {
  let pki: TestPki;
  let broker: RunningMosquitto;
  const clientTls = () => ({ caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key });
  const settings = (extra: Options = {}): Options => ({ url: broker.url, ...clientTls(), ...extra });

  before(async () => {
    pki = await createTestPki();
    broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true } });
  });
  after(async () => {
    await broker?.stop();
    await pki?.cleanup();
  });

  test('publishes every message as JSON to its templated topic and awaits every PUBACK', async () => {
    const sub = await subscribe(broker.url, 'fleet/#', { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key });
    const handler = create(settings({ topic: 'fleet/{channel.id}/{ident}', window: 10 }));
    try {
      await handler.start();
      assert.equal(handler.health().connected, true);
      const batch = messages(0, 250);
      await handler.handle(batch, ctx());
      assert.equal(handler.counts.published, 250);
      assert.equal(handler.counts.acknowledged, 250, 'one PUBACK per message before handle() resolved');
      assert.match(handler.health().detail ?? '', /^0 awaiting PUBACK/);

      await sub.waitForCount(250);
      const bySeq = new Map(sub.messages.map((m) => [(m.json as FlespiMessage).seq, m]));
      assert.equal(bySeq.size, 250);
      for (const message of batch) {
        const received = bySeq.get(message.seq)!;
        assert.equal(received.topic, `fleet/${message['channel.id']}/${message.ident}`);
        assert.deepEqual(received.json, message);
      }
    } finally {
      await handler.stop();
      await sub.close();
    }
  });

  test('resolves relative caFile/certFile/keyFile through the environment', async () => {
    const sub = await subscribe(broker.url, 'relative/#', clientTls());
    const relative = (path: string) => path.slice(pki.dir.length + 1);
    const inPki: HandlerEnv = { resolvePath: (p) => join(pki.dir, p) };
    const handler = create(
      { url: broker.url, caFile: relative(pki.ca.cert), certFile: relative(pki.client.cert), keyFile: relative(pki.client.key), topic: 'relative/{ident}' },
      mqttSpec,
      inPki,
    );
    try {
      assert.equal(handler.settings.caFile, pki.ca.cert);
      await handler.start();
      await handler.handle(messages(0, 3), ctx());
      await sub.waitForCount(3);
      assert.deepEqual(sub.messages.map((m) => m.topic).sort(), ['relative/dev-0', 'relative/dev-1', 'relative/dev-2']);
    } finally {
      await handler.stop();
      await sub.close();
    }
  });

  test('aws-iot preset publishes to {ident} over mqtts with the device certificate', async () => {
    const sub = await subscribe(broker.url, '+', clientTls());
    const handler = create({ endpoint: '127.0.0.1', port: broker.port, ...clientTls() }, awsIotSpec);
    try {
      await handler.start();
      await handler.handle(messages(10, 4), ctx());
      await sub.waitForCount(4);
      assert.deepEqual(sub.messages.map((m) => [m.topic, (m.json as FlespiMessage).seq]).sort(), [
        ['dev-0', 12],
        ['dev-1', 10],
        ['dev-1', 13],
        ['dev-2', 11],
      ]);
    } finally {
      await handler.stop();
      await sub.close();
    }
  });

  test('a client certificate from another CA is refused with an error naming certFile', async () => {
    const message = await startError(create(settings({ certFile: pki.otherClient.cert, keyFile: pki.otherClient.key })));
    assert.match(message, /the broker refused the client certificate .*other-client\.crt: is it signed by a CA the broker trusts\?/);
  });

  test('no client certificate for a broker that requires one says to set certFile and keyFile', async () => {
    const message = await startError(create({ url: broker.url, caFile: pki.ca.cert }));
    assert.match(message, /requires a client certificate: set certFile and keyFile/);
  });

  test('a caFile that did not sign the broker certificate is named in the error', async () => {
    const message = await startError(create(settings({ caFile: pki.otherCa.cert })));
    assert.ok(message.includes(`the broker's certificate is not signed by the CA in caFile ${pki.otherCa.cert}`), message);
  });

  test('a broker certificate for another host name is reported as a host name mismatch', async () => {
    const wrongName = await pki.ca.issue('wrong-name', { usage: 'server', altNames: ['DNS:broker.invalid'] });
    const other = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: wrongName.cert, keyFile: wrongName.key } });
    try {
      const message = await startError(create({ url: other.url, ...clientTls() }));
      assert.match(message, /the broker's certificate is not issued for 127\.0\.0\.1 .*connect using a host name the certificate lists/);
    } finally {
      await other.stop();
    }
  });

  test('a key that does not belong to the certificate is caught before connecting', async () => {
    const message = await startError(create(settings({ keyFile: pki.strayKey })));
    assert.equal(
      message,
      `keyFile ${pki.strayKey} does not belong to certFile ${pki.client.cert} (their public keys differ): use the private key that was created together with this certificate`,
    );
  });

  test('an expired or not yet valid client certificate is caught before connecting', async () => {
    const expired = await startError(create(settings({ certFile: pki.expiredClient.cert, keyFile: pki.expiredClient.key })));
    assert.equal(expired, `certFile ${pki.expiredClient.cert} expired on 2020-01-02T00:00:00.000Z: issue a new client certificate`);
    const future = await startError(create(settings({ certFile: pki.futureClient.cert, keyFile: pki.futureClient.key })));
    assert.match(future, /future-client\.crt is not valid before 2099-01-01T00:00:00\.000Z/);
  });

  test('missing or unusable files are named', async () => {
    const missing = join(pki.dir, 'nope', 'ca.pem');
    assert.equal(await startError(create(settings({ caFile: missing }))), `caFile ${missing} does not exist`);
    assert.match(
      await startError(create(settings({ certFile: pki.client.key }))),
      /^certFile .*client\.key is not a certificate: .*this looks like a private key; it belongs in keyFile/,
    );
    assert.match(await startError(create(settings({ keyFile: pki.client.cert }))), /^keyFile .*client\.crt is not a private key/);
    assert.match(await startError(create(settings({ caFile: pki.dir }))), /^caFile .* is a folder/);
  });

  test('a key file readable by others starts with a warning that names it', async () => {
    const looseKey = join(pki.dir, 'loose.key');
    await copyFile(pki.client.key, looseKey);
    await chmod(looseKey, 0o644);
    const log = memoryLogger();
    const handler = create(settings({ keyFile: looseKey }));
    handler.attachLogger(log);
    try {
      await handler.start();
      assert.deepEqual(log.at('warn'), [`keyFile ${looseKey} can be read by other users (mode 644): restrict it with chmod 600 ${looseKey}`]);
    } finally {
      await handler.stop();
    }
  });

  test('an unreachable endpoint says which host and port', async () => {
    const port = await freePort();
    const message = await startError(create({ url: `mqtts://127.0.0.1:${port}`, ...clientTls() }));
    assert.equal(message, `cannot reach 127.0.0.1:${port} (ECONNREFUSED): check url, and that the broker is running and reachable from here`);
    const aws = await startError(create({ endpoint: '127.0.0.1', port, ...clientTls() }, awsIotSpec));
    assert.match(aws, /^cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\): check endpoint/);
  });

  test('broker restarted mid-stream: the batch fails, and retries after it is back deliver every message', async () => {
    // The subscriber shares this process with the handler's 20,000 publishes and can fall behind; Mosquitto
    // would then drop what exceeds its default queue of 1000 for it, which is not what this test is about.
    const restarting = await startMosquitto({
      tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key },
      extraConfig: ['max_queued_messages 100000'],
    });
    const sub = await subscribe(restarting.url, 'restart/#', clientTls());
    const handler = create({ url: restarting.url, ...clientTls(), topic: 'restart/{ident}', window: 50, connectTimeoutMs: 1000, ackTimeoutMs: 5000 });
    try {
      await handler.start();
      const pending = [messages(0, 100), messages(100, 20_000), messages(20_100, 50)];
      await handler.handle(pending[0]!, ctx());
      pending.shift();

      // Stop the broker once the big batch is on its way.
      const big = handler.handle(pending[0]!, ctx()).then(
        () => undefined,
        (error: Error) => error,
      );
      await sub.waitForCount(101);
      await restarting.stop();
      const failure = await big;
      assert.ok(failure instanceof Error, 'the batch cannot have been acknowledged in full by a broker that stopped during it');
      assert.match(failure.message, /connection to mqtts:\/\/127\.0\.0\.1:\d+ lost.*: \d+ of 20000 messages not acknowledged|not acknowledged/);

      // While the broker is down a batch fails within connectTimeoutMs instead of hanging.
      await assert.rejects(handler.handle(pending[1]!, ctx()), /^TransientError: not connected: /);
      assert.equal(handler.health().connected, false);

      await restarting.start();
      await sub.ready();
      for (const batch of pending) {
        for (let attempt = 1; ; attempt++) {
          try {
            await handler.handle(batch, ctx());
            break;
          } catch (error) {
            if (attempt === 20) throw error;
          }
        }
      }
      const expected = 100 + 20_000 + 50;
      const seen = new Set<unknown>();
      let scanned = 0;
      const allSeen = (received: readonly { json: unknown }[]) => {
        for (; scanned < received.length; scanned++) seen.add((received[scanned]!.json as FlespiMessage).seq);
        return seen.size === expected;
      };
      const missing = () => Array.from({ length: expected }, (_, i) => i).filter((seq) => !seen.has(seq));
      await sub.waitUntil(allSeen, () => `${expected - seen.size} messages never arrived`, 30_000).catch(() => {});
      const lost = missing();
      const brokerWarnings = restarting
        .log()
        .split('\n')
        .filter((line) => /drop|warning/i.test(line))
        .slice(0, 3)
        .join(' | ');
      assert.equal(
        lost.length,
        0,
        `${lost.length} messages never arrived, the first ${lost.slice(0, 5).join(', ')}; broker warnings: ${brokerWarnings || 'none'}`,
      );
    } finally {
      await handler.stop();
      await sub.close();
      await restarting.stop();
    }
  });
});

describe('MQTT sink delivery guarantees (broker that withholds PUBACKs)', () => {
  test('handle() never resolves without every PUBACK, and keeps at most `window` unacknowledged', async () => {
    const broker = await startWithholdingBroker(3);
    const handler = create({ url: `mqtt://127.0.0.1:${broker.port}`, topic: 'x/{ident}', window: 5, ackTimeoutMs: 300 });
    try {
      await handler.start();
      await assert.rejects(
        handler.handle(messages(0, 20), ctx()),
        /^TransientError: no PUBACK from mqtt:\/\/127\.0\.0\.1:\d+ for 300 ms \(ackTimeoutMs\): 17 of 20 messages not acknowledged$/,
      );
      assert.equal(broker.publishes(), 3 + 5, 'three acknowledged, then a full window of five waiting');
      assert.equal(handler.counts.acknowledged, 3);
    } finally {
      await handler.stop();
      await broker.close();
    }
  });

  test('an aborted batch rejects promptly and withdraws its unacknowledged publishes', async () => {
    const broker = await startWithholdingBroker(0);
    const handler = create({ url: `mqtt://127.0.0.1:${broker.port}`, window: 4, ackTimeoutMs: 60_000 });
    try {
      await handler.start();
      const controller = new AbortController();
      const delivery = handler.handle(messages(0, 10), ctx(controller.signal));
      await broker.waitForPublishes(4);
      controller.abort();
      await assert.rejects(delivery, /^TransientError: delivery to mqtt:\/\/127\.0\.0\.1:\d+ cancelled: 10 of 10 messages not acknowledged$/);
      assert.match(handler.health().detail ?? '', /^0 awaiting PUBACK/);
    } finally {
      await handler.stop();
      await broker.close();
    }
  });
});

describe('MQTT sink over plain TCP', () => {
  test('QoS 0 publishes; a missing template field becomes "unknown"', async () => {
    const broker = await startMosquitto();
    const sub = await subscribe(broker.url, 'plain/#');
    const handler = create({ url: broker.url, topic: 'plain/{device.id}/{ident}', qos: 0 });
    try {
      await handler.start();
      await handler.handle([{ ident: 'a/b+c', 'device.id': 7 }, { ident: 'x' }], ctx());
      await sub.waitForCount(2);
      assert.deepEqual(sub.messages.map((m) => m.topic).sort(), ['plain/7/a_b_c', 'plain/unknown/x']);
    } finally {
      await handler.stop();
      await sub.close();
      await broker.stop();
    }
  });

  test('username and password (from passwordEnv) are accepted; a wrong password is refused clearly', async () => {
    const broker = await startMosquitto({ users: { alice: 's3cret' } });
    process.env.FLESPI_TEST_MQTT_PASSWORD = 's3cret';
    const handler = create({ url: broker.url, username: 'alice', passwordEnv: 'FLESPI_TEST_MQTT_PASSWORD', topic: 'auth/{ident}' });
    delete process.env.FLESPI_TEST_MQTT_PASSWORD;
    try {
      await handler.start();
      await handler.handle(messages(0, 2), ctx());
      assert.equal(handler.counts.acknowledged, 2);
      const refused = await startError(create({ url: broker.url, username: 'alice', password: 'wrong' }));
      assert.equal(refused, `the broker at ${broker.url} refused the connection: Not authorized: check username and password`);
      const anonymous = await startError(create({ url: broker.url }));
      assert.match(anonymous, /refused the connection: Not authorized: this broker needs credentials/);
    } finally {
      await handler.stop();
      await broker.stop();
    }
  });

  test('mqtt:// to a TLS port suggests mqtts://', async () => {
    const pki = await createTestPki();
    const tlsBroker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key } });
    try {
      const message = await startError(create({ url: `mqtt://127.0.0.1:${tlsBroker.port}`, connectTimeoutMs: 3000 }));
      assert.match(message, /closed the connection .*if this port expects TLS, use mqtts:\/\//);
    } finally {
      await tlsBroker.stop();
      await pki.cleanup();
    }
  });
});

describe('MQTT sink settings', () => {
  const configError = (options: Options, spec: HandlerSpec = mqttSpec) => settingsError(spec, options, env, 'sink');

  test('aws-iot builds an mqtts URL from the endpoint, with AWS defaults', () => {
    const handler = create({ endpoint: 'abc123-ats.iot.eu-west-1.amazonaws.com', certFile: 'device.pem.crt', keyFile: 'private.pem.key' }, awsIotSpec);
    const s = handler.settings;
    assert.equal(s.url, 'mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:8883');
    assert.equal(s.topic.source, '{ident}');
    assert.equal(s.qos, 1);
    assert.equal(s.certFile, resolve('device.pem.crt'));
    assert.equal(s.alpnProtocols, undefined);
    const on443 = create(
      { endpoint: 'abc123-ats.iot.eu-west-1.amazonaws.com', port: 443, certFile: 'c', keyFile: 'k', topic: 'fleet/{ident}' },
      awsIotSpec,
    ).settings;
    assert.equal(on443.url, 'mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:443');
    assert.deepEqual(on443.alpnProtocols, ['x-amzn-mqtt-ca']);
    assert.equal(on443.topic.render({ ident: 'truck' }), 'fleet/truck');
  });

  test('aws-iot rejects a URL as endpoint, a missing certificate and too deep topics', () => {
    assert.match(
      configError({ endpoint: 'mqtts://abc.iot.us-east-1.amazonaws.com', certFile: 'c', keyFile: 'k' }, awsIotSpec),
      /"endpoint" must be the host name .* without scheme, port or path/,
    );
    assert.match(configError({ endpoint: 'abc.iot.us-east-1.amazonaws.com' }, awsIotSpec), /"certFile" and "keyFile" are required/);
    assert.match(
      configError({ endpoint: 'a.b', certFile: 'c', keyFile: 'k', topic: 'a/b/c/d/e/f/g/h/{ident}' }, awsIotSpec),
      /"topic" has 8 slashes; AWS IoT allows at most 7/,
    );
    assert.match(configError({ endpoint: 'a.b', certFile: 'c', keyFile: 'k', username: 'u' }, awsIotSpec), /unknown setting "username"/);
  });

  test('topic templates are checked when the settings are read', () => {
    assert.match(configError({ url: 'mqtt://h', topic: 'a/{ident' }), /"\{" without "\}" at position 3 in topic template "a\/\{ident"/);
    assert.match(configError({ url: 'mqtt://h', topic: 'a/ident}' }), /"\}" without "\{" at position 8/);
    assert.match(configError({ url: 'mqtt://h', topic: 'a/{}/b' }), /an empty field name "\{\}"/);
    assert.match(configError({ url: 'mqtt://h', topic: 'a/+/{ident}' }), /MQTT wildcard/);
    assert.match(configError({ url: 'mqtt://h', topic: 'a/{ident}/#' }), /MQTT wildcard/);
    assert.match(configError({ url: 'mqtt://h', topic: '' }), /"topic" must be a non-empty string/);
  });

  test('URLs, TLS files, credentials and numbers are validated with the setting named', () => {
    assert.match(configError({ url: 'http://h' }), /"url" must start with mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
    assert.match(configError({ url: 'mqtts://user:pw@h' }), /must not contain credentials/);
    assert.match(configError({ url: 'mqtt://h', caFile: 'ca.pem' }), /caFile\/certFile\/keyFile need a TLS url/);
    assert.match(configError({ url: 'mqtts://h', certFile: 'c.pem' }), /"certFile" and "keyFile" go together/);
    assert.match(
      configError({ url: 'mqtts://h', caFile: '-----BEGIN CERTIFICATE-----\nMIIB...' }),
      /"caFile" must be the path of a PEM file, not the file's contents/,
    );
    assert.match(configError({ url: 'mqtt://h', username: 'u', password: 'p', passwordEnv: 'P' }), /set "password" or "passwordEnv", not both/);
    assert.match(
      configError({ url: 'mqtt://h', username: 'u', passwordEnv: 'FLESPI_TEST_SURELY_UNSET' }),
      /environment variable FLESPI_TEST_SURELY_UNSET, which is not set/,
    );
    assert.match(configError({ url: 'mqtt://h', password: 'p' }), /a password needs a "username" too/);
    assert.match(configError({ url: 'mqtt://h', qos: 2 }), /"qos" must be an integer from 0 to 1/);
    assert.match(configError({ url: 'mqtt://h', windw: 5 }), /unknown setting "windw"/);
    process.env.FLESPI_TEST_MQTT_PASSWORD = 'from-env';
    try {
      assert.equal(create({ url: 'mqtt://h', username: 'u', passwordEnv: 'FLESPI_TEST_MQTT_PASSWORD' }).settings.password, 'from-env');
    } finally {
      delete process.env.FLESPI_TEST_MQTT_PASSWORD;
    }
  });
});

/** A TCP MQTT server that accepts connections and acknowledges only the first `ackFirst` QoS 1 publishes. */
async function startWithholdingBroker(ackFirst: number) {
  let publishes = 0;
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
      if (packet.cmd === 'pingreq') socket.write(mqttPacket.generate({ cmd: 'pingresp' }));
      if (packet.cmd === 'publish') {
        publishes++;
        if (publishes <= ackFirst) socket.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId! }));
        for (const wake of waiters) wake();
      }
    });
    socket.on('data', (data) => parser.parse(data));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    publishes: () => publishes,
    waitForPublishes: (count: number) =>
      new Promise<void>((resolve) => {
        const wake = () => publishes >= count && (waiters.delete(wake), resolve());
        waiters.add(wake);
        wake();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('MQTT sink: topics and payloads from hostile device fields (issue 11, cases 1 and 3)', () => {
  let broker: RunningMosquitto;
  before(async () => {
    broker = await startMosquitto({ extraConfig: ['max_queued_messages 10000'] });
  });
  after(() => broker?.stop());

  test('control characters, noncharacters, lone surrogates, a leading $ and a 70,000-character field make valid topics; every message arrives, the one after them too', async () => {
    const sub = await subscribe(broker.url, '#');
    const handler = create({ url: broker.url, topic: '{name}/t/{ident}', window: 4, connectTimeoutMs: 2000, ackTimeoutMs: 5000 });
    const long = `${'x'.repeat(69_990)}-tail`;
    const batch: FlespiMessage[] = [
      { seq: 0, name: 'bell', ident: 'dev\u0007x' },
      { seq: 1, name: 'c1', ident: 'del\u007f nel\u0085 csi\u009b' },
      { seq: 2, name: 'nonchar', ident: 'a\uffffb\ufdd0c\u{1fffe}d' },
      { seq: 3, name: 'surrogates', ident: 'lone\ud800high lone\udc00low pair\u{1f69a}' },
      { seq: 4, name: '$SYS', ident: 'broker/uptime' },
      { seq: 5, name: '$share', ident: 'g/#' },
      { seq: 6, name: 'long', ident: long },
      { seq: 7, name: 'good', ident: 'after-the-poison' },
    ];
    try {
      await handler.start();
      const ctx = recordingContext();
      await handler.handle(batch, ctx);
      assert.deepEqual(ctx.reasons(), [], 'nothing needs to be rejected: every field can be made a valid topic level');
      await sub.waitForCount(batch.length);
      const topicOf = new Map(sub.messages.map((m) => [(m.json as FlespiMessage).seq, m.topic]));
      assert.equal(topicOf.get(0), 'bell/t/dev_x');
      assert.equal(topicOf.get(1), 'c1/t/del_ nel_ csi_');
      assert.equal(topicOf.get(2), 'nonchar/t/a_b_c_d');
      assert.equal(topicOf.get(3), 'surrogates/t/lone_high lone_low pair\u{1f69a}');
      assert.equal(topicOf.get(4), '_SYS/t/broker_uptime', "a field must not move the message into the broker's $ topics, where no subscriber to # sees it");
      assert.equal(topicOf.get(5), '_share/t/g__');
      assert.equal(topicOf.get(7), 'good/t/after-the-poison');
      const longTopic = topicOf.get(6)!;
      assert.ok(utf8(longTopic) <= 65_535, `the topic has ${utf8(longTopic)} bytes`);
      assert.match(longTopic, /^long\/t\/x+~[0-9a-f]{8}$/, 'cut, with a hash of the whole value');
      assert.equal(handler.settings.topic.render(batch[6]!), longTopic, 'the same value gives the same topic');
      assert.notEqual(
        handler.settings.topic.render({ ...batch[6]!, ident: `${'x'.repeat(69_990)}-TAIL` }),
        longTopic,
        'a value that differs only after the cut gets another topic',
      );
      assert.deepEqual(sub.messages.find((m) => (m.json as FlespiMessage).seq === 0)!.json, batch[0], 'the payload keeps the original ident');
      assert.equal(handler.health().connected, true, 'the broker kept the connection');
    } finally {
      await handler.stop();
      await sub.close();
    }
  });

  test('a message nested 6,000 deep is published whole; one with a BigInt or a cycle is rejected with the reason and the rest is published', async () => {
    const sub = await subscribe(broker.url, 'deep/#');
    const handler = create({ url: broker.url, topic: 'deep/{ident}', connectTimeoutMs: 2000, ackTimeoutMs: 5000 });
    const cyclic: FlespiMessage = { ident: 'cyclic', seq: 3 };
    cyclic.self = { again: cyclic };
    const batch: FlespiMessage[] = [
      { ident: 'a', seq: 0 },
      { ident: 'deep', seq: 1, deep: nested(6000) },
      { ident: 'big', seq: 2, big: 1n as unknown as number },
      cyclic,
      { ident: 'b', seq: 4 },
    ];
    try {
      await handler.start();
      const ctx = recordingContext();
      await handler.handle(batch, ctx);
      assert.deepEqual(ctx.reasons(), [
        '2: the message cannot be written as JSON: it holds a BigInt, which JSON cannot represent',
        '3: the message cannot be written as JSON: it refers to itself (a circular structure)',
      ]);
      assert.ok([...ctx.rejected.values()].every((r) => classifyFailure(r) === 'undeliverable'));
      await sub.waitForCount(3);
      assert.deepEqual(sub.messages.map((m) => (m.json as FlespiMessage).seq).sort(), [0, 1, 4]);
      assert.equal(depthOf((sub.messages.find((m) => m.topic === 'deep/deep')!.json as FlespiMessage).deep), 6000);
      assert.equal(handler.counts.acknowledged, 3);
      assert.equal(handler.counts.rejected, 2);
      assert.match(handler.health().detail ?? '', /2 messages rejected as undeliverable/);
    } finally {
      await handler.stop();
      await sub.close();
    }
  });

  test('MQTT 5: a message over the maximum packet size the broker announced is rejected, the others are published', async () => {
    const small = await startMosquitto({ extraConfig: ['max_packet_size 2000'] });
    const sub = await subscribe(small.url, 'size/#');
    const handler = create({ url: small.url, topic: 'size/{ident}', protocolVersion: 5, connectTimeoutMs: 2000, ackTimeoutMs: 5000 });
    try {
      await handler.start();
      const ctx = recordingContext();
      await handler.handle([{ ident: 'small-1' }, { ident: 'huge', text: 'z'.repeat(5000) }, { ident: 'small-2' }], ctx);
      assert.equal(ctx.reasons().length, 1, ctx.reasons().join('; '));
      assert.match(ctx.reasons()[0]!, /^1: the message is \d+ bytes as an MQTT packet; the broker at mqtt:\/\/127\.0\.0\.1:\d+ accepts at most 2000$/);
      await sub.waitForCount(2);
      assert.deepEqual(sub.messages.map((m) => m.topic).sort(), ['size/small-1', 'size/small-2']);
      assert.equal(handler.health().connected, true, 'the broker was never sent the oversized packet, so it kept the connection');
    } finally {
      await handler.stop();
      await sub.close();
      await small.stop();
    }
  });
});

describe('MQTT 5 refusals', () => {
  test('a message the broker refuses for good (ACL: not authorized, reason code 0x87) is rejected with the reason; the others are acknowledged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-acl-'));
    const acl = join(dir, 'acl');
    await writeFile(acl, 'topic read #\ntopic write open/#\n');
    await chmod(acl, 0o644);
    const broker = await startMosquitto({ extraConfig: [`acl_file ${acl}`] });
    const sub = await subscribe(broker.url, '#');
    const handler = create({ url: broker.url, topic: '{area}/{ident}', protocolVersion: 5, connectTimeoutMs: 2000, ackTimeoutMs: 5000 });
    try {
      await handler.start();
      const ctx = recordingContext();
      await handler.handle(
        [
          { area: 'open', ident: 'a' },
          { area: 'closed', ident: 'b' },
          { area: 'open', ident: 'c' },
        ],
        ctx,
      );
      assert.deepEqual(ctx.reasons(), [
        `1: the broker at ${broker.url} refused the message for good (not authorized to publish to this topic, reason code 0x87) on topic "closed/b"`,
      ]);
      assert.equal(classifyFailure(ctx.rejected.get(1)), 'undeliverable');
      await sub.waitForCount(2);
      assert.deepEqual(
        sub.messages.map((m) => m.topic),
        ['open/a', 'open/c'],
      );
      assert.equal(handler.counts.acknowledged, 2);
    } finally {
      await handler.stop();
      await sub.close();
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('AWS IoT topic limits (issue 11, case 1)', () => {
  test('a topic stays within 256 bytes with a stable hash; a field cannot form a $aws topic; a template that leaves no room is refused', async () => {
    const pki = await createTestPki();
    const broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key } });
    const tls = { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key };
    const sub = await subscribe(broker.url, '#', tls);
    const handler = create({ endpoint: '127.0.0.1', port: broker.port, ...tls, topic: '{ident}/fleet/{name}', connectTimeoutMs: 3000 }, awsIotSpec);
    const longName = 'Ж'.repeat(400); // 800 bytes of UTF-8
    try {
      await handler.start();
      const ctx = recordingContext();
      await handler.handle(
        [
          { ident: '$aws/things/t1/shadow/update', name: 'n' },
          { ident: 'truck', name: longName },
          { ident: 'after', name: 'ok' },
        ],
        ctx,
      );
      assert.deepEqual(ctx.reasons(), []);
      await sub.waitForCount(3);
      const topics = sub.messages.map((m) => m.topic);
      assert.equal(topics[0], '_aws_things_t1_shadow_update/fleet/n');
      assert.match(topics[1]!, /^truck\/fleet\/Ж+~[0-9a-f]{8}$/);
      assert.ok(utf8(topics[1]!) <= 256, `${utf8(topics[1]!)} bytes`);
      assert.equal(topics[2], 'after/fleet/ok');
      assert.equal(handler.settings.topic.maxBytes, 256);
    } finally {
      await handler.stop();
      await sub.close();
      await broker.stop();
      await pki.cleanup();
    }
    assert.throws(
      () => awsIotSpec.create({ endpoint: 'a.b', certFile: 'c', keyFile: 'k', topic: `${'p'.repeat(250)}/{ident}` }, env, 'aws'),
      /"topic": 251 bytes of text \(leaving less than 16 bytes for each field; topics may have at most 256 bytes here\)/,
    );
    assert.throws(
      () => mqttSpec.create({ url: 'mqtt://h', topic: 'a\u0007/{ident}' }, env, 'm'),
      /a control character, noncharacter or lone surrogate, which MQTT topics must not contain/,
    );
  });
});

describe("MQTT sink and flespi's broker (issue 12 item 5)", () => {
  const configError = (options: Options) => settingsError(mqttSpec, options, env, 'sink');

  test('the default topic is not under flespi/: messages arrive on fleet/{channel.id}/{ident}, and start() says which topic it uses', async () => {
    const broker = await startMosquitto();
    const sub = await subscribe(broker.url, '#');
    const log = memoryLogger();
    const handler = create({ url: broker.url });
    handler.attachLogger(log);
    try {
      await handler.start();
      await handler.handle(messages(0, 2), ctx());
      await sub.waitForCount(2);
      assert.deepEqual(sub.messages.map((m) => m.topic).sort(), ['fleet/100/dev-0', 'fleet/101/dev-1']);
      assert.ok(
        log.at('info').some((line) => line.includes('default topic fleet/{channel.id}/{ident}') && line.includes('set "topic"')),
        log.at('info').join('\n'),
      );
    } finally {
      await handler.stop();
      await sub.close();
      await broker.stop();
    }
  });

  test("a topic under flespi/ is refused for flespi's brokers (any region) with a ConfigError; the default and other topics are accepted there", () => {
    for (const url of ['mqtts://mqtt.flespi.io:8883', 'wss://mqtt.flespi.io', 'mqtts://ru-mqtt.flespi.io:8883', 'mqtt://MQTT.FLESPI.IO']) {
      const message = configError({ url, topic: 'flespi/{channel.id}/{ident}', username: 'token' });
      assert.match(
        message,
        /handler "sink" \(mqtt\): "topic" "flespi\/\{channel\.id\}\/\{ident\}" is under flespi\/, which flespi's broker \([a-z.-]+\) keeps for the platform: it discards what clients publish there .* Use a topic outside flespi\/, e\.g\. "fleet\/\{channel\.id\}\/\{ident\}"/i,
      );
      assert.equal(create({ url, username: 'token' }).settings.topic.source, 'fleet/{channel.id}/{ident}');
      assert.equal(create({ url, topic: 'receiver/{ident}', username: 'token' }).settings.topic.source, 'receiver/{ident}');
    }
    // Existing users' explicit flespi/ topics keep working on their own brokers.
    assert.equal(create({ url: 'mqtts://broker.example.com:8883', topic: 'flespi/{channel.id}/{ident}' }).settings.topic.source, 'flespi/{channel.id}/{ident}');
    assert.equal(
      create({ url: 'mqtts://flespi.io.example.com:8883', topic: 'flespi/{ident}' }).settings.topic.source,
      'flespi/{ident}',
      'only flespi.io itself',
    );
  });

  test("on flespi's broker, a message whose fields would make a flespi/ topic is rejected as undeliverable, not published into the void", () => {
    const handler = create({ url: 'mqtts://mqtt.flespi.io:8883', topic: '{kind}/{ident}', username: 'token' });
    const recorded = recordingContext();
    const prepare = (handler as unknown as { prepare(messages: FlespiMessage[], ctx: HandlerContext): { index: number; topic: string }[] }).prepare.bind(
      handler,
    );
    const outgoing = prepare(
      [
        { kind: 'flespi', ident: 'a' },
        { kind: 'fleet', ident: 'b' },
      ],
      recorded,
    );
    assert.deepEqual(
      outgoing.map((o) => [o.index, o.topic]),
      [[1, 'fleet/b']],
    );
    assert.match(recorded.reasons()[0] ?? '', /^0: the topic "flespi\/a" is under flespi\/, where flespi's broker discards client publishes/);
  });

  test('credentials over a cleartext mqtt:// URL to another machine are warned about at start()', async () => {
    const log = memoryLogger();
    const handler = create({ url: 'mqtt://192.0.2.1:1883', username: 'alice', password: 's3cret', connectTimeoutMs: 200 });
    handler.attachLogger(log);
    await startError(handler);
    assert.deepEqual(
      log.at('warn').filter((line) => line.includes('unencrypted')),
      [
        "test: the MQTT sink's password is sent unencrypted to mqtt://192.0.2.1:1883: anyone on the network path can read it; use mqtts://192.0.2.1:1883 instead",
      ],
    );
    assert.ok(!log.lines.some((line) => line.message.includes('s3cret')));
  });

  test('a URL holding user:password (settings built in code) never shows them in logs or errors', async () => {
    const broker = await startMosquitto();
    const log = memoryLogger();
    const base = create({ url: broker.url, topic: 'redacted/{ident}' });
    const handler = new MqttHandler({ ...base.settings, url: broker.url.replace('://', '://alice:hunter2@') }, 'redacting');
    handler.attachLogger(log);
    try {
      await handler.start();
      await broker.stop();
      await assert.rejects(handler.handle(messages(0, 1), ctx(AbortSignal.timeout(3000))), (error: Error) => !error.message.includes('hunter2'));
      assert.ok(log.lines.length > 0);
      for (const line of log.lines) assert.ok(!line.message.includes('hunter2'), line.message);
      assert.ok(
        log.lines.some((line) => line.message.includes('alice') === false && line.message.includes('***@')),
        log.lines.map((l) => l.message).join('\n'),
      );
      assert.ok(!(handler.health().detail ?? '').includes('hunter2'));
    } finally {
      await handler.stop();
    }
  });
});
