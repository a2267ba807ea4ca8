// The channel subscription shared by the MQTT source and the live tail: its topic, connect options,
// payload parsing, message key and gap fill, against the sandbox's real broker and REST API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { FlespiClient } from '../../src/core/flespi/client';
import {
  channelTopic,
  connectOptions,
  fillGap,
  messageKey,
  mqttUsername,
  parsePayload,
  Reconnects,
  safeHost,
  type GapFill,
} from '../../src/core/flespi/subscription';
import type { FlespiMessage } from '../../src/core/message';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';

let sandbox: Sandbox;
const clients: MqttClient[] = [];

before(async () => {
  sandbox = await startSandbox({ simulate: false, seed: 3, channels: [3101, 3102, 3103, 3104, 3105, 3106, 3107].map((id) => ({ id, name: `channel-${id}` })) });
});

after(async () => {
  await Promise.all(clients.map((client) => client.endAsync(true)));
  await sandbox?.stop();
});

/** Connects with the shared options and collects what arrives on `topic`. */
async function subscribe(topic: string, options: Partial<Parameters<typeof connectOptions>[0]> = {}) {
  const client = await mqtt.connectAsync(sandbox.mqttUrl, {
    ...connectOptions({ token: sandbox.token, clientId: `subscription-test-${clients.length}`, session: 'clean', ...options }),
    connectTimeout: 5000,
  });
  clients.push(client);
  const received: FlespiMessage[] = [];
  client.on('message', (_topic, payload) => {
    const parsed = parsePayload(payload);
    if (parsed.message) received.push(parsed.message);
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, received };
}

async function eventually(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const restClient = () => new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });

describe('channelTopic', () => {
  test('the filter is URL-encoded (wildcards and slashes stay literal), trimmed, and left out when blank; the group comes first', () => {
    assert.equal(channelTopic(9), 'flespi/message/gw/channels/9/+');
    assert.equal(channelTopic(9, { filter: '   ' }), 'flespi/message/gw/channels/9/+');
    assert.equal(channelTopic(9, { filter: ' ident=="a/+#" ' }), '$filter/payload=ident%3D%3D%22a%2F%2B%23%22/flespi/message/gw/channels/9/+');
    assert.equal(channelTopic(9, { group: 'g', filter: 'x>1' }), '$share/g/$filter/payload=x%3E1/flespi/message/gw/channels/9/+');
  });

  test('the broker applies the filter of the topic: only matching messages arrive, with MQTT wildcards in the expression', async () => {
    const channel = 3101;
    const filtered = await subscribe(channelTopic(channel, { filter: 'note=="a/+#"' }));
    const all = await subscribe(channelTopic(channel));
    sandbox.inject(channel, [
      { ident: 'x', note: 'a/+#', seq: 1 },
      { ident: 'x', note: 'b', seq: 2 },
      { ident: 'x', note: 'a/+#', seq: 3 },
    ]);
    await eventually(() => all.received.length === 3 && filtered.received.length === 2, 'the messages arriving');
    assert.deepEqual(
      filtered.received.map((m) => m.seq),
      [1, 3],
    );
  });
});

describe('connectOptions', () => {
  test('the token goes bare as username; a persistent session asks for expiry and receive maximum, a clean one leaves nothing', () => {
    assert.equal(mqttUsername('  FlespiToken abc '), 'abc');
    assert.equal(mqttUsername('abc'), 'abc');
    const persistent = connectOptions({ token: 'FlespiToken abc', clientId: 'c', session: 'persistent', receiveMaximum: 100_000 });
    assert.deepEqual([persistent.username, persistent.clean, persistent.reconnectPeriod, persistent.resubscribe], ['abc', false, 0, false]);
    assert.deepEqual(persistent.properties, { sessionExpiryInterval: 3600, receiveMaximum: 0xffff });
    const clean = connectOptions({ token: 'abc', clientId: 'c', session: 'clean' });
    assert.equal(clean.clean, true);
    assert.equal(clean.properties, undefined);
    assert.equal(connectOptions({ token: 'abc', clientId: 'c', session: 'persistent', protocolVersion: 4 }).properties, undefined);
  });

  test('the broker accepts a FlespiToken-prefixed token, and keeps a persistent session across a reconnect', async () => {
    const options = { token: `FlespiToken ${sandbox.token}`, clientId: 'subscription-test-persistent', session: 'persistent' as const };
    const first = await mqtt.connectAsync(sandbox.mqttUrl, { ...connectOptions(options), connectTimeout: 5000 });
    await first.subscribeAsync(channelTopic(3102), { qos: 1 });
    await first.endAsync();
    const again = mqtt.connect(sandbox.mqttUrl, { ...connectOptions(options), connectTimeout: 5000 });
    clients.push(again);
    const sessionPresent = await new Promise<boolean>((resolve, reject) => {
      again.once('connect', (connack) => resolve(connack.sessionPresent));
      again.once('error', reject);
    });
    assert.equal(sessionPresent, true, 'the session (and its subscription) was kept');
  });
});

describe('parsePayload', () => {
  test('a JSON object is a message; anything else is an error that says what it was', () => {
    assert.deepEqual(parsePayload(Buffer.from('{"ident":"x","server.timestamp":1}')).message, { ident: 'x', 'server.timestamp': 1 });
    assert.equal(parsePayload(Buffer.from('{"ident":')).error, 'the payload is not JSON (9 bytes)');
    assert.equal(parsePayload('[1,2]').error, 'the payload is JSON array, not a message object');
    assert.equal(parsePayload('null').error, 'the payload is JSON null, not a message object');
    assert.equal(parsePayload('42').error, 'the payload is JSON number, not a message object');
    assert.equal(parsePayload('"text"').error, 'the payload is JSON string, not a message object');
  });
});

describe('safeHost', () => {
  test('never shows credentials, path or query', () => {
    assert.equal(safeHost('mqtts://user:secret@mqtt.flespi.io:8883/path?token=secret'), 'mqtt.flespi.io:8883');
    assert.equal(safeHost('mqtts://user:secret@mqtt.flespi.io:8883/path?token=secret', { scheme: true }), 'mqtts://mqtt.flespi.io:8883');
    assert.equal(safeHost('not a url with secret'), 'the configured MQTT URL');
  });
});

describe('messageKey', () => {
  test('the same message with keys in another order (nested too) has one key; distinct messages sharing server.timestamp and ident do not', () => {
    const a = { ident: 'x', 'server.timestamp': 5, 'position.speed': 1, extra: { b: 1, a: [1, { d: 2, c: 3 }] } };
    const reordered = { extra: { a: [1, { c: 3, d: 2 }], b: 1 }, 'position.speed': 1, 'server.timestamp': 5, ident: 'x' };
    assert.equal(messageKey(a), messageKey(reordered));
    assert.notEqual(messageKey(a), messageKey({ ...a, 'position.speed': 2 }));
    assert.notEqual(messageKey({ ident: 'x', v: [1, 2] }), messageKey({ ident: 'x', v: [2, 1] }), 'arrays keep their order');
  });

  test('a message read over MQTT and over REST has the same key', async () => {
    const channel = 3103;
    const live = await subscribe(channelTopic(channel));
    sandbox.inject(channel, [{ ident: 'k', seq: 1, nested: { z: 1, y: 2 } }]);
    await eventually(() => live.received.length === 1, 'the message arriving over MQTT');
    const [overRest] = await restClient().channelMessages(channel, { count: 1, reverse: true });
    assert.ok(overRest);
    assert.equal(messageKey(overRest), messageKey(live.received[0]!));
  });
});

describe('fillGap', () => {
  /** Injects messages all stamped by the sandbox now; returns their server.timestamp. */
  function injectStamped(channel: number, seqs: number[], extra: Partial<FlespiMessage> = {}): number {
    const stored = sandbox.inject(
      channel,
      seqs.map((seq) => ({ ident: 'g', seq, ...extra })),
    );
    return stored[0]!.serverTs;
  }

  async function run(gap: Omit<GapFill, 'client' | 'onMessages'>) {
    const pages: Array<{ seqs: unknown[]; skipped: number }> = [];
    const result = await fillGap({
      client: restClient(),
      ...gap,
      onMessages: (messages, skipped) => pages.push({ seqs: messages.map((m) => m.seq), skipped }),
    });
    return { result, pages, seqs: pages.flatMap((p) => p.seqs) };
  }

  test('the whole gap, page by page, oldest first, each message once; those MQTT delivered are skipped and counted', async () => {
    const channel = 3104;
    const from = injectStamped(channel, [1, 2, 3, 4, 5, 6, 7]);
    const [delivered] = await restClient().channelMessages(channel, { count: 1 });
    const { result, pages, seqs } = await run({ channelId: channel, from, pageSize: 3, delivered: new Set([messageKey(delivered!)]) });
    assert.deepEqual(seqs, [2, 3, 4, 5, 6, 7]);
    assert.deepEqual(result, { added: 6, skipped: 1, capped: false });
    assert.ok(pages.length >= 2, 'more than one page was read');
  });

  test('with newest: one read of the newest N, oldest first, and says it was capped', async () => {
    const channel = 3105;
    const from = injectStamped(channel, [1, 2, 3, 4, 5]);
    const capped = await run({ channelId: channel, from, newest: 3 });
    assert.deepEqual(capped.seqs, [3, 4, 5]);
    assert.equal(capped.result.capped, true);
    const whole = await run({ channelId: channel, from, newest: 10 });
    assert.deepEqual(whole.seqs, [1, 2, 3, 4, 5]);
    assert.equal(whole.result.capped, false);
  });

  test('the server filter of the subscription applies to the REST read', async () => {
    const channel = 3106;
    const from = injectStamped(channel, [1, 2, 3, 4]);
    const { seqs } = await run({ channelId: channel, from, filter: ' seq>2 ' });
    assert.deepEqual(seqs, [3, 4]);
  });

  test('a refused request rejects', async () => {
    const client = new FlespiClient({ token: 'x'.repeat(64), baseUrl: sandbox.restUrl });
    await assert.rejects(fillGap({ client, channelId: 3107, from: 0, onMessages: () => assert.fail('nothing to hand out') }), /token/i);
  });
});

describe('Reconnects', () => {
  test('the delay doubles from initialMs up to maxMs, with jitter in its upper half; an accepted connection starts it over; cancel stops a waiting reconnect', async () => {
    const reconnects = new Reconnects({ initialMs: 40, maxMs: 100 });
    let ran = 0;
    const delays = [1, 2, 3, 4].map(() => reconnects.schedule(() => ran++));
    assert.equal(reconnects.failures, 4);
    [
      [20, 40],
      [40, 80],
      [50, 100],
      [50, 100],
    ].forEach(([low, high], i) => assert.ok(delays[i]! >= low! && delays[i]! <= high!, `delay ${i + 1} is ${delays[i]}, not in [${low}, ${high}]`));
    await eventually(() => ran === 1, 'the reconnect');
    assert.equal(ran, 1, 'a new schedule replaced the one waiting');
    reconnects.connected();
    assert.equal(reconnects.failures, 0);
    assert.ok(reconnects.schedule(() => ran++) <= 40, 'back to the first delay');
    assert.ok(reconnects.schedule(() => ran++, 3) >= 50, 'at least 3 failures counted');
    reconnects.cancel();
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(ran, 1, 'a cancelled reconnect does not run');
  });
});
