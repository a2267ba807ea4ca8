// MqttSource at its edges, against a scripted MQTT broker on a real socket (test/support/fakeMqtt.ts):
// each CONNACK and SUBACK refusal and the error it becomes, what the CONNECT asks for, exact batch
// limits, PUBACKs held until the batch is acknowledged and sent in arrival order, reading stopped at
// maxUnacked, DISCONNECT reason codes, quick closes, and what a reconnect does with the session.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { FlespiError } from '../../src/core/errors';
import { defaultClientId, MqttSessionTakenOverError, MqttSource, type MqttSourceOptions } from '../../src/core/sources/mqtt';
import type { SourceBatch } from '../../src/core/sources/source';
import { startFakeMqtt, type FakeMqtt, type FakeMqttOptions } from '../support/fakeMqtt';
import { eventually } from '../sandbox/mqtt-helpers';
import { isFlespiError } from '../support/flespiFailure';
import { memoryLogger } from '../support/logger';

const CHANNEL = 42;
const TOPIC = `flespi/message/gw/channels/${CHANNEL}/7`;
const never = new AbortController().signal;

let brokers: FakeMqtt[] = [];
let sources: MqttSource[] = [];
afterEach(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await Promise.all(brokers.map((b) => b.close()));
  brokers = [];
  sources = [];
});

async function broker(options?: FakeMqttOptions): Promise<FakeMqtt> {
  const started = await startFakeMqtt(options);
  brokers.push(started);
  return started;
}

function source(url: string, options: Partial<MqttSourceOptions> = {}): MqttSource {
  const created = new MqttSource({ url, token: 'TOKEN', channelId: CHANNEL, clientId: 'edge', reconnect: { initialMs: 20, maxMs: 40 }, ...options });
  sources.push(created);
  return created;
}

const ids = (batch: SourceBatch) => batch.messages.map((m) => m.n);
const pubackIds = (b: FakeMqtt) => b.pubacks.map((p) => p.messageId);

describe('MqttSource options', () => {
  test('refuses a bad channel id, an empty token, limits that are not positive integers and a group with / + or #', () => {
    const url = 'mqtt://127.0.0.1:1';
    const make = (options: Partial<MqttSourceOptions>) => () => new MqttSource({ url, token: 'T', channelId: 1, ...options });
    assert.throws(make({ channelId: 0 }), /^RangeError: MqttSource channelId must be a positive integer, got 0$/);
    assert.throws(make({ channelId: 1.5 }), /channelId must be a positive integer, got 1.5/);
    assert.throws(make({ token: '  ' }), (e: unknown) => e instanceof FlespiError && e.kind === 'auth' && /no flespi token given/.test(e.message));
    assert.throws(make({ batchMaxMessages: 0 }), /^RangeError: MqttSource batchMaxMessages must be a positive integer, got 0$/);
    assert.throws(make({ batchMaxMessages: 2.5 }), /batchMaxMessages must be a positive integer, got 2.5/);
    assert.throws(make({ maxUnacked: 0 }), /^RangeError: MqttSource maxUnacked must be a positive integer, got 0$/);
    for (const group of ['a/b', 'a+', '#', ''])
      assert.throws(make({ group }), new RegExp(`group "${group.replace(/[+]/g, '\\+')}" is invalid: use a name without`));
    assert.doesNotThrow(make({ channelId: 1, batchMaxMessages: 1, maxUnacked: 1, group: 'workers' }));
  });

  test('describes itself by channel, broker and group, never the token', () => {
    const plain = new MqttSource({ url: 'mqtts://user:secret@mqtt.example.com:8883', token: 'SECRET', channelId: 5 });
    assert.equal(plain.description, 'channel 5 over MQTT (mqtts://mqtt.example.com:8883)');
    const grouped = new MqttSource({ url: 'mqtt://127.0.0.1:1883', token: 'SECRET', channelId: 5, group: 'g1' });
    assert.equal(grouped.description, 'channel 5 over MQTT (mqtt://127.0.0.1:1883, group g1)');
    assert.equal(plain.state, 'offline');
    assert.deepEqual(plain.stats, { received: 0, malformed: 0, redelivered: 0, gapFilled: 0, duplicatesSkipped: 0, reconnects: 0, takeovers: 0, unacked: 0 });
  });

  test('the default clientId: channel and a cleaned host name, and a hash (6 hex, 10 with an owner) only when group, filter or owner are set', () => {
    const host =
      hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '')
        .slice(0, 40) || 'host';
    assert.equal(defaultClientId(9), `flespi-receiver-9-${host}`);
    assert.match(defaultClientId(9, 'g'), new RegExp(`^flespi-receiver-9-${host.replace(/\./g, '\\.')}-[0-9a-f]{6}$`));
    assert.match(defaultClientId(9, undefined, 'speed>1'), /-[0-9a-f]{6}$/);
    assert.match(defaultClientId(9, undefined, undefined, '/cfg'), /-[0-9a-f]{10}$/);
    assert.notEqual(defaultClientId(9, 'g'), defaultClientId(9, undefined, 'g'), 'group and filter are told apart');
    assert.notEqual(defaultClientId(9, 'g', undefined, '/a'), defaultClientId(9, 'g', undefined, '/b'));
    assert.notEqual(defaultClientId(9, 'g', undefined, '/a').slice(0, -10), defaultClientId(9, 'g').slice(0, -6) + 'x', 'owner changes the hash');
    assert.equal(new MqttSource({ url: 'mqtt://h', token: 'T', channelId: 9, group: 'g' }).clientId, defaultClientId(9, 'g'));
    assert.equal(new MqttSource({ url: 'mqtt://h', token: 'T', channelId: 9, clientId: 'mine' }).clientId, 'mine');
  });
});

describe('MqttSource against a scripted broker', { timeout: 30_000 }, () => {
  test('the CONNECT asks for a persistent session with the token, clientId, keepalive, session expiry and Receive Maximum', async () => {
    const b = await broker();
    await source(b.url, { token: 'FlespiToken TOKEN', maxUnacked: 70_000, keepaliveSeconds: 15, sessionExpirySeconds: 120 }).open(undefined);
    await source(b.url, { clientId: 'defaults' }).open(undefined);
    await source(b.url, { clientId: 'v4', protocolVersion: 4 }).open(undefined);
    const [first, second, v4] = b.connects;
    assert.equal(first.clientId, 'edge');
    assert.equal(first.username, 'TOKEN');
    assert.equal(first.clean, false);
    assert.equal(first.keepalive, 15);
    assert.equal(first.protocolVersion, 5);
    assert.deepEqual(first.properties, { sessionExpiryInterval: 120, receiveMaximum: 65535 });
    assert.equal(second.keepalive, 60);
    assert.deepEqual(second.properties, { sessionExpiryInterval: 3600, receiveMaximum: 10_000 });
    assert.equal(v4.protocolVersion, 4);
    assert.equal(v4.clean, false);
    assert.deepEqual(b.subscriptions, [
      `flespi/message/gw/channels/${CHANNEL}/+`,
      `flespi/message/gw/channels/${CHANNEL}/+`,
      `flespi/message/gw/channels/${CHANNEL}/+`,
    ]);
    await assert.rejects(sources[0].open(undefined), /MqttSource.open\(\) called twice/);
  });

  for (const [version, code, kind, pattern] of [
    [5, 134, 'auth', /refused the token \(CONNACK 134\): check the token/],
    [5, 135, 'auth', /refused the token \(CONNACK 135\)/],
    [5, 138, 'forbidden', /CONNACK 138 banned\): the token or account is blocked/],
    [5, 133, 'bad-request', /rejected the client id "edge" \(CONNACK 133\): set another clientId/],
    [5, 0x80, 'server', /refused the connection \(CONNACK 128: .*\); retrying/],
    [4, 4, 'auth', /refused the token \(CONNACK 4\)/],
    [4, 5, 'auth', /refused the token \(CONNACK 5\)/],
    [4, 2, 'auth', /CONNACK 2 "identifier rejected".*may refuse the client id "edge": set another clientId/],
    [4, 3, 'server', /at mqtt:\/\/127\.0\.0\.1:\d+ refused the connection \(CONNACK 3: /],
  ] as const) {
    test(`MQTT ${version === 5 ? '5' : '3.1.1'} CONNACK ${code} fails open() as ${kind}, leaves the source offline and can be opened again`, async () => {
      let connections = 0;
      const b = await broker({ connack: () => (++connections === 1 ? code : 0) });
      const states: string[] = [];
      const s = source(b.url, { protocolVersion: version, onState: (state, detail) => states.push(`${state}:${detail ?? ''}`) });
      await assert.rejects(s.open(undefined), isFlespiError(kind, pattern));
      assert.equal(s.state, 'offline');
      assert.match(states.at(-1)!, new RegExp(`^offline:.*CONNACK ${code}`));
      await s.open(undefined);
      assert.equal(s.state, 'connected');
    });
  }

  test('nobody listening: a network error naming the broker; a broker that closes before CONNACK: "closed before the broker accepted it"', async () => {
    const b = await broker();
    const url = b.url;
    await b.close();
    brokers = [];
    await assert.rejects(source(url).open(undefined), isFlespiError('network', /^cannot connect to flespi MQTT at mqtt:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/));
    const silent = await broker({ connack: 'never' });
    const s = source(silent.url);
    const opening = s.open(undefined);
    await eventually(() => silent.connects.length === 1);
    silent.disconnect();
    await assert.rejects(opening, isFlespiError('network', /the connection closed before the broker accepted it/));
  });

  for (const [code, kind, pattern] of [
    [135, 'forbidden', /refused the subscription to flespi\/message\/gw\/channels\/42\/\+ \(SUBACK 135\): the token has no access to channel 42/],
    [0x80, 'forbidden', /\(SUBACK 128\): the token has no access/],
    [143, 'bad-request', /\(SUBACK 143 topic filter invalid\): check the filter expression and group name/],
    [0x9e, 'bad-request', /\(SUBACK 158 shared subscriptions not supported\): remove source\.group/],
    [0xa2, 'bad-request', /\(SUBACK 162 wildcard subscriptions not supported\)/],
    // Quota exceeded may pass: it stays a retryable failure.
    [0x97, 'network', /^subscribing to flespi\/message\/gw\/channels\/42\/\+ failed: /],
  ] as const) {
    test(`SUBACK ${code} fails open() as ${kind}`, async () => {
      const b = await broker({ suback: () => code });
      await assert.rejects(source(b.url).open(undefined), isFlespiError(kind, pattern));
    });
  }

  test('batches: exactly batchMaxMessages, the rest after batchMaxWaitMs; counted as received', async () => {
    const b = await broker();
    const s = source(b.url, { batchMaxMessages: 3, batchMaxWaitMs: 300 });
    await s.open(undefined);
    for (let n = 1; n <= 7; n++) b.publish(TOPIC, { ident: 'a', n });
    const batches = [await s.next(never), await s.next(never), await s.next(never)];
    assert.deepEqual(batches.map(ids), [[1, 2, 3], [4, 5, 6], [7]]);
    assert.deepEqual(
      batches.map((batch) => batch.seq),
      [1, 2, 3],
    );
    assert.equal(s.stats.received, 7);
    assert.equal(s.stats.unacked, 7);
  });

  test('a lone message waits batchMaxWaitMs for company, and one arriving meanwhile joins its batch', async () => {
    const b = await broker();
    const s = source(b.url, { batchMaxWaitMs: 400 });
    await s.open(undefined);
    b.publish(TOPIC, { ident: 'a', n: 1 });
    const next = s.next(never);
    await new Promise((resolve) => setTimeout(resolve, 100));
    b.publish(TOPIC, { ident: 'a', n: 2 });
    assert.deepEqual(ids(await next), [1, 2]);
  });

  test('PUBACKs wait for ack(), go out in arrival order (a later batch acknowledged first waits), once each; QoS 0 and redelivered copies are counted', async () => {
    const b = await broker();
    const s = source(b.url, { batchMaxMessages: 2, batchMaxWaitMs: 50 });
    await s.open(undefined);
    b.publish(TOPIC, { ident: 'a', n: 1 }, { messageId: 11 });
    b.publish(TOPIC, { ident: 'a', n: 2 }, { messageId: 12, dup: true });
    b.publish(TOPIC, { ident: 'a', n: 3 }, { messageId: 13 });
    b.publish(TOPIC, { ident: 'a', n: 4 }, { qos: 0 });
    const first = await s.next(never);
    const second = await s.next(never);
    assert.deepEqual(
      [ids(first), ids(second)],
      [
        [1, 2],
        [3, 4],
      ],
    );
    assert.equal(s.stats.redelivered, 1);
    assert.equal(s.stats.unacked, 3);
    await s.ack(second);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(pubackIds(b), [], 'message 13 waits for 11 and 12');
    await s.ack(first);
    await eventually(() => b.pubacks.length === 3);
    assert.deepEqual(pubackIds(b), [11, 12, 13]);
    assert.equal(s.stats.unacked, 0);
    await s.ack(first);
    await s.ack(second);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(pubackIds(b), [11, 12, 13], 'acknowledging again sends nothing');
  });

  test('a malformed payload is acknowledged at once when nothing is ahead of it, later when something is; it is counted and logged with its topic', async () => {
    const b = await broker();
    const log = memoryLogger();
    const s = source(b.url, { batchMaxWaitMs: 50, log });
    await s.open(undefined);
    b.publish(TOPIC, 'not json', { messageId: 1 });
    await eventually(() => b.pubacks.length === 1);
    b.publish(TOPIC, { ident: 'a', n: 1 }, { messageId: 2 });
    b.publish(TOPIC, '[1]', { messageId: 3 });
    const batch = await s.next(never);
    assert.deepEqual(ids(batch), [1]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(pubackIds(b), [1], 'the malformed message 3 waits for message 2');
    await s.ack(batch);
    await eventually(() => b.pubacks.length === 3);
    assert.deepEqual(pubackIds(b), [1, 2, 3]);
    assert.equal(s.stats.malformed, 2);
    assert.equal(log.at('warn').length, 2);
    assert.match(log.at('warn')[0], new RegExp(`^skipped a message on ${TOPIC}: .*; it is acknowledged since it can never be handled$`));
  });

  test('at maxUnacked the source stops reading until ack() makes room', async () => {
    const b = await broker();
    const s = source(b.url, { maxUnacked: 2, batchMaxWaitMs: 50 });
    await s.open(undefined);
    for (let n = 1; n <= 5; n++) b.publish(TOPIC, { ident: 'a', n });
    const first = await s.next(never);
    assert.deepEqual(ids(first), [1, 2]);
    const waiting = s.next(AbortSignal.timeout(300));
    await assert.rejects(waiting, /aborted|timeout/i, 'nothing more is read while 2 are unacknowledged');
    assert.equal(s.stats.unacked, 2);
    await s.ack(first);
    const second = await s.next(never);
    assert.deepEqual(ids(second), [3, 4]);
    await s.ack(second);
    assert.deepEqual(ids(await s.next(never)), [5]);
  });

  test('next() rejects at once when aborted or closed; close() leaves the state offline "closed"', async () => {
    const b = await broker();
    const states: string[] = [];
    const s = source(b.url, { onState: (state, detail) => states.push(`${state}:${detail ?? ''}`) });
    await s.open(undefined);
    const aborted = new AbortController();
    aborted.abort(new Error('told to stop'));
    await assert.rejects(s.next(aborted.signal), /told to stop/);
    const stopping = new AbortController();
    const waiting = s.next(stopping.signal);
    stopping.abort(new Error('stopped while waiting'));
    await assert.rejects(waiting, /stopped while waiting/);
    await s.close();
    await assert.rejects(s.next(never), /the MQTT source is closed/);
    assert.deepEqual(states, ['connecting:', 'connected:new session', 'offline:closed']);
    await eventually(() => b.connects.length === 1);
  });

  test('a session resumed on reconnect is not subscribed again, and copies not yet handed out are dropped (the broker sends them again)', async () => {
    const b = await broker({ connack: (n) => ({ code: 0, sessionPresent: n > 1 }) });
    const states: string[] = [];
    const log = memoryLogger();
    const s = source(b.url, { batchMaxMessages: 1, batchMaxWaitMs: 10, log, onState: (state, detail) => states.push(`${state}:${detail ?? ''}`) });
    await s.open(undefined);
    b.publish(TOPIC, { ident: 'a', n: 1 }, { messageId: 1 });
    b.publish(TOPIC, { ident: 'a', n: 2 }, { messageId: 2 });
    const first = await s.next(never);
    await eventually(() => s.stats.unacked === 2);
    b.disconnect();
    await eventually(() => b.connects.length === 2 && s.state === 'connected');
    b.publish(TOPIC, { ident: 'a', n: 2 }, { messageId: 5, dup: true });
    const again = await s.next(never);
    assert.deepEqual([ids(first), ids(again)], [[1], [2]], 'message 2 once, its copy of the first connection dropped');
    assert.deepEqual(b.subscriptions.length, 1);
    assert.equal(s.stats.reconnects, 1);
    assert.ok(states.includes('connected:session resumed'), states.join(' '));
    assert.ok(
      states.some((line) => /^reconnecting:connection lost; retrying in 0\.0 s$/.test(line)),
      states.join(' '),
    );
    await s.ack(first); // from the first connection: its PUBACK must not go out on the second
    await s.ack(again);
    await eventually(() => b.pubacks.length === 1);
    assert.deepEqual(b.pubacks, [{ messageId: 5, connection: 2 }]);
    assert.deepEqual(log.at('warn'), []);
  });

  test('a session lost on reconnect is subscribed again and, without gapFill, the loss is logged as such', async () => {
    const b = await broker();
    const log = memoryLogger();
    const s = source(b.url, { log });
    await s.open(undefined);
    b.disconnect();
    await eventually(() => b.subscriptions.length === 2);
    await eventually(() => log.at('warn').length === 1);
    assert.equal(
      log.at('warn')[0],
      'flespi MQTT did not keep the session of edge: messages published meanwhile may not come over MQTT (gapFill is off: they are lost to this receiver)',
    );
  });

  test('a connection that ends while maxUnacked are held is a suspected loss even with the session kept', async () => {
    const b = await broker({ connack: (n) => ({ code: 0, sessionPresent: n > 1 }) });
    const log = memoryLogger();
    const s = source(b.url, { log, maxUnacked: 1, batchMaxWaitMs: 10 });
    await s.open(undefined);
    b.publish(TOPIC, { ident: 'a', n: 1 });
    await s.next(never);
    b.disconnect();
    await eventually(() => log.at('warn').length === 1);
    assert.match(
      log.at('warn')[0],
      /^the connection to flespi MQTT ended while the broker was holding messages back for edge \(1 unacknowledged\); if its session buffer overflowed, it dropped them: /,
    );
    assert.equal(b.subscriptions.length, 1, 'the session was kept: no new subscription');
  });

  test('DISCONNECT 0x97 (quota exceeded) is a suspected loss; DISCONNECT 0x8E stops the source for good', async () => {
    const b = await broker({ connack: (n) => ({ code: 0, sessionPresent: n > 1 }) });
    const log = memoryLogger();
    const s = source(b.url, { log });
    await s.open(undefined);
    b.disconnect(0x97);
    await eventually(() => log.at('warn').length === 1);
    assert.match(log.at('warn')[0], /^flespi MQTT disconnected edge because its session buffer overflowed \(DISCONNECT 0x97 quota exceeded\)/);
    await eventually(() => s.state === 'connected');
    b.disconnect(0x8e);
    await assert.rejects(s.next(never), (error: unknown) => error instanceof MqttSessionTakenOverError && error.clientId === 'edge' && !error.retryable);
    assert.equal(s.stats.takeovers, 1);
    assert.equal(s.state, 'offline');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(b.connects.length, 2, 'it does not take the session back');
  });

  test('three connections in a row closed right after CONNACK are reported once as a probable takeover; the source keeps trying', async () => {
    const b = await broker();
    const log = memoryLogger();
    const states: string[] = [];
    const s = source(b.url, { log, onState: (state, detail) => states.push(`${state}:${detail ?? ''}`) });
    await s.open(undefined);
    for (let n = 1; n <= 4; n++) {
      await eventually(() => b.connects.length === n && s.state === 'connected');
      b.disconnect();
    }
    await eventually(() => b.connects.length === 5 && s.state === 'connected');
    const errors = log.at('error');
    assert.equal(errors.length, 2);
    assert.match(
      errors[0],
      /the broker closed the connection right after accepting it 3 times in a row: most likely another client uses the same clientId "edge"/,
    );
    assert.match(errors[1], /4 times in a row/);
    assert.equal(s.stats.takeovers, 1, 'counted once');
    assert.equal(s.stats.reconnects, 4);
    assert.ok(states.some((line) => /^reconnecting:the broker closed the connection right after accepting it 3 times.*; retrying in \d+\.\d s$/.test(line)));
    // The attempt after the first close is the second connection attempt.
    assert.ok(states.includes('connecting:attempt 2'), states.join(' '));
  });

  test('a token refused on reconnect stops the source with the auth error; a refused resubscription does too', async () => {
    const refused = await broker({ connack: (n) => (n === 1 ? 0 : 135) });
    const log = memoryLogger();
    const s = source(refused.url, { log });
    await s.open(undefined);
    refused.disconnect();
    await assert.rejects(s.next(never), isFlespiError('auth', /refused the token \(CONNACK 135\)/));
    assert.equal(s.state, 'offline');
    assert.match(log.at('error')[0], /CONNACK 135/);

    let subscribes = 0;
    const noAccess = await broker({ suback: () => (++subscribes === 1 ? 1 : 135) });
    const t = source(noAccess.url);
    await t.open(undefined);
    noAccess.disconnect();
    await assert.rejects(t.next(never), isFlespiError('forbidden', /SUBACK 135/));
  });
});
