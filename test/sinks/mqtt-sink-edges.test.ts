// Edges of the MQTT / AWS IoT sink in process: what it sends (CONNECT, PUBLISH), what it says (errors,
// logs, health) in full, size limits at their exact boundary, reconnects and cancellations, against a
// scripted broker (test/support/fakeMqtt.ts) and raw sockets.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TransientError, UndeliverableError } from '../../src/core/errors';
import type { HandlerContext } from '../../src/core/handler';
import { awsIotSpec, explainConnectionError, isFlespiBroker, mqttSpec, MqttHandler, type MqttSettings } from '../../src/core/handlers/mqtt';
import type { HandlerEnv, HandlerSpec } from '../../src/core/handlers/spec';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import type { Options } from '../../src/core/options';
import { createTestPki, type TestPki } from '../support/certs';
import { settingsError } from '../support/specs';
import { startFakeMqtt, type FakeMqtt, type FakeMqttOptions } from '../support/fakeMqtt';
import { memoryLogger, unexpectedReject, type MemoryLogger } from '../support/logger';
import { recordingContext } from '../support/rejects';
import { failure, until } from '../support/await';

const env: HandlerEnv = { resolvePath: (p) => resolve(p) };

function ctx(signal = new AbortController().signal): HandlerContext {
  return { signal, attempt: 1, log: silentLogger, reject: unexpectedReject };
}

function create(options: Options, spec: HandlerSpec = mqttSpec): MqttHandler {
  const handler = spec.create(options, env, 'test');
  assert.ok(handler instanceof MqttHandler);
  return handler;
}

/** A handler with a memory logger, stopped after the test. */
function track(t: TestContext, handler: MqttHandler): MemoryLogger {
  const log = memoryLogger();
  handler.attachLogger(log);
  t.after(() => handler.stop());
  return log;
}

async function fake(t: TestContext, options?: FakeMqttOptions): Promise<FakeMqtt> {
  const broker = await startFakeMqtt(options);
  t.after(() => broker.close());
  return broker;
}

/** The message start() fails with (the handler is stopped either way). */
async function startError(handler: MqttHandler): Promise<string> {
  try {
    return (await failure(handler.start())).message;
  } finally {
    await handler.stop();
  }
}

describe('MQTT sink: the connection it opens and what it logs', () => {
  test('CONNECT asks for a clean session with a random flespi-receiver-… clientId; a username over cleartext to another host is warned about by name', async (t) => {
    const broker = await fake(t);
    // 0.0.0.0 reaches the local broker but is not a loopback name, so credentials count as leaving the machine.
    const url = `mqtt://0.0.0.0:${broker.port}`;
    const handler = create({ url, username: 'alice', topic: 'x/{ident}', retain: true });
    const log = track(t, handler);
    await handler.start();
    const connect = broker.connects[0]!;
    assert.equal(connect.clean, true);
    assert.equal(connect.username, 'alice');
    assert.equal(connect.password, undefined);
    assert.equal(connect.protocolVersion, 4);
    assert.match(connect.clientId, /^flespi-receiver-[0-9a-f]{6}$/);
    assert.deepEqual(log.at('warn'), [
      `test: the MQTT sink's username is sent unencrypted to ${url}: anyone on the network path can read it; use mqtts://0.0.0.0:${broker.port} instead`,
    ]);
    assert.deepEqual(log.at('info'), [`test: connected to ${url}`], 'a topic was set, so nothing about the default topic');

    await handler.handle([{ ident: 'a' }], ctx());
    const sent = broker.publishes[0]!.packet;
    assert.deepEqual([sent.topic, sent.qos, sent.retain, String(sent.payload)], ['x/a', 1, true, '{"ident":"a"}']);
    assert.deepEqual(handler.health(), { connected: true, detail: '0 awaiting PUBACK' });
    assert.deepEqual(handler.counts, { published: 1, acknowledged: 1, rejected: 0 });
  });

  test('without credentials nothing is warned; the default topic is said once; QoS 0 counts writes; the clientId setting is sent', async (t) => {
    const broker = await fake(t);
    const url = `mqtt://0.0.0.0:${broker.port}`;
    const handler = create({ url, clientId: 'my-sink', qos: 0 });
    const log = track(t, handler);
    await handler.start();
    assert.equal(broker.connects[0]!.clientId, 'my-sink');
    assert.deepEqual(log.at('warn'), []);
    assert.deepEqual(log.at('info'), [
      `test: publishing to the default topic fleet/{channel.id}/{ident} (it used to be flespi/{channel.id}/{ident}, which flespi's own broker discards; set "topic" to choose)`,
      `test: connected to ${url}`,
    ]);
    await handler.handle([{ ident: 'a', 'channel.id': 7 }], ctx());
    await until(
      () => broker.publishes.length === 1,
      () => 'the QoS 0 publish',
    );
    const sent = broker.publishes[0]!.packet;
    assert.deepEqual([sent.topic, sent.qos, sent.retain], ['fleet/7/a', 0, false]);
    assert.deepEqual(handler.health(), { connected: true, detail: '0 awaiting write' });
  });

  test('with a password, the warning names the password', async (t) => {
    const broker = await fake(t);
    const url = `mqtt://0.0.0.0:${broker.port}`;
    const handler = create({ url, username: 'alice', password: 'pw', topic: 't' });
    const log = track(t, handler);
    await handler.start();
    assert.equal(broker.connects[0]!.password?.toString(), 'pw');
    assert.deepEqual(log.at('warn'), [
      `test: the MQTT sink's password is sent unencrypted to ${url}: anyone on the network path can read it; use mqtts://0.0.0.0:${broker.port} instead`,
    ]);
  });

  test('health() and handle() before start and after stop', async (t) => {
    const broker = await fake(t);
    const handler = create({ url: broker.url });
    assert.deepEqual(handler.health(), { connected: false, detail: 'not connected' });
    const before = await failure(handler.handle([{ ident: 'a' }], ctx()));
    assert.ok(before instanceof TransientError);
    assert.equal(before.message, 'test: not started');
    await handler.start();
    await handler.stop();
    assert.deepEqual(handler.health(), { connected: false, detail: 'not connected' }, 'stopping is no connection problem');
    assert.equal((await failure(handler.handle([{ ident: 'a' }], ctx()))).message, 'test: not started');
    assert.equal(broker.disconnects, 0, 'stop() closes at once, without waiting to send a DISCONNECT');
  });

  test('a dropped connection is reported, retried after 1 s, then with growing backoff; health says why at each step', async (t) => {
    // Connections 3 and 4 are closed before the CONNACK.
    const broker = await fake(t, { connack: (n) => (n === 3 || n === 4 ? 'close' : 0) });
    const url = broker.url;
    const handler = create({ url, topic: 't' });
    const log = track(t, handler);
    await handler.start();

    broker.disconnect();
    await until(
      () => !handler.health().connected,
      () => 'the close',
    );
    assert.deepEqual(handler.health(), { connected: false, detail: `the broker at ${url} closed the connection` });
    assert.deepEqual(log.at('warn'), [`test: the broker at ${url} closed the connection; reconnecting in 1.0 s`]);

    await until(
      () => handler.health().connected === true,
      () => 'the reconnect',
    );
    assert.deepEqual(log.at('info'), [`test: connected to ${url}`, `test: connected to ${url} after 1 retries`]);

    broker.reset();
    await until(
      () => !handler.health().connected,
      () => 'the reset',
    );
    assert.deepEqual(handler.health(), { connected: false, detail: `connection to ${url} lost (read ECONNRESET)` });
    assert.equal(log.at('warn')[1], `test: connection to ${url} lost (read ECONNRESET); reconnecting in 1.0 s`, 'a successful connect resets the backoff');

    await until(
      () => log.at('warn').length === 3,
      () => log.at('warn').join('\n'),
    );
    assert.deepEqual(handler.health(), { connected: false, detail: `the broker at ${url} closed the connection before accepting it` });
    await until(
      () => log.at('warn').length === 4,
      () => log.at('warn').join('\n'),
    );
    const delays = log.at('warn').map((line) => {
      const match =
        /^test: the broker at mqtt:\/\/127\.0\.0\.1:\d+ closed the connection(?: before accepting it)?; reconnecting in (\d+\.\d) s$|lost \(read ECONNRESET\); reconnecting in (\d+\.\d) s$/.exec(
          line,
        );
      assert.ok(match, line);
      return Number(match[1] ?? match[2]);
    });
    assert.deepEqual(delays.slice(0, 2), [1, 1]);
    assert.ok(delays[2]! >= 1 && delays[2]! <= 2, `second retry in ${delays[2]} s, expected 1 to 2`);
    assert.ok(delays[3]! >= 2 && delays[3]! <= 4, `third retry in ${delays[3]} s, expected 2 to 4`);
  });

  test('while disconnected: an empty batch returns at once, a cancelled batch says why, a batch waits for the reconnect and leaves no listener on its signal', async (t) => {
    const broker = await fake(t);
    const url = broker.url;
    const handler = create({ url, topic: 't', connectTimeoutMs: 5000 });
    track(t, handler);
    await handler.start();
    broker.disconnect();
    await until(
      () => !handler.health().connected,
      () => 'the close',
    );

    await handler.handle([], ctx());
    assert.equal(handler.health().connected, false, 'an empty batch does not wait for the connection');

    const cancelled = `not connected to ${url} when the batch was cancelled: the broker at ${url} closed the connection`;
    const early = await failure(handler.handle([{ ident: 'a' }], ctx(AbortSignal.abort())));
    assert.ok(early instanceof TransientError);
    assert.equal(early.message, cancelled);
    const controller = new AbortController();
    const waiting = handler.handle([{ ident: 'a' }], ctx(controller.signal));
    await new Promise((r) => setImmediate(r));
    controller.abort();
    assert.equal((await failure(waiting)).message, cancelled);
    assert.equal(handler.health().connected, false, 'both were cancelled before the reconnect');
    assert.equal(broker.publishes.length, 0);

    const longLived = new AbortController();
    await handler.handle([{ ident: 'a' }], ctx(longLived.signal));
    assert.equal(broker.publishes.length, 1);
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0, 'the wait and the publish removed their abort listeners');
    await handler.handle([{ ident: 'b' }], ctx(longLived.signal));
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
  });

  test('a reconnect that gets no CONNACK within connectTimeoutMs is reported as such', async (t) => {
    const broker = await fake(t, { connack: (n) => (n === 1 ? 0 : 'never') });
    const handler = create({ url: broker.url, connectTimeoutMs: 300 });
    track(t, handler);
    await handler.start();
    broker.disconnect();
    await until(
      () => broker.connects.length === 2,
      () => 'the reconnect',
    );
    const expected = `the broker at ${broker.url} did not answer the MQTT connect within 300 ms (connectTimeoutMs)`;
    await until(
      () => handler.health().detail === expected,
      () => String(handler.health().detail),
    );
    const late = await failure(handler.handle([{ ident: 'a' }], ctx()));
    assert.equal(late.message, `not connected: ${expected}`);
  });
});

describe('MQTT sink: start() refused or left unanswered', () => {
  test('closed before the CONNACK, no CONNACK at all, refusals by return code, stop() during start()', async (t) => {
    const closing = await fake(t, { connack: 'close' });
    const closed = await failure(create({ url: closing.url }).start());
    assert.ok(closed instanceof TransientError);
    assert.equal(closed.message, `the broker at ${closing.url} closed the connection before accepting it`);

    const silent = await fake(t, { connack: 'never' });
    // MQTT.js's own CONNACK timer (started first, same length) is the one that explains.
    assert.equal(
      await startError(create({ url: silent.url, connectTimeoutMs: 200 })),
      `not connected: the broker at ${silent.url} did not answer the MQTT connect within 200 ms (connectTimeoutMs)`,
    );

    const refused = (code: number) => fake(t, { connack: code });
    const id = await refused(2);
    assert.equal(
      await startError(create({ url: id.url })),
      `the broker at ${id.url} refused the connection: Identifier rejected: the broker does not accept this clientId`,
    );
    const unavailable = await refused(3);
    assert.equal(await startError(create({ url: unavailable.url })), `the broker at ${unavailable.url} refused the connection: Server unavailable`);
    const bad = await refused(4);
    assert.equal(
      await startError(create({ url: bad.url, username: 'u', password: 'p' })),
      `the broker at ${bad.url} refused the connection: Bad username or password: check username and password`,
    );
    assert.equal(
      await startError(create({ url: bad.url })),
      `the broker at ${bad.url} refused the connection: Bad username or password: this broker needs credentials (username/password) or a client certificate`,
    );

    const stopped = create({ url: silent.url, connectTimeoutMs: 5000 });
    const starting = stopped.start();
    await until(
      () => silent.connects.length === 2,
      () => 'the CONNECT',
    );
    await stopped.stop();
    assert.equal((await failure(starting)).message, `cannot connect to ${silent.url}`);
  });

  test('a broker that answers the CONNECT with something that is not MQTT', async (t) => {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end(Buffer.from([0x00, 0x00])));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    server.on('connection', (socket: Socket) => t.after(() => socket.destroy()));
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    assert.equal(await startError(create({ url })), `connection to ${url} failed: Not supported`);
  });
});

/** CONNACK of an MQTT 5 broker, announcing this maximum packet size. */
const announcing =
  (maximumPacketSize?: number): FakeMqttOptions['connack'] =>
  () => ({ code: 0, sessionPresent: false, ...(maximumPacketSize ? { properties: { maximumPacketSize } } : {}) });

describe('MQTT sink: PUBACKs, refusals and failures of a batch', () => {
  test('MQTT 5 refusals for good reject that message with the reason in full (the topic cut at 200 characters); 0x10 counts as acknowledged', async (t) => {
    const long = 'L'.repeat(250);
    const codes: Record<string, number> = { [long]: 0x87, invalid: 0x90, format: 0x99, ok: 0, nomatch: 0x10 };
    const broker = await fake(t, { connack: announcing(), puback: (packet) => codes[packet.topic]! });
    const handler = create({ url: broker.url, topic: '{t}', protocolVersion: 5 });
    track(t, handler);
    await handler.start();
    const recorded = recordingContext();
    await handler.handle(
      Object.keys(codes).map((t) => ({ t })),
      recorded,
    );
    const refused = (what: string, code: string, topic: string) =>
      `the broker at ${broker.url} refused the message for good (${what}, reason code ${code}) on topic "${topic}"`;
    assert.deepEqual(recorded.reasons(), [
      `0: ${refused('not authorized to publish to this topic', '0x87', 'L'.repeat(200))}`,
      `1: ${refused('topic name invalid', '0x90', 'invalid')}`,
      `2: ${refused('payload format invalid', '0x99', 'format')}`,
    ]);
    assert.ok([...recorded.rejected.values()].every((e) => e instanceof UndeliverableError));
    assert.deepEqual(handler.counts, { published: 5, acknowledged: 2, rejected: 3 });
    assert.deepEqual(handler.health(), { connected: true, detail: '0 awaiting PUBACK, 3 messages rejected as undeliverable' });
  });

  test('any other PUBACK error fails the batch with a plain Error (not a connection problem), counting what was not acknowledged', async (t) => {
    const broker = await fake(t, { connack: announcing(), puback: (packet) => (packet.topic === 'bad' ? 0x80 : 0) });
    const handler = create({ url: broker.url, topic: '{t}', protocolVersion: 5 });
    track(t, handler);
    await handler.start();
    const error = await failure(handler.handle([{ t: 'ok' }, { t: 'bad' }, { t: 'late' }], ctx()));
    assert.equal(error.constructor, Error);
    assert.equal(error.message, `publish to ${broker.url} failed: Publish error: Unspecified error: 2 of 3 messages not acknowledged`);
    await until(
      () => handler.counts.acknowledged === 1 && handler.health().detail === '0 awaiting PUBACK',
      () => JSON.stringify([handler.counts, handler.health()]),
    );
  });

  test('a batch handed an aborted signal while connected publishes nothing', async (t) => {
    const broker = await fake(t);
    const handler = create({ url: broker.url, topic: 't' });
    track(t, handler);
    await handler.start();
    const error = await failure(handler.handle([{ ident: 'a' }, { ident: 'b' }], ctx(AbortSignal.abort())));
    assert.ok(error instanceof TransientError);
    assert.equal(error.message, `delivery to ${broker.url} cancelled: 2 of 2 messages not acknowledged`);
    assert.equal(handler.counts.published, 0);
    assert.equal(broker.publishes.length, 0);
  });

  test('the connection lost during a batch fails it at once, saying why', async (t) => {
    const broker = await fake(t, { puback: () => 'never' });
    const handler = create({ url: broker.url, topic: 't', ackTimeoutMs: 60_000 });
    track(t, handler);
    await handler.start();
    const batch = handler.handle([{ ident: 'a' }, { ident: 'b' }, { ident: 'c' }], ctx());
    await until(
      () => broker.publishes.length === 3,
      () => `${broker.publishes.length} publishes`,
    );
    assert.deepEqual(handler.health(), { connected: true, detail: '3 awaiting PUBACK' });
    broker.disconnect();
    const error = await failure(batch);
    assert.ok(error instanceof TransientError);
    assert.equal(error.message, `connection to ${broker.url} lost (the broker at ${broker.url} closed the connection): 3 of 3 messages not acknowledged`);
  });

  test('PUBACKs that keep coming keep a long batch alive; silence after the last one fails it ackTimeoutMs later', async (t) => {
    const broker = await fake(t, { puback: () => 'never' });
    const handler = create({ url: broker.url, topic: 't', window: 1, ackTimeoutMs: 1000 });
    track(t, handler);
    await handler.start();
    const ackEach = async (count: number, everyMs: number) => {
      for (let i = 0; i < count; i++) {
        await until(
          () => broker.publishes.length > i,
          () => `publish ${i}`,
        );
        await new Promise((r) => setTimeout(r, everyMs));
        broker.ack(broker.publishes[i]!.packet.messageId!);
      }
    };
    // Six PUBACKs 250 ms apart: 1.5 s in all, never 1 s without one.
    const steady = handler.handle(
      Array.from({ length: 6 }, (_, i) => ({ ident: `s${i}` })),
      ctx(),
    );
    await ackEach(6, 250);
    await steady;

    // One PUBACK 300 ms in, then none: the batch fails 1 s after that PUBACK, not 1 s after the timer's first look.
    const base = broker.publishes.length;
    const stalled = handler.handle([{ ident: 'x' }, { ident: 'y' }], ctx()).then(
      () => assert.fail('resolved without the second PUBACK'),
      (error: Error) => ({ error, at: performance.now() }),
    );
    await until(
      () => broker.publishes.length > base,
      () => 'the first publish',
    );
    await new Promise((r) => setTimeout(r, 300));
    broker.ack(broker.publishes[base]!.packet.messageId!);
    const ackedAt = performance.now();
    const { error, at } = await stalled;
    assert.equal(error.message, `no PUBACK from ${broker.url} for 1000 ms (ackTimeoutMs): 1 of 2 messages not acknowledged`);
    assert.ok(at - ackedAt >= 900 && at - ackedAt < 1700, `failed ${Math.round(at - ackedAt)} ms after the last PUBACK`);
  });

  test('cancelling one batch withdraws only its own publishes: a batch beside it still completes', async (t) => {
    const broker = await fake(t, { puback: () => 'never' });
    const handler = create({ url: broker.url, topic: '{ident}', ackTimeoutMs: 60_000 });
    track(t, handler);
    await handler.start();
    const controller = new AbortController();
    const cancelled = handler.handle([{ ident: 'a1' }, { ident: 'a2' }], ctx(controller.signal));
    const kept = handler.handle([{ ident: 'b1' }, { ident: 'b2' }], ctx());
    await until(
      () => broker.publishes.length === 4,
      () => `${broker.publishes.length} publishes`,
    );
    controller.abort();
    assert.equal((await failure(cancelled)).message, `delivery to ${broker.url} cancelled: 2 of 2 messages not acknowledged`);
    for (const { packet } of broker.publishes.filter((p) => p.packet.topic.startsWith('b'))) broker.ack(packet.messageId!);
    await kept;
    await until(
      () => handler.health().detail === '0 awaiting PUBACK',
      () => String(handler.health().detail),
    );
    assert.equal(handler.counts.acknowledged, 2);
  });

  test('stop() during a batch returns at once and fails the batch as retryable', async (t) => {
    const broker = await fake(t, { puback: () => 'never' });
    const handler = create({ url: broker.url, topic: 't', ackTimeoutMs: 60_000 });
    track(t, handler);
    await handler.start();
    const batch = handler.handle([{ ident: 'a' }, { ident: 'b' }], ctx());
    await until(
      () => broker.publishes.length === 2,
      () => `${broker.publishes.length} publishes`,
    );
    const stopped = await Promise.race([handler.stop().then(() => true), new Promise<false>((r) => setTimeout(r, 3000, false))]);
    assert.ok(stopped, 'stop() waited for PUBACKs that never come');
    const error = await failure(batch);
    assert.ok(error instanceof TransientError);
    assert.equal(error.message, `publish to ${broker.url} failed: Connection closed: 2 of 2 messages not acknowledged`);
  });

  test('QoS 0 to a broker that stops reading: the batch fails when nothing could be written for ackTimeoutMs', async (t) => {
    const broker = await fake(t);
    const handler = create({ url: broker.url, topic: 't', qos: 0, ackTimeoutMs: 300 });
    track(t, handler);
    await handler.start();
    broker.stopReading();
    // 40 MB: more than the socket buffers between the two ends hold.
    const big = 'w'.repeat(1 << 20);
    const error = await failure(
      handler.handle(
        Array.from({ length: 40 }, (_, i) => ({ ident: `q${i}`, big })),
        ctx(),
      ),
    );
    assert.ok(error instanceof TransientError);
    assert.match(error.message, /^no write from mqtt:\/\/127\.0\.0\.1:\d+ for 300 ms \(ackTimeoutMs\): \d+ of 40 messages not acknowledged$/);
    assert.equal(error.message.split(' ')[3], broker.url);
  });
});

describe('MQTT sink: packet size limits', () => {
  test('MQTT 5: a message of exactly the announced maximum packet size is published, one byte more is rejected, also when most of it is 3-byte characters', async (t) => {
    const broker = await fake(t, { connack: announcing(300) });
    const handler = create({ url: broker.url, topic: 'size', protocolVersion: 5 });
    track(t, handler);
    await handler.start();
    const recorded = recordingContext();
    // PUBLISH = 1 + 2 (remaining length) + 2 + 4 (topic) + 2 (packet id) + 1 (properties) + payload {"p":"…"}, 8 + the text
    await handler.handle([{ p: 'x'.repeat(280) }, { p: 'x'.repeat(281) }, { p: `xx${'€'.repeat(93)}` }], recorded);
    const over = `the message is 301 bytes as an MQTT packet; the broker at ${broker.url} accepts at most 300`;
    assert.deepEqual(recorded.reasons(), [`1: ${over}`, `2: ${over}`]);
    assert.deepEqual(
      broker.publishes.map((p) => p.bytes),
      [300],
    );
  });

  test('MQTT 5 sizes are counted with the remaining length field at each of its widths, for QoS 1 and QoS 0; a batch with nothing left to publish succeeds', async (t) => {
    const broker = await fake(t, { connack: announcing(100) });
    const qos1 = create({ url: broker.url, topic: 'size', protocolVersion: 5, ackTimeoutMs: 100 });
    track(t, qos1);
    await qos1.start();
    // remaining length = payload + 17 with QoS 1 ({"p":"…"} is the text + 8)
    const remaining = [127, 128, 16_383, 16_384, 2_097_151, 2_097_152];
    const recorded = recordingContext();
    await qos1.handle(
      remaining.map((r) => ({ p: 'x'.repeat(r - 17) })),
      recorded,
    );
    const tooBig = (bytes: number) => `the message is ${bytes} bytes as an MQTT packet; the broker at ${broker.url} accepts at most 100`;
    assert.deepEqual(
      recorded.reasons(),
      [129, 131, 16_386, 16_388, 2_097_155, 2_097_157].map((bytes, i) => `${i}: ${tooBig(bytes)}`),
    );
    assert.equal(broker.publishes.length, 0);

    const qos0 = create({ url: broker.url, topic: 'size', protocolVersion: 5, qos: 0 });
    track(t, qos0);
    await qos0.start();
    const zero = recordingContext();
    await qos0.handle([{ p: 'x'.repeat(100) }], zero);
    assert.deepEqual(zero.reasons(), [`0: ${tooBig(117)}`], 'no packet id with QoS 0');
  });

  test("MQTT 3.1.1: the limit is MQTT's own, 268,435,460 bytes", async (t) => {
    const broker = await fake(t);
    const handler = create({ url: broker.url, topic: 'size' });
    track(t, handler);
    await handler.start();
    const recorded = recordingContext();
    // 1 + 4 + 2 + 4 + 2 + payload (the text + 8): one byte over the limit
    await handler.handle([{ p: 'x'.repeat(268_435_440) }], recorded);
    assert.deepEqual(recorded.reasons(), ['0: the message is 268435461 bytes as an MQTT packet; MQTT accepts at most 268435460']);
  });
});

/** A raw TCP server that does `onData` with the first bytes a client sends (a TLS ClientHello, a CONNECT). */
async function rawServer(t: TestContext, onData: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => onData(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as { port: number }).port;
}

describe('MQTT sink over TLS (scripted broker)', () => {
  let pki: TestPki;
  const clientTls = () => ({ caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key });
  const serving = async (t: TestContext, files: { cert: string; key: string }, options: FakeMqttOptions = {}) =>
    fake(t, { ...options, tls: { cert: await readFile(files.cert), key: await readFile(files.key), ...options.tls } });

  before(async () => {
    pki = await createTestPki();
  });
  after(() => pki?.cleanup());

  test('AWS IoT closing the connection before its CONNACK is explained as a refused device certificate, with what to check in AWS', async (t) => {
    const broker = await serving(t, pki.server, { connack: 'close' });
    const handler = create({ endpoint: '127.0.0.1', port: broker.port, ...clientTls() }, awsIotSpec);
    assert.equal(
      await startError(handler),
      `the broker at mqtts://127.0.0.1:${broker.port} closed the connection before accepting it: the broker refused the client certificate ${pki.client.cert}: is it registered and active in AWS IoT (in this region), with a policy that allows iot:Connect for this clientId?`,
    );
  });

  test('port 443 asks for the x-amzn-mqtt-ca protocol by ALPN; 8883 does not', async (t) => {
    const broker = await serving(t, pki.server, { tls: { ALPNProtocols: ['x-amzn-mqtt-ca'] } });
    const on443 = create({ endpoint: '127.0.0.1', port: 443, ...clientTls() }, awsIotSpec).settings;
    // The settings of port 443, pointed at the local broker.
    const handler = new MqttHandler({ ...on443, url: broker.url }, 'alpn');
    track(t, handler);
    await handler.start();
    const plain = create({ endpoint: '127.0.0.1', port: broker.port, ...clientTls() }, awsIotSpec);
    track(t, plain);
    await plain.start();
    assert.deepEqual(broker.alpn, ['x-amzn-mqtt-ca', false]);
  });

  test('a caFile in DER form is converted and trusted', async (t) => {
    const broker = await serving(t, pki.server);
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-der-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const der = join(dir, 'ca.der');
    await writeFile(der, new X509Certificate(await readFile(pki.ca.cert)).raw);
    const handler = create({ url: broker.url, caFile: der });
    track(t, handler);
    await handler.start();
    assert.equal(handler.health().connected, true);
  });

  test("the broker's certificate: self-signed, from a CA this computer does not trust, expired, not yet valid", async (t) => {
    const own = { cert: join(pki.dir, 'self-signed.crt'), key: join(pki.dir, 'self-signed.key') };
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      own.key,
      '-out',
      own.cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const selfSigned = await serving(t, own);
    assert.equal(
      await startError(create({ url: selfSigned.url })),
      "the broker's certificate is not signed by a CA this computer trusts (DEPTH_ZERO_SELF_SIGNED_CERT): set caFile to the CA certificate that signed it",
    );
    const untrusted = await serving(t, pki.server);
    assert.equal(
      await startError(create({ url: untrusted.url })),
      "the broker's certificate is not signed by a CA this computer trusts (UNABLE_TO_VERIFY_LEAF_SIGNATURE): set caFile to the CA certificate that signed it",
    );
    const altNames = ['IP:127.0.0.1'];
    const old = await pki.ca.issue('old-server', { usage: 'server', altNames, notBefore: new Date('2019-01-01'), notAfter: new Date('2020-01-01') });
    const expired = await serving(t, old);
    assert.equal(
      await startError(create({ url: expired.url, caFile: pki.ca.cert })),
      "the broker's certificate has expired (check the broker, or this computer's clock)",
    );
    const early = await pki.ca.issue('early-server', { usage: 'server', altNames, notBefore: new Date('2099-01-01'), notAfter: new Date('2100-01-01') });
    const future = await serving(t, early);
    assert.equal(await startError(create({ url: future.url, caFile: pki.ca.cert })), "the broker's certificate is not valid yet (check this computer's clock)");
  });

  test('mqtts:// to a port that answers in clear text; a connection reset during setup, with and without a client certificate, and over mqtt://', async (t) => {
    const plain = await rawServer(t, (socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    assert.equal(
      await startError(create({ url: `mqtts://127.0.0.1:${plain}` })),
      `127.0.0.1:${plain} does not speak TLS: use mqtt:// (or ws://), or the broker's TLS port`,
    );
    const resetting = await rawServer(t, (socket) => socket.resetAndDestroy());
    assert.equal(
      await startError(create({ url: `mqtts://127.0.0.1:${resetting}`, ...clientTls() })),
      `127.0.0.1:${resetting} closed the connection during setup (ECONNRESET): the broker refused the client certificate ${pki.client.cert}: is it signed by a CA the broker trusts?`,
    );
    assert.equal(
      await startError(create({ url: `mqtts://127.0.0.1:${resetting}` })),
      `127.0.0.1:${resetting} closed the connection (ECONNRESET): it may require a client certificate (certFile and keyFile)`,
    );
    assert.equal(
      await startError(create({ url: `mqtt://127.0.0.1:${resetting}` })),
      `127.0.0.1:${resetting} closed the connection (ECONNRESET): if this port expects TLS, use mqtts:// (or wss://)`,
    );
  });

  test("a TLS record garbled after the CONNACK: the connection is lost with OpenSSL's reason, trimmed", async (t) => {
    const broker = await serving(t, pki.server);
    // A TCP relay in front of the broker, to slip a record nobody encrypted to the client.
    let toClient: Socket | undefined;
    const relay = createServer((client) => {
      toClient = client;
      const upstream = connect(broker.port, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => {});
      upstream.on('error', () => {});
      t.after(() => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => relay.close(() => r())));
    const url = `mqtts://127.0.0.1:${(relay.address() as { port: number }).port}`;
    const handler = create({ url, caFile: pki.ca.cert });
    track(t, handler);
    await handler.start();
    toClient!.end(Buffer.from(`1703030020${'00'.repeat(32)}`, 'hex'));
    await until(
      () => !handler.health().connected,
      () => 'the close',
    );
    const detail = handler.health().detail ?? '';
    assert.ok(detail.startsWith(`connection to ${url} lost (`), detail);
    assert.match(detail, /lost \([0-9A-F]+:error:[0-9A-F]+:SSL routines:[^\s]*:[a-z ]+:[^\s]*:\)$/);
  });

  test('TLS files that cannot be used are named with what to do', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-files-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const url = 'mqtts://127.0.0.1:1';
    const startFails = (options: Options) => startError(create({ url, ...options }));

    const encrypted = join(dir, 'encrypted.key');
    const key = createPrivateKey(await readFile(pki.client.key));
    await writeFile(encrypted, key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }), { mode: 0o600 });
    assert.equal(
      await startFails({ certFile: pki.client.cert, keyFile: encrypted }),
      `keyFile ${encrypted} is encrypted with a passphrase: decrypt it (openssl pkey -in ${encrypted} -out <new file>) and point keyFile at the result`,
    );

    const under = join(pki.ca.cert, 'ca.pem');
    assert.equal(await startFails({ caFile: under }), `cannot read caFile ${under}: ENOTDIR: not a directory, open '${under}'`);

    const text = join(dir, 'notes.txt');
    await writeFile(text, 'not a certificate\n');
    assert.equal(await startFails({ caFile: text }), `caFile ${text} is not a certificate: expected a PEM file starting with "-----BEGIN CERTIFICATE-----"`);
    assert.equal(
      await startFails({ certFile: pki.client.key, keyFile: pki.client.key }),
      `certFile ${pki.client.key} is not a certificate: expected a PEM file starting with "-----BEGIN CERTIFICATE-----" (this looks like a private key; it belongs in keyFile)`,
    );
  });

  test('a caFile this process may not read says so', async (t) => {
    // As root, mode 000 does not stop reading; a write-only file of /proc/sys still does.
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-unreadable-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const noAccess = join(dir, 'ca.pem');
    await writeFile(noAccess, 'x', { mode: 0o000 });
    const refusesReading = (path: string) =>
      readFile(path).then(
        () => false,
        (error: NodeJS.ErrnoException) => error.code === 'EACCES',
      );
    const unreadable = (await refusesReading(noAccess)) ? noAccess : '/proc/sys/vm/compact_memory';
    if (!(await refusesReading(unreadable))) return t.skip('no file here that this process cannot read');
    assert.equal(
      await startError(create({ url: 'mqtts://127.0.0.1:1', caFile: unreadable })),
      `caFile ${unreadable} is not readable by this process (permission denied)`,
    );
  });
});

describe('MQTT sink: connection errors explained', () => {
  const base = create({ url: 'mqtts://broker.example.com', connectTimeoutMs: 1234 }).settings;
  const explain = (error: Partial<Error> & { code?: string | number; reason?: string }, settings: Partial<MqttSettings> = {}) =>
    explainConnectionError(Object.assign(new Error(error.message ?? 'boom'), error), { ...base, refusedCertificateHint: 'HINT', ...settings });

  test("each of Node's codes for a host that cannot be reached, and the default port of each scheme", () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']) {
      assert.equal(explain({ code }), `cannot reach broker.example.com:8883 (${code}): check url, and that the broker is running and reachable from here`);
    }
    const ports = ['mqtt://h', 'ws://h', 'wss://h', 'mqtts://h:1'].map((url) => explain({ code: 'ECONNREFUSED' }, { url, addressSetting: 'endpoint' }));
    assert.deepEqual(
      ports.map((text) => text.replace(/ \(ECONNREFUSED\): check endpoint, and that the broker is running and reachable from here$/, '')),
      ['cannot reach h:1883', 'cannot reach h:80', 'cannot reach h:443', 'cannot reach h:1'],
    );
  });

  test("each of OpenSSL's codes for a broker certificate that is not trusted", () => {
    for (const code of [
      'SELF_SIGNED_CERT_IN_CHAIN',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_SIGNATURE_FAILURE',
      'CERT_UNTRUSTED',
      'CERT_CHAIN_TOO_LONG',
    ]) {
      assert.equal(
        explain({ code }),
        `the broker's certificate is not signed by a CA this computer trusts (${code}): set caFile to the CA certificate that signed it`,
      );
      assert.equal(
        explain({ code }, { caFile: '/ca.pem' }),
        `the broker's certificate is not signed by the CA in caFile /ca.pem (${code}): point caFile at the CA that signed the broker's certificate`,
      );
    }
  });

  test('CONNACK refusals: a rejected clientId on flespi means the token; other codes get no advice', () => {
    assert.equal(
      explain({ code: 2, message: 'Connection refused: Identifier rejected' }, { url: 'mqtts://mqtt.flespi.io' }),
      'the broker at mqtts://mqtt.flespi.io refused the connection: Identifier rejected: flespi answers this to a wrong or expired token: check "username" (the flespi token); if it is right, set another clientId',
    );
    assert.equal(
      explain({ code: 1, message: 'Connection refused: Unacceptable protocol version' }),
      'the broker at mqtts://broker.example.com refused the connection: Unacceptable protocol version',
    );
  });

  test('TLS alerts, resets and other errors', () => {
    assert.equal(
      explain({ code: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: 'the reason', message: 'the message' }, { url: 'mqtts://[::1]:8883' }),
      "the broker's certificate is not issued for [::1] (the reason): connect using a host name the certificate lists",
    );
    assert.equal(
      explain({ code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: 'the message' }),
      "the broker's certificate is not issued for broker.example.com (the message): connect using a host name the certificate lists",
    );
    assert.equal(
      explain({ code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED' }, { certFile: '/c.pem' }),
      'the broker says the client certificate /c.pem has expired: issue a new one',
    );
    assert.equal(
      explain({ code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' }),
      'the broker at broker.example.com:8883 refused the TLS handshake (ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE): it may require a client certificate (certFile and keyFile)',
    );
    assert.equal(explain({ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }, { certFile: '/c.pem' }), 'the broker refused the client certificate /c.pem: HINT');
    assert.equal(
      explain({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }),
      'the broker at broker.example.com:8883 requires a client certificate: set certFile and keyFile',
    );
    assert.equal(
      explain({ code: 'EPIPE' }, { url: 'ws://h:8080' }),
      'h:8080 closed the connection (EPIPE): if this port expects TLS, use mqtts:// (or wss://)',
    );
    assert.equal(
      explain({ code: 'EPIPE' }, { certFile: '/c.pem' }),
      'broker.example.com:8883 closed the connection during setup (EPIPE): the broker refused the client certificate /c.pem: HINT',
    );
    assert.equal(
      explain({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }),
      "broker.example.com:8883 does not speak TLS: use mqtt:// (or ws://), or the broker's TLS port",
    );
    assert.equal(
      explain({ code: 'ERR_SSL_PACKET_LENGTH_TOO_LONG' }),
      "broker.example.com:8883 does not speak TLS: use mqtt:// (or ws://), or the broker's TLS port",
    );
    assert.equal(
      explain({ code: 'EPROTO', message: 'write EPROTO 80:error:0A0000C6:SSL routines:tls_get_more_records:packet length too long:../x.c:1:\n' }),
      "broker.example.com:8883 does not speak TLS: use mqtt:// (or ws://), or the broker's TLS port",
    );
    assert.equal(explain({ code: 'EPROTO', message: 'write EPROTO other' }), 'connection to mqtts://broker.example.com failed (EPROTO): write EPROTO other');
    assert.equal(explain({ code: 'EWEIRD', message: '  odd\n' }), 'connection to mqtts://broker.example.com failed (EWEIRD): odd');
    assert.equal(explain({ message: 'Something else' }), 'connection to mqtts://broker.example.com failed: Something else');
    assert.equal(
      explain({ message: 'connack timeout' }),
      'the broker at mqtts://broker.example.com did not answer the MQTT connect within 1234 ms (connectTimeoutMs)',
    );
  });
});

describe('MQTT sink settings in full', () => {
  const configError = (options: Options, spec: HandlerSpec = mqttSpec) => settingsError(spec, options, env, 'sink');

  test('the two specs: their type and title, and the type and name of an entry are not unknown settings', () => {
    assert.equal(mqttSpec.type, 'mqtt');
    assert.equal(mqttSpec.title, 'MQTT broker: publish each message as JSON to a topic built from its fields');
    assert.equal(awsIotSpec.type, 'aws-iot');
    assert.equal(awsIotSpec.title, 'AWS IoT Core: publish each message as JSON over MQTT with a device certificate');
    assert.ok(mqttSpec.create({ type: 'mqtt', name: 'a', url: 'mqtt://h' }, env, 'a') instanceof MqttHandler);
    assert.ok(awsIotSpec.create({ type: 'aws-iot', name: 'b', endpoint: 'h', certFile: 'c', keyFile: 'k' }, env, 'b') instanceof MqttHandler);
  });

  test('url errors give an example and where credentials go', () => {
    assert.equal(configError({ url: 'nonsense' }), 'handler "sink" (mqtt): "url" must be a URL like mqtts://broker.example.com:8883, got "nonsense"');
    assert.equal(
      configError({ url: 'mqtts://u:p@h' }),
      'handler "sink" (mqtt): "url" must not contain credentials: use "username" and "password" (or "passwordEnv")',
    );
  });

  test('AWS IoT topics may have 7 slashes, not 8', () => {
    const aws = { endpoint: 'h', certFile: 'c', keyFile: 'k' };
    assert.equal(create({ ...aws, topic: 'a/b/c/d/e/f/g/{ident}' }, awsIotSpec).settings.topic.source, 'a/b/c/d/e/f/g/{ident}');
    assert.equal(
      configError({ ...aws, topic: 'a/b/c/d/e/f/g/h/{ident}' }, awsIotSpec),
      'handler "sink" (aws-iot): "topic" has 8 slashes; AWS IoT allows at most 7',
    );
  });

  test("flespi's brokers: flespi.io itself and a name with the final dot count; something that is not a URL does not", () => {
    assert.equal(isFlespiBroker('mqtts://flespi.io'), true);
    assert.equal(isFlespiBroker('mqtts://mqtt.flespi.io.:8883'), true);
    assert.equal(isFlespiBroker('mqtts://notflespi.io'), false);
    assert.equal(isFlespiBroker('not a url'), false);
    assert.match(configError({ url: 'mqtt://flespi.io', topic: 'flespi/{ident}' }), /^handler "sink" \(mqtt\): "topic" "flespi\/\{ident\}" is under flespi\//);
  });

  test("on flespi's broker a message whose topic falls under flespi/ is rejected, quoting at most 200 characters of the topic", () => {
    const handler = create({ url: 'mqtts://mqtt.flespi.io', topic: '{kind}/{ident}', username: 'token' });
    const recorded = recordingContext();
    // prepare() is where the rule lives; nothing here can connect to flespi.io.
    const prepare = (handler as unknown as { prepare(messages: FlespiMessage[], ctx: HandlerContext): unknown[] }).prepare.bind(handler);
    assert.deepEqual(prepare([{ kind: 'flespi', ident: 'i'.repeat(300) }], recorded), []);
    assert.deepEqual(recorded.reasons(), [
      `0: the topic ${JSON.stringify(`flespi/${'i'.repeat(193)}`)} is under flespi/, where flespi's broker discards client publishes: it would be acknowledged and never delivered`,
    ]);
  });
});
