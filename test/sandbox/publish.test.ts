// The sandbox's wiring to its MQTT broker: token auth and what the platform publishes
// (the broker itself is tested in mqtt-broker.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';

let sandbox: Sandbox;
const clients: MqttClient[] = [];

before(async () => {
  sandbox = await startSandbox({ simulate: false, seed: 11 });
});

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await sandbox.stop();
});

async function connect(options: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(sandbox.mqttUrl, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  clients.push(client);
  return client;
}

/** The CONNACK reason code a refused connection got. */
async function refusal(options: IClientOptions): Promise<number | undefined> {
  try {
    await connect(options);
  } catch (error) {
    return (error as { code?: number }).code;
  }
  assert.fail('the connection should have been refused');
}

interface Received {
  topic: string;
  json: Record<string, unknown>;
  userProperties?: Record<string, string | string[]>;
}

function collect(client: MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({
      topic,
      json: payload.length > 0 ? (JSON.parse(payload.toString('utf8')) as Record<string, unknown>) : {},
      userProperties: packet.properties?.userProperties,
    });
  });
  return received;
}

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(done(), `gave up waiting for ${what}`);
}

test('the token authenticates as username (bare or prefixed) or as password; others are refused', async () => {
  await connect({ username: sandbox.token });
  await connect({ username: `FlespiToken ${sandbox.token}` });
  await connect({ username: 'anything', password: sandbox.token });
  assert.equal(await refusal({ username: 'not-a-token' }), 134);
  sandbox.addToken('blocked-mqtt-token', { blocked: true });
  assert.equal(await refusal({ username: 'blocked-mqtt-token' }), 138);
});

test('ingested messages go to the channel and device topics with timestamp and cid user properties', async () => {
  const client = await connect({ username: sandbox.token });
  const received = collect(client);
  await client.subscribeAsync(['flespi/message/gw/channels/1001/+', 'flespi/message/gw/devices/+'], { qos: 1 });
  const device = [...sandbox.store.devices.values()][0];
  assert.ok(device);
  const [stored] = sandbox.inject(1001, [{ ident: device.ident, 'position.speed': 33 }]);
  assert.ok(stored);
  await until(() => received.length >= 2, 'both publishes');
  const byTopic = new Map(received.map((r) => [r.topic, r]));
  const onChannel = byTopic.get(`flespi/message/gw/channels/1001/${device.ident}`);
  const onDevice = byTopic.get(`flespi/message/gw/devices/${device.id}`);
  assert.ok(onChannel && onDevice, `topics: ${[...byTopic.keys()].join(', ')}`);
  assert.equal(onChannel.json['position.speed'], 33);
  assert.equal(onChannel.json['device.id'], device.id);
  assert.deepEqual(onDevice.json, onChannel.json);
  assert.equal(onChannel.userProperties?.timestamp, String(stored.serverTs));
  assert.equal(onChannel.userProperties?.cid, String(sandbox.store.cid));
});

test('channel and device items are retained under flespi/state', async () => {
  const client = await connect({ username: sandbox.token });
  const received = collect(client);
  await client.subscribeAsync(['flespi/state/gw/channels/+', 'flespi/state/gw/devices/+'], { qos: 1 });
  await until(() => received.length >= sandbox.channels.length + sandbox.store.devices.size, 'the retained items');
  const channel = received.find((r) => r.topic === 'flespi/state/gw/channels/1001');
  assert.equal(channel?.json.name, 'sandbox-teltonika');
  assert.ok(received.some((r) => r.topic.startsWith('flespi/state/gw/devices/') && typeof (r.json.configuration as { ident?: string }).ident === 'string'));
});

test('fault injection drops the MQTT clients', async () => {
  const client = await connect({ username: sandbox.token });
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  assert.ok(sandbox.faults.dropMqttClients() >= 1);
  await closed;
  assert.equal(client.connected, false);
});
