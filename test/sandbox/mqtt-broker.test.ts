import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IDisconnectPacket, ISubackPacket } from 'mqtt-packet';
import type { SandboxBroker } from '../../src/sandbox/mqtt/broker';
import { BLOCKED_TOKEN, TOKEN, RawClient, collect, connect, connectCollecting, endAll, eventually, startBroker, until } from './mqtt-helpers';

const CHANNEL_TOPIC = 'flespi/message/gw/channels';

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

describe('sandbox MQTT broker', () => {
  let broker: SandboxBroker;
  let url: string;
  let port: number;
  before(async () => ({ broker, url, port } = await startBroker()));
  after(() => broker.close());

  describe('authentication', () => {
    for (const protocolVersion of [4, 5] as const) {
      test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'} accepts the token bare, prefixed, or in the password`, async () => {
        const bare = await connect(url, { protocolVersion, username: TOKEN });
        const prefixed = await connect(url, { protocolVersion, username: `FlespiToken ${TOKEN}` });
        const inPassword = await connect(url, { protocolVersion, username: 'anything', password: TOKEN });
        for (const client of [bare, prefixed, inPassword]) assert.equal(client.connected, true);
        await endAll(bare, prefixed, inPassword);
      });
    }

    test('MQTT 3.1.1 refuses a wrong or missing token with CONNACK 2 (identifier rejected), as flespi does', async () => {
      await assert.rejects(connect(url, { protocolVersion: 4, username: 'wrong' }), (error) => codeOf(error) === 2);
      await assert.rejects(connect(url, { protocolVersion: 4, username: undefined }), (error) => codeOf(error) === 2);
    });

    test('MQTT 5 refuses a wrong token with 134, a missing one with 135, a blocked one with 138', async () => {
      await assert.rejects(connect(url, { protocolVersion: 5, username: 'wrong' }), (error) => codeOf(error) === 134);
      await assert.rejects(connect(url, { protocolVersion: 5, username: undefined }), (error) => codeOf(error) === 135);
      await assert.rejects(connect(url, { protocolVersion: 5, username: BLOCKED_TOKEN }), (error) => codeOf(error) === 138);
    });

    test('MQTT 3.1.1 refuses a blocked token with CONNACK 5', async () => {
      await assert.rejects(connect(url, { protocolVersion: 4, username: BLOCKED_TOKEN }), (error) => codeOf(error) === 5);
    });
  });

  test('routes by + and # wildcards, comma lists, and grants QoS 2 requests as QoS 1', async () => {
    const client = await connect(url, { protocolVersion: 5 });
    const received = collect(client);
    const granted = await client.subscribeAsync({
      [`${CHANNEL_TOPIC}/1/+`]: { qos: 2 },
      'flespi/state/gw/devices/#': { qos: 0 },
      [`${CHANNEL_TOPIC}/10,20/+`]: { qos: 1 },
    });
    assert.deepEqual(
      granted.map((g) => g.qos),
      [1, 0, 1],
    );
    broker.publish(`${CHANNEL_TOPIC}/1/imei-a`, 'a');
    broker.publish(`${CHANNEL_TOPIC}/1/imei-a/extra`, 'not +');
    broker.publish(`${CHANNEL_TOPIC}/2/imei-b`, 'other channel');
    broker.publish(`${CHANNEL_TOPIC}/20/imei-c`, 'c');
    broker.publish(`${CHANNEL_TOPIC}/30/imei-d`, 'not in the list');
    broker.publish('flespi/state/gw/devices', 'parent of #');
    broker.publish('flespi/state/gw/devices/7/telemetry/position', 'deep');
    broker.publish(`${CHANNEL_TOPIC}/1/end`, 'end');
    await until(client, () => received.some((r) => r.payload === 'end'));
    assert.deepEqual(
      received.map((r) => r.payload),
      ['a', 'c', 'parent of #', 'deep', 'end'],
    );
    assert.equal(received[0].packet.qos, 1);
    assert.equal(received[3].packet.qos, 0);
    await endAll(client);
  });

  test('keeps retained state, sends it on subscribe (not with retain handling 2), and deletes it on an empty payload', async () => {
    broker.publish('flespi/state/gw/devices/5', '{"id":5}', { retain: true });
    broker.publish('flespi/state/gw/devices/6', '{"id":6}', { retain: true });
    const first = await connect(url, { protocolVersion: 5 });
    const firstReceived = collect(first);
    await first.subscribeAsync('flespi/state/gw/devices/+', { qos: 1 });
    await until(first, () => firstReceived.length === 2);
    assert.deepEqual(firstReceived.map((r) => r.payload).sort(), ['{"id":5}', '{"id":6}']);
    assert.ok(firstReceived.every((r) => r.packet.retain));

    const withoutRetained = await connect(url, { protocolVersion: 5 });
    const noRetained = collect(withoutRetained);
    await withoutRetained.subscribeAsync('flespi/state/gw/devices/+', { qos: 1, rh: 2 });

    broker.publish('flespi/state/gw/devices/5', '', { retain: true });
    await until(first, () => firstReceived.length === 3);
    assert.equal(firstReceived[2].payload, '', 'current subscribers see the deletion');

    const late = await connect(url, { protocolVersion: 4 });
    const lateReceived = collect(late);
    await late.subscribeAsync('flespi/state/gw/devices/+', { qos: 1 });
    broker.publish('flespi/state/gw/devices/marker', 'marker');
    await until(late, () => lateReceived.some((r) => r.payload === 'marker'));
    await until(withoutRetained, () => noRetained.some((r) => r.payload === 'marker'));
    assert.deepEqual(
      lateReceived.map((r) => r.payload),
      ['{"id":6}', 'marker'],
    );
    assert.deepEqual(
      noRetained.map((r) => r.payload),
      ['', 'marker'],
    );
    broker.publish('flespi/state/gw/devices/6', '', { retain: true });
    await endAll(first, withoutRetained, late);
  });

  test('MQTT 5 clients get user properties and subscription identifiers; 3.1.1 clients get the same message without them', async () => {
    const v5 = await connect(url, { protocolVersion: 5 });
    const v3 = await connect(url, { protocolVersion: 4 });
    const got5 = collect(v5);
    const got3 = collect(v3);
    await v5.subscribeAsync(`${CHANNEL_TOPIC}/3/+`, { qos: 1, properties: { subscriptionIdentifier: 42 } });
    await v3.subscribeAsync(`${CHANNEL_TOPIC}/3/+`, { qos: 1 });
    broker.publish(`${CHANNEL_TOPIC}/3/x`, '{"ident":"x"}', { userProperties: { timestamp: '1700000000.5', cid: '7' } });
    await until(v5, () => got5.length === 1);
    await until(v3, () => got3.length === 1);
    assert.deepEqual({ ...got5[0].packet.properties?.userProperties }, { timestamp: '1700000000.5', cid: '7' });
    assert.equal(got5[0].packet.properties?.subscriptionIdentifier, 42);
    assert.equal(got3[0].payload, '{"ident":"x"}');
    assert.equal(got3[0].packet.properties, undefined);
    await endAll(v5, v3);
  });

  test('refuses client publishes under flespi/ (PUBACK 135 for MQTT 5, discarded for 3.1.1) and routes others', async () => {
    const listener = await connect(url, { protocolVersion: 5 });
    const received = collect(listener);
    await listener.subscribeAsync('#', { qos: 1 });
    const v5 = await connect(url, { protocolVersion: 5 });
    const v3 = await connect(url, { protocolVersion: 4 });
    await assert.rejects(v5.publishAsync(`${CHANNEL_TOPIC}/1/fake`, 'forged', { qos: 1 }), (error) => codeOf(error) === 135);
    await v3.publishAsync(`${CHANNEL_TOPIC}/1/fake`, 'forged', { qos: 1 });
    await v3.publishAsync('flespi/state/gw/devices/1', 'forged', { qos: 0, retain: true });
    await v3.publishAsync('my/own/topic', 'allowed', { qos: 1 });
    await until(listener, () => received.length > 0);
    assert.deepEqual(
      received.map((r) => `${r.topic} ${r.payload}`),
      ['my/own/topic allowed'],
    );
    assert.equal(broker.retainedCount, 0);
    await endAll(listener, v5, v3);
  });

  describe('$share', () => {
    test('splits messages among members, each to exactly one', async () => {
      const a = await connect(url, { protocolVersion: 5, clientId: 'share-a' });
      const b = await connect(url, { protocolVersion: 4, clientId: 'share-b' });
      const gotA = collect(a);
      const gotB = collect(b);
      await a.subscribeAsync(`$share/workers/${CHANNEL_TOPIC}/4/+`, { qos: 1 });
      await b.subscribeAsync(`$share/workers/${CHANNEL_TOPIC}/4/+`, { qos: 1 });
      for (let i = 0; i < 20; i++) broker.publish(`${CHANNEL_TOPIC}/4/dev`, String(i));
      await until(a, () => gotA.length + gotB.length === 20);
      await until(b, () => gotA.length + gotB.length === 20);
      assert.ok(gotA.length > 0 && gotB.length > 0, `both members got messages (${gotA.length}/${gotB.length})`);
      const all = [...gotA, ...gotB].map((r) => Number(r.payload)).sort((x, y) => x - y);
      assert.deepEqual(
        all,
        Array.from({ length: 20 }, (_, i) => i),
      );
      await endAll(a, b);
    });

    test("hands a disconnected member's unacknowledged messages to the other member", async () => {
      // The stuck member never acknowledges (and MQTT.js then stops reading): its messages stay in flight.
      const stuck = await RawClient.connect(port, { clientId: 'share-stuck', protocolVersion: 5 });
      await stuck.subscribe(`$share/takeover/${CHANNEL_TOPIC}/5/+`);
      const healthy = await connect(url, { protocolVersion: 5, clientId: 'share-healthy' });
      const got = collect(healthy);
      await healthy.subscribeAsync(`$share/takeover/${CHANNEL_TOPIC}/5/+`, { qos: 1 });
      for (let i = 0; i < 10; i++) broker.publish(`${CHANNEL_TOPIC}/5/dev`, String(i));
      await stuck.waitFor(() => stuck.publishes().length === 5);
      await until(healthy, () => got.length === 5);
      await stuck.close();
      await until(healthy, () => got.length === 10);
      assert.deepEqual(
        got.map((r) => Number(r.payload)).sort((x, y) => x - y),
        Array.from({ length: 10 }, (_, i) => i),
      );
      await endAll(healthy);
    });

    test('keeps messages while every member is offline with a persistent session', async () => {
      const options = { protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 600 } };
      const a = await connect(url, { ...options, clientId: 'offline-a' });
      const b = await connect(url, { ...options, clientId: 'offline-b' });
      await a.subscribeAsync(`$share/offline/${CHANNEL_TOPIC}/6/+`, { qos: 1 });
      await b.subscribeAsync(`$share/offline/${CHANNEL_TOPIC}/6/+`, { qos: 1 });
      await endAll(a, b);
      await eventually(() => broker.sessionInfo().filter((s) => s.clientId.startsWith('offline-') && !s.connected).length === 2);
      for (let i = 0; i < 8; i++) broker.publish(`${CHANNEL_TOPIC}/6/dev`, String(i));
      const { client: back, received: got } = await connectCollecting(url, { ...options, clientId: 'offline-b' });
      await until(back, () => got.length === 8);
      assert.deepEqual(
        got.map((r) => Number(r.payload)),
        [0, 1, 2, 3, 4, 5, 6, 7],
      );
      await back.unsubscribeAsync(`$share/offline/${CHANNEL_TOPIC}/6/+`);
      await endAll(back);
    });
  });

  test('sticky $share/{name}:{count}/ sends every message of one ident to the same member, and a joining member takes over only some idents', async () => {
    const topic = `$share/by_ident:6/${CHANNEL_TOPIC}/+/+`;
    const a = await connect(url, { protocolVersion: 5, clientId: 'sticky-a' });
    const b = await connect(url, { protocolVersion: 4, clientId: 'sticky-b' });
    const got = new Map<string, Set<string>>(); // ident -> members that got it
    const record = (client: typeof a, name: string) =>
      client.on('message', (t) => {
        const ident = t.split('/')[5];
        if (!got.has(ident)) got.set(ident, new Set());
        got.get(ident)!.add(name);
      });
    record(a, 'a');
    record(b, 'b');
    const granted = [...(await a.subscribeAsync(topic, { qos: 1 })), ...(await b.subscribeAsync(topic, { qos: 1 }))];
    assert.deepEqual(
      granted.map((g) => g.qos),
      [1, 1],
      'flespi accepts sticky shared subscriptions',
    );
    const idents = Array.from({ length: 24 }, (_, i) => `imei-${i}`);
    let count = 0;
    const publishRound = () => {
      for (const ident of idents) for (let n = 0; n < 3; n++) broker.publish(`${CHANNEL_TOPIC}/11/${ident}`, String(count++));
    };
    const delivered = () => [...got.values()].reduce((sum, members) => sum + members.size, 0);
    let total = 0;
    const received = () => total;
    a.on('message', () => total++);
    b.on('message', () => total++);
    publishRound();
    await until(a, () => received() === idents.length * 3);
    assert.equal(got.size, idents.length);
    assert.equal(delivered(), idents.length, 'each ident went to exactly one member');
    const owner = new Map([...got].map(([ident, members]) => [ident, [...members][0]]));
    assert.ok(new Set(owner.values()).size === 2, `both members own some idents: ${[...owner.values()].join(',')}`);

    // A third member joins: some idents move to it, none moves between a and b.
    const c = await connect(url, { protocolVersion: 5, clientId: 'sticky-c' });
    got.clear();
    record(c, 'c');
    c.on('message', () => total++);
    await c.subscribeAsync(topic, { qos: 1 });
    total = 0;
    publishRound();
    await until(a, () => received() === idents.length * 3);
    await eventually(() => received() === idents.length * 3);
    for (const [ident, members] of got) {
      assert.equal(members.size, 1, `${ident} still goes to one member`);
      const now = [...members][0];
      assert.ok(now === owner.get(ident) || now === 'c', `${ident} moved from ${owner.get(ident)} to ${now}, not to the new member`);
    }
    assert.ok(
      [...got.values()].some((members) => members.has('c')),
      'the new member took over some idents',
    );
    await endAll(a, b, c);
  });

  test('sticky $share/{name}:{from}:{count}/ hashes the levels from `from`: one device id, one member', async () => {
    const topic = `$share/by_device:4:1/flespi/+/gw/devices/+`;
    const members = await Promise.all(['x', 'y', 'z'].map((n) => connect(url, { protocolVersion: 5, clientId: `sticky-dev-${n}` })));
    const byDevice = new Map<string, Set<number>>();
    let total = 0;
    members.forEach((client, index) =>
      client.on('message', (t) => {
        total++;
        const device = t.split('/')[4];
        if (!byDevice.has(device)) byDevice.set(device, new Set());
        byDevice.get(device)!.add(index);
      }),
    );
    for (const client of members) await client.subscribeAsync(topic, { qos: 1 });
    // message and state topics of one device differ in level 1 but must go to the same member
    for (let d = 0; d < 12; d++) for (const kind of ['message', 'state', 'message']) broker.publish(`flespi/${kind}/gw/devices/${d}`, kind);
    await eventually(() => total === 36);
    assert.equal(byDevice.size, 12);
    for (const [device, got] of byDevice) assert.equal(got.size, 1, `device ${device} went to ${[...got].join(',')}`);
    await endAll(...members);
  });

  test('$filter/cid= delivers only the messages of that account (the cid user property), also inside $share', async () => {
    const { broker: own, url: ownUrl } = await startBroker({ cid: 42 });
    try {
      const plain = await connect(ownUrl, { protocolVersion: 5 });
      const shared = await connect(ownUrl, { protocolVersion: 4 });
      const gotPlain = collect(plain);
      const gotShared = collect(shared);
      await plain.subscribeAsync(`$filter/cid=42/${CHANNEL_TOPIC}/12/+`, { qos: 1 });
      await shared.subscribeAsync(`$share/workers/$filter/cid=7/${CHANNEL_TOPIC}/12/+`, { qos: 1 });
      own.publish(`${CHANNEL_TOPIC}/12/dev`, 'platform-42', { userProperties: { cid: '42' } });
      own.publish(`${CHANNEL_TOPIC}/12/dev`, 'platform-7', { userProperties: { cid: '7' } });
      const publisher = await connect(ownUrl, { protocolVersion: 5 });
      await plain.subscribeAsync(`$filter/cid=42/mine/#`, { qos: 1 });
      await publisher.publishAsync('mine/x', 'client-of-42', { qos: 1 }); // no cid property: the broker's account
      await until(plain, () => gotPlain.length === 2);
      await until(shared, () => gotShared.length === 1);
      assert.deepEqual(
        gotPlain.map((r) => r.payload),
        ['platform-42', 'client-of-42'],
      );
      assert.deepEqual(
        gotShared.map((r) => r.payload),
        ['platform-7'],
      );
      await endAll(plain, shared, publisher);
    } finally {
      await own.close();
    }
  });

  test('$filter/payload= delivers only messages whose payload matches, alone and inside $share', async () => {
    const expression = encodeURIComponent('position.speed>60 && position.valid==true');
    const plain = await connect(url, { protocolVersion: 5 });
    const shared = await connect(url, { protocolVersion: 4 });
    const gotPlain = collect(plain);
    const gotShared = collect(shared);
    await plain.subscribeAsync(`$filter/payload=${expression}/${CHANNEL_TOPIC}/8/+`, { qos: 1 });
    await shared.subscribeAsync(`$share/fast/$filter/payload=${expression}/${CHANNEL_TOPIC}/8/+`, { qos: 1 });
    const messages = [
      { n: 1, 'position.speed': 80, 'position.valid': true },
      { n: 2, 'position.speed': 80, 'position.valid': false },
      { n: 3, 'position.speed': 10, 'position.valid': true },
      { n: 4 },
      { n: 5, 'position.speed': 61, 'position.valid': true },
    ];
    for (const message of messages) broker.publish(`${CHANNEL_TOPIC}/8/dev`, JSON.stringify(message));
    broker.publish(`${CHANNEL_TOPIC}/8/dev`, 'not json');
    await until(plain, () => gotPlain.length === 2);
    await until(shared, () => gotShared.length === 2);
    for (const got of [gotPlain, gotShared]) {
      assert.deepEqual(
        got.map((r) => (JSON.parse(r.payload) as { n: number }).n),
        [1, 5],
      );
      assert.equal(got[0].topic, `${CHANNEL_TOPIC}/8/dev`, 'the real topic is delivered');
    }
    await endAll(plain, shared);
  });

  test('refuses malformed topic filters in SUBACK (0x80 for 3.1.1, 0x8F for MQTT 5)', async () => {
    const bad = [
      'a/#/b',
      'a/b+',
      `$filter/payload=${encodeURIComponent('speed>')}/a`,
      '$filter/cid=abc/a',
      '$filter/modified_since>1/a',
      '$share/g',
      'a/10,+/b',
    ];
    for (const [protocolVersion, code] of [
      [4, 0x80],
      [5, 0x8f],
    ] as const) {
      const client = await RawClient.connect(port, { clientId: `bad-filters-${protocolVersion}`, protocolVersion });
      client.send({ cmd: 'subscribe', messageId: 7, subscriptions: [...bad, 'a/ok'].map((topic) => ({ topic, qos: 1 as const })) });
      await client.waitFor((packets) => packets.some((p) => p.cmd === 'suback'));
      const suback = client.packets.find((p): p is ISubackPacket => p.cmd === 'suback');
      assert.deepEqual(suback?.granted, [...bad.map(() => code), 1]);
      await client.close();
    }
  });

  describe('persistent sessions', () => {
    for (const protocolVersion of [4, 5] as const) {
      test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'} queues QoS 1 messages while the client is away and delivers them on reconnect`, async () => {
        const clientId = `persistent-${protocolVersion}`;
        const options = { protocolVersion, clientId, clean: false, ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}) };
        const first = await connect(url, options);
        await first.subscribeAsync(`${CHANNEL_TOPIC}/9/+`, { qos: 1 });
        await endAll(first);
        await eventually(() => broker.sessionInfo().some((s) => s.clientId === clientId && !s.connected));
        for (let i = 0; i < 5; i++) broker.publish(`${CHANNEL_TOPIC}/9/dev`, String(i));

        const { client: second, received: got, sessionPresent } = await connectCollecting(url, options);
        assert.equal(sessionPresent, true);
        await until(second, () => got.length === 5);
        assert.deepEqual(
          got.map((r) => r.payload),
          ['0', '1', '2', '3', '4'],
        );
        await second.unsubscribeAsync(`${CHANNEL_TOPIC}/9/+`);
        await endAll(second);
      });
    }

    test('a clean session forgets subscriptions on disconnect', async () => {
      const first = await connect(url, { protocolVersion: 4, clientId: 'clean-one', clean: true });
      await first.subscribeAsync(`${CHANNEL_TOPIC}/11/+`, { qos: 1 });
      await endAll(first);
      await eventually(() => !broker.sessionInfo().some((s) => s.clientId === 'clean-one'));
      broker.publish(`${CHANNEL_TOPIC}/11/dev`, 'lost');
      const second = await connect(url, { protocolVersion: 4, clientId: 'clean-one', clean: false });
      const got = collect(second);
      await second.subscribeAsync(`${CHANNEL_TOPIC}/11/+`, { qos: 1 });
      broker.publish(`${CHANNEL_TOPIC}/11/dev`, 'after');
      await until(second, () => got.length > 0);
      assert.deepEqual(
        got.map((r) => r.payload),
        ['after'],
      );
      await second.unsubscribeAsync(`${CHANNEL_TOPIC}/11/+`);
      await endAll(second);
    });

    test('resends unacknowledged messages with DUP after dropClients()', async () => {
      const first = await RawClient.connect(port, { clientId: 'dup-check', clean: false });
      await first.subscribe(`${CHANNEL_TOPIC}/12/+`);
      broker.publish(`${CHANNEL_TOPIC}/12/dev`, 'unacked');
      await first.waitFor(() => first.publishes().length === 1);
      assert.equal(first.publishes()[0].dup, false);
      broker.dropClients();
      await once(first.socket, 'close');
      const second = await RawClient.connect(port, { clientId: 'dup-check', clean: false });
      await second.waitFor(() => second.publishes().length === 1);
      const resent = second.publishes()[0];
      assert.equal(resent.payload.toString(), 'unacked');
      assert.equal(resent.dup, true);
      assert.equal(resent.messageId, first.publishes()[0].messageId);
      await second.close();
    });
  });

  test('takes a client id over from an older connection (MQTT 5 DISCONNECT 142)', async () => {
    const old = await RawClient.connect(port, { clientId: 'twin', protocolVersion: 5 });
    const closed = once(old.socket, 'close');
    const fresh = await connect(url, { protocolVersion: 5, clientId: 'twin' });
    await closed;
    const disconnect = old.packets.find((p): p is IDisconnectPacket => p.cmd === 'disconnect');
    assert.equal(disconnect?.reasonCode, 142);
    assert.equal(fresh.connected, true);
    await endAll(fresh);
  });

  test('closes a client silent for longer than 1.5 × keepalive, and answers PINGREQ', async () => {
    const pinging = await RawClient.connect(port, { clientId: 'pinger', keepalive: 60 });
    pinging.send({ cmd: 'pingreq' });
    await pinging.waitFor((packets) => packets.some((p) => p.cmd === 'pingresp'));
    const silent = await RawClient.connect(port, { clientId: 'silent', keepalive: 1 });
    await once(silent.socket, 'close');
    assert.equal(pinging.socket.destroyed, false);
    await pinging.close();
  });

  test('counts connected clients', async () => {
    await eventually(() => broker.clientCount === 0);
    const a = await connect(url);
    const b = await connect(url);
    assert.equal(broker.clientCount, 2);
    await endAll(a, b);
    await eventually(() => broker.clientCount === 0);
  });
});

describe('sandbox MQTT broker flow control', () => {
  for (const protocolVersion of [5, 4] as const) {
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a session holding more than maxSessionBytes overflows as flespi's does: undelivered messages are dropped, the client is disconnected${protocolVersion === 5 ? ' with DISCONNECT 0x97' : ''}, the session and its subscription stay`, async () => {
      const { broker, port } = await startBroker({ maxInflight: 5, maxSessionBytes: 1000 });
      try {
        const clientId = `overflowing-${protocolVersion}`;
        const stuck = await RawClient.connect(port, {
          clientId,
          protocolVersion,
          clean: false,
          sessionExpiryInterval: protocolVersion === 5 ? 600 : undefined,
        });
        await stuck.subscribe('flespi/message/gw/channels/1/+');
        const payload = (i: number) => `${i}:${'x'.repeat(90)}`; // 30 topic + 93 payload bytes each: the 9th overflows
        for (let i = 0; i < 8; i++) broker.publish('flespi/message/gw/channels/1/dev', payload(i));
        await stuck.waitFor(() => stuck.publishes().length === 5);
        assert.equal(stuck.socket.destroyed, false, 'within the limit nothing happens');
        assert.deepEqual(
          broker.sessionInfo().map(({ inflight, queued, dropped, overflows }) => ({ inflight, queued, dropped, overflows })),
          [{ inflight: 5, queued: 3, dropped: 0, overflows: 0 }],
        );

        broker.publish('flespi/message/gw/channels/1/dev', payload(8));
        await once(stuck.socket, 'close');
        const disconnect = stuck.packets.find((p): p is IDisconnectPacket => p.cmd === 'disconnect');
        assert.equal(disconnect?.reasonCode, protocolVersion === 5 ? 0x97 : undefined);
        await eventually(() => broker.sessionInfo()[0]?.connected === false);
        assert.deepEqual(
          broker.sessionInfo().map(({ persistent, queued, inflight, dropped, overflows }) => ({ persistent, queued, inflight, dropped, overflows })),
          [{ persistent: true, queued: 0, inflight: 0, dropped: 9, overflows: 1 }],
        );

        // Back with the same session: nothing of before comes again, new messages do (the subscription stayed).
        const back = await connectCollecting(`mqtt://127.0.0.1:${port}`, {
          clientId,
          protocolVersion,
          clean: false,
          ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}),
        });
        assert.equal(back.sessionPresent, true);
        broker.publish('flespi/message/gw/channels/1/dev', 'after');
        await until(back.client, () => back.received.length === 1);
        assert.deepEqual(
          back.received.map((r) => r.payload),
          ['after'],
        );
        await endAll(back.client);
      } finally {
        await broker.close();
      }
    });
  }

  test('an offline session that overflows is discarded: the next CONNACK says session-present 0', async () => {
    const { broker, port, url } = await startBroker({ maxQueued: 10 });
    try {
      const first = await connect(url, { protocolVersion: 4, clientId: 'offline-overflow', clean: false });
      await first.subscribeAsync('flespi/message/gw/channels/1/+', { qos: 1 });
      await endAll(first);
      await eventually(() => broker.sessionInfo().some((s) => s.clientId === 'offline-overflow' && !s.connected));
      for (let i = 0; i < 11; i++) broker.publish('flespi/message/gw/channels/1/dev', String(i));
      await eventually(() => !broker.sessionInfo().some((s) => s.clientId === 'offline-overflow'));
      const back = await connectCollecting(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId: 'offline-overflow', clean: false });
      assert.equal(back.sessionPresent, false);
      await endAll(back.client);
    } finally {
      await broker.close();
    }
  });
});
