import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { FlespiClient, regionBaseUrl } from '../../src/core/flespi/client';
import { FlespiError } from '../../src/core/errors';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { flespiFailure } from '../support/flespiFailure';

const CHANNEL = 1001;

let sandbox: Sandbox;
let client: FlespiClient;

before(async () => {
  sandbox = await startSandbox({ simulate: false, seed: 7 });
  client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, appName: 'client-tests' });
});

after(async () => {
  await sandbox.stop();
});

/** A channel of its own for each test, so tests do not see each other's messages. */
let nextChannelId = 2001;
async function freshChannel(): Promise<number> {
  const id = nextChannelId++;
  sandbox.store.addChannel({ id, name: `test-${id}`, protocol: 'teltonika' });
  return id;
}

describe('collections', () => {
  test('regionBaseUrl knows both regions', () => {
    assert.equal(regionBaseUrl('eu'), 'https://flespi.io');
    assert.equal(regionBaseUrl('ru'), 'https://ru.flespi.io');
  });

  test('authInfo accepts the token with or without the FlespiToken prefix', async () => {
    const info = await new FlespiClient({ token: `FlespiToken ${sandbox.token}`, baseUrl: sandbox.restUrl }).authInfo();
    assert.equal(info.cid, sandbox.store.cid);
    assert.deepEqual(await client.authInfo(), info);
  });

  test('channels by all, id list, mask and expression selectors, with fields', async () => {
    const all = await client.channels('all', ['id', 'name']);
    assert.deepEqual(
      all.items.filter((c) => (c.id as number) < 2000),
      [
        { id: 1001, name: 'sandbox-teltonika' },
        { id: 1002, name: 'sandbox-wialon-ips' },
      ],
    );
    assert.deepEqual(all.errors, []);
    assert.deepEqual((await client.channels(1002, ['protocol_name'])).items, [{ protocol_name: 'wialon_ips' }]);
    assert.deepEqual((await client.channels('1001,1002', ['id'])).items, [{ id: 1001 }, { id: 1002 }]);
    assert.deepEqual((await client.channels('name=sandbox-tel*', ['id'])).items, [{ id: 1001 }]);
    assert.deepEqual((await client.channels('{protocol_name=="wialon_ips"}', ['id'])).items, [{ id: 1002 }]);
    const full = (await client.channels(1001)).items[0] as Record<string, unknown>;
    for (const field of ['id', 'name', 'protocol_id', 'protocol_name', 'enabled', 'uri', 'messages_ttl', 'cid', 'configuration'])
      assert.ok(field in full, `channel lacks ${field}`);
  });

  test('devices, streams and channel protocols', async () => {
    const devices = await client.devices('all', ['id', 'configuration', 'device_type_id']);
    assert.equal(devices.items.length, 4, 'two registered trackers per default channel');
    const ident = (devices.items[0]?.configuration as { ident: string }).ident;
    assert.match(ident, /^\d{15}$/);
    assert.deepEqual((await client.devices(`configuration.ident=${ident}`, ['id'])).items, [{ id: devices.items[0]?.id }]);
    const streams = await client.streams();
    assert.ok(streams.items.length >= 2);
    const protocols = await client.channelProtocols('name=teltonika', ['id', 'name', 'message_parameters']);
    assert.equal(protocols.items[0]?.name, 'teltonika');
    const parameters = protocols.items[0]?.message_parameters as { name: string }[];
    assert.ok(parameters.some((p) => p.name === 'position.latitude'));
  });

  test('partial success: found items and the errors of missing ids', async () => {
    const list = await client.channels('1001,424242', ['id']);
    assert.deepEqual(list.items, [{ id: 1001 }]);
    assert.equal(list.errors.length, 1);
    assert.equal(list.errors[0]?.id, 424242);
  });
});

describe('errors', () => {
  test('401: a wrong token, without the token in the message', async () => {
    const wrong = 'W'.repeat(64);
    const error = await flespiFailure(new FlespiClient({ token: wrong, baseUrl: sandbox.restUrl }).channels());
    assert.equal(error.kind, 'auth');
    assert.equal(error.status, 401);
    assert.match(error.message, /rejected the token \(401/);
    assert.match(error.message, /flespi\.io\/#\/panel\/tokens/);
    assert.ok(!error.message.includes(wrong));
    assert.equal(error.retryable, false);
  });

  test('403: a blocked token', async () => {
    const blocked = 'B'.repeat(64);
    sandbox.addToken(blocked, { blocked: true });
    const error = await flespiFailure(new FlespiClient({ token: blocked, baseUrl: sandbox.restUrl }).authInfo());
    assert.equal(error.kind, 'forbidden');
    assert.match(error.message, /403/);
    assert.match(error.message, /blocked/);
    assert.ok(!error.message.includes(blocked));
  });

  test('404: an unknown channel names the channel and how to list channels', async () => {
    const error = await flespiFailure(client.pollChannelMessages(999999, { currKey: 0 }));
    assert.equal(error.kind, 'not-found');
    assert.match(error.message, /channel 999999 not found \(404/);
    assert.match(error.message, /flespi-receiver channels/);
    assert.equal(error.details[0]?.id, 999999);
  });

  test("400: a bad filter quotes flespi's reason", async () => {
    const error = await flespiFailure(client.channelMessages(CHANNEL, { filter: 'position.speed >> 5' }));
    assert.equal(error.kind, 'bad-request');
    assert.equal(error.status, 400);
    assert.equal(error.details[0]?.code, 2);
    assert.match(error.message, /filter/);
  });

  test('429 with Retry-After, then 500, then success', async () => {
    sandbox.faults.inject('429', 1, { retryAfter: 3 });
    sandbox.faults.inject('500', 1);
    const limited = await flespiFailure(client.channels());
    assert.equal(limited.kind, 'rate-limited');
    assert.equal(limited.retryAfter, 3);
    assert.match(limited.message, /wait 3 s/);
    const server = await flespiFailure(client.channels());
    assert.equal(server.kind, 'server');
    assert.equal(server.status, 500);
    assert.ok(server.retryable);
    assert.ok((await client.channels()).items.length >= 2);
  });

  test('503 only where the fault matches the path', async () => {
    sandbox.faults.inject('503', 1, { match: '/messages' });
    assert.ok((await client.channels()).items.length >= 2);
    const error = await flespiFailure(client.channelMessages(CHANNEL, { count: 1 }));
    assert.equal(error.kind, 'server');
    assert.equal(error.status, 503);
  });

  test('malformed: a truncated body', async () => {
    sandbox.faults.inject('malformed', 1);
    const error = await flespiFailure(client.channels());
    assert.equal(error.kind, 'malformed');
    assert.match(error.message, /JSON envelope/);
  });

  test('network: a reset connection and a closed port', async () => {
    sandbox.faults.inject('reset', 1);
    const reset = await flespiFailure(client.channels());
    assert.equal(reset.kind, 'network');
    const port = await closedPort();
    const refused = await flespiFailure(new FlespiClient({ token: sandbox.token, baseUrl: `http://127.0.0.1:${port}` }).channels());
    assert.equal(refused.kind, 'network');
    assert.match(refused.message, /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.match(refused.message, /base URL/);
  });

  test('timeout: a hanging server and a short client timeout', async () => {
    sandbox.faults.inject('hang', 1);
    const impatient = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, timeoutMs: 300 });
    const error = await flespiFailure(impatient.channels());
    assert.equal(error.kind, 'timeout');
    assert.match(error.message, /no answer from .* within 0\.3 s/);
  });

  test('abort: a hanging request rejects with an AbortError, not a FlespiError', async () => {
    sandbox.faults.inject('hang', 1);
    const controller = new AbortController();
    const pending = client.channels('all', undefined, controller.signal);
    setTimeout(() => controller.abort(), 50);
    const isAbortError = (error: unknown) => error instanceof Error && error.name === 'AbortError';
    await assert.rejects(pending, (error: unknown) => isAbortError(error) && !(error instanceof FlespiError));
    await assert.rejects(client.authInfo(controller.signal), isAbortError);
  });

  test('client-side checks: poll timeout over 30 s and delete keys below 2', async () => {
    assert.equal((await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0, timeout: 31 }))).kind, 'bad-request');
    assert.equal((await flespiFailure(client.deleteChannelMessages(CHANNEL, 1))).kind, 'bad-request');
    assert.throws(() => new FlespiClient({ token: '' }), /no flespi token given/);
    assert.throws(() => new FlespiClient({ token: 'abc def' }), /spaces or control characters/);
    assert.throws(() => new FlespiClient({ token: 'abc', baseUrl: 'flespi.io' }), /"flespi\.io" is not an http\(s\) URL/);
  });
});

describe('channel messages, style A (buffer by key)', () => {
  test('keys start at 1, next_key is the last key + 1, delete removes keys below curr_key', async () => {
    const id = await freshChannel();
    sandbox.inject(
      id,
      [1, 2, 3, 4, 5].map((n) => ({ ident: `dev${n}`, n })),
    );
    const first = await client.pollChannelMessages(id, { currKey: 0, limitCount: 2 });
    assert.deepEqual(
      first.messages.map((m) => m.n),
      [1, 2],
    );
    assert.equal(first.nextKey, 3);
    const again = await client.pollChannelMessages(id, { currKey: 1, limitCount: 1 });
    assert.deepEqual(
      again.messages.map((m) => m.n),
      [1],
      'key 1 is the first message',
    );
    const second = await client.pollChannelMessages(id, { currKey: 3, delete: true });
    assert.deepEqual(
      second.messages.map((m) => m.n),
      [3, 4, 5],
    );
    assert.equal(second.nextKey, 6);
    const left = await client.pollChannelMessages(id, { currKey: 0 });
    assert.deepEqual(
      left.messages.map((m) => m.n),
      [3, 4, 5],
      'keys 1 and 2 were deleted',
    );
    await client.deleteChannelMessages(id, 5);
    const last = await client.pollChannelMessages(id, { currKey: 0 });
    assert.deepEqual(
      last.messages.map((m) => m.n),
      [5],
    );
    assert.equal(last.nextKey, 6);
  });

  test('limit_size is a soft cap: at least one message, the one crossing the limit included', async () => {
    const id = await freshChannel();
    sandbox.inject(
      id,
      [1, 2, 3].map((n) => ({ ident: 'sized', n, pad: 'x'.repeat(200) })),
    );
    const batch = await client.pollChannelMessages(id, { currKey: 0, limitSize: 10 });
    assert.deepEqual(
      batch.messages.map((m) => m.n),
      [1],
    );
    assert.equal(batch.nextKey, 2);
    const oneSize = Buffer.byteLength(JSON.stringify(batch.messages[0]));
    const two = await client.pollChannelMessages(id, { currKey: 0, limitSize: oneSize + 1 });
    assert.deepEqual(
      two.messages.map((m) => m.n),
      [1, 2],
    );
  });

  test('a long poll returns as soon as a message arrives', { timeout: 8000 }, async () => {
    const id = await freshChannel();
    const poll = client.pollChannelMessages(id, { currKey: 0, timeout: 10 });
    setTimeout(() => sandbox.inject(id, [{ ident: 'early', 'position.speed': 42 }]), 150);
    const result = await poll;
    assert.equal(result.messages.length, 1);
    assert.equal(result.messages[0]?.ident, 'early');
    assert.equal(result.messages[0]?.['position.speed'], 42);
    assert.equal(result.nextKey, 2);
  });

  test('stopping the sandbox ends a pending long poll with a network error', async () => {
    const own = await startSandbox({ simulate: false });
    const poll = new FlespiClient({ token: own.token, baseUrl: own.restUrl }).pollChannelMessages(1001, { currKey: 0, timeout: 30 });
    setTimeout(() => void own.stop(), 100);
    const error = await flespiFailure(poll);
    assert.equal(error.kind, 'network');
  });

  test('an idle channel answers empty after the timeout and keeps next_key at curr_key', async () => {
    const id = await freshChannel();
    sandbox.inject(id, [{ ident: 'a' }, { ident: 'b' }]);
    const result = await client.pollChannelMessages(id, { currKey: 3, timeout: 1 });
    assert.deepEqual(result.messages, []);
    assert.equal(result.nextKey, 3);
  });
});

describe('channel messages, style B (time range) and device messages', () => {
  test('from/to on server.timestamp, count, reverse and filter', async () => {
    const id = await freshChannel();
    sandbox.inject(
      id,
      [10, 20, 30, 40, 50].map((t) => ({ ident: 'timed', 'server.timestamp': 1_700_000_000 + t, timestamp: 1_700_000_000 + t - 1, 'position.speed': t })),
    );
    const speeds = (messages: Record<string, unknown>[]) => messages.map((m) => m['position.speed']);
    assert.deepEqual(speeds(await client.channelMessages(id, { from: 1_700_000_020, to: 1_700_000_040 })), [20, 30, 40]);
    assert.deepEqual(speeds(await client.channelMessages(id, { count: 2 })), [10, 20]);
    assert.deepEqual(speeds(await client.channelMessages(id, { reverse: true, count: 1 })), [50]);
    assert.deepEqual(speeds(await client.channelMessages(id, { filter: 'position.speed>25&&position.speed!=40' })), [30, 50]);
    assert.deepEqual(speeds(await client.channelMessages(id, { filter: '$missing==null && (position.speed<15 || position.speed>=50)' })), [10, 50]);
    const stamped = await client.channelMessages(id, { count: 1 });
    assert.equal(stamped[0]?.['channel.id'], id);
    assert.equal(stamped[0]?.['protocol.id'], 16);
  });

  test('device messages by device time, with fields skipping messages that have none of them', async () => {
    const devices = await client.devices('all', ['id', 'configuration', 'name']);
    const device = devices.items[0] as { id: number; name: string; configuration: { ident: string } };
    const base = 1_600_000_000;
    sandbox.inject(CHANNEL, [
      { ident: device.configuration.ident, timestamp: base + 3, 'position.speed': 30, 'can.fuel': 50 },
      { ident: device.configuration.ident, timestamp: base + 1, 'position.speed': 10 },
      { ident: device.configuration.ident, timestamp: base + 2, 'battery.voltage': 4 },
    ]);
    const window = { from: base, to: base + 10 };
    const all = await client.deviceMessages(device.id, window);
    assert.deepEqual(
      all.map((m) => m.timestamp),
      [base + 1, base + 2, base + 3],
      'ordered by device timestamp',
    );
    assert.equal(all[0]?.['device.id'], device.id);
    assert.equal(all[0]?.['device.name'], device.name);
    const withFields = await client.deviceMessages(device.id, { ...window, fields: ['position.*', 'timestamp'] });
    assert.deepEqual(withFields, [{ 'position.speed': 10, timestamp: base + 1 }, { timestamp: base + 2 }, { 'position.speed': 30, timestamp: base + 3 }]);
    const speedOnly = await client.deviceMessages(device.id, { ...window, fields: ['position.speed'], reverse: true });
    assert.deepEqual(speedOnly, [{ 'position.speed': 30 }, { 'position.speed': 10 }]);
    const filtered = await client.deviceMessages(device.id, { ...window, filter: 'can.fuel>=50' });
    assert.deepEqual(
      filtered.map((m) => m.timestamp),
      [base + 3],
    );
    const error = await flespiFailure(client.deviceMessages(987654, window));
    assert.equal(error.kind, 'not-found');
    assert.match(error.message, /device 987654 not found/);
  });
});

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
