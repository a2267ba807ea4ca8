// The small pure parts of src/core/flespi/subscription.ts at their edges: the message key's canonical
// form, flespi's clock as the gap fill reads it, the broker address for logs, the SUBACK refusal code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flespiNow, messageKey, safeHost, serverFilter, subackRefusal, connectOptions } from '../../src/core/flespi/subscription';

test('messageKey: keys whose value is undefined do not count; undefined and functions in arrays count as null, as in JSON', () => {
  assert.equal(messageKey({ ident: 'a', gone: undefined }), messageKey({ ident: 'a' }));
  assert.equal(messageKey({ ident: 'a', list: [undefined, () => 1] }), messageKey({ ident: 'a', list: [null, null] }));
  assert.notEqual(messageKey({ ident: 'a', v: null }), messageKey({ ident: 'a' }));
  assert.notEqual(messageKey({ ident: 'a', v: '1' }), messageKey({ ident: 'a', v: 1 }));
  assert.notEqual(messageKey({ ident: 'a', v: {} }), messageKey({ ident: 'a', v: [] }));
  assert.match(messageKey({ ident: 'a' }), /^[A-Za-z0-9+/]{43}=$/, 'a SHA-256 in base64');
});

test("flespiNow: the client's estimate when it has one and it is finite, else the local clock; never before the newest server.timestamp seen", () => {
  const ahead = Date.now() + 3_600_000;
  assert.equal(flespiNow({ channelMessages: async () => [], serverNow: () => ahead }), ahead);
  const local = flespiNow({ channelMessages: async () => [] });
  assert.ok(Math.abs(local - Date.now()) < 100);
  const broken = flespiNow({ channelMessages: async () => [], serverNow: () => Number.NaN });
  assert.ok(Math.abs(broken - Date.now()) < 100, 'a NaN estimate falls back to the local clock');
  const newest = Math.floor(Date.now() / 1000) + 86_400;
  assert.equal(flespiNow({ channelMessages: async () => [] }, newest), newest * 1000);
});

test('safeHost: a URL without a host (file:, mailto:) is named generically; serverFilter trims and drops blanks', () => {
  assert.equal(safeHost('file:///etc/secret'), 'the configured MQTT URL');
  assert.equal(safeHost('mailto:me@example.com'), 'the configured MQTT URL');
  assert.equal(safeHost('wss://h.example:443/mqtt'), 'h.example');
  assert.equal(serverFilter(undefined), undefined);
  assert.equal(serverFilter(' \t'), undefined);
  assert.equal(serverFilter(' a>1 '), 'a>1');
});

test('subackRefusal: the first code ≥ 0x80 of an attached SUBACK; nothing without a SUBACK packet', () => {
  assert.equal(subackRefusal({ packet: { cmd: 'suback', granted: [1, 0x87, 0x80] } }), 0x87);
  assert.equal(subackRefusal({ packet: { cmd: 'suback', granted: [0x80] } }), 0x80);
  assert.equal(subackRefusal({ packet: { cmd: 'suback', granted: [0, 1, 0x7f] } }), undefined);
  assert.equal(subackRefusal({ packet: { cmd: 'suback', granted: 'x' } }), undefined);
  assert.equal(subackRefusal({ packet: { cmd: 'connack', granted: [0x87] } }), undefined);
  assert.equal(subackRefusal({ code: 0x87 }), undefined);
  assert.equal(subackRefusal(undefined), undefined);
});

test('connectOptions: keepalive, connect timeout and session expiry as given; MQTT.js reconnects and resubscribes never', () => {
  const options = connectOptions({ token: 't', clientId: 'c', session: 'persistent', keepaliveSeconds: 15, connectTimeoutMs: 2500, sessionExpirySeconds: 0 });
  assert.deepEqual([options.keepalive, options.connectTimeout, options.reconnectPeriod, options.resubscribe], [15, 2500, 0, false]);
  assert.deepEqual(options.properties, { sessionExpiryInterval: 0 });
  const defaults = connectOptions({ token: 't', clientId: 'c', session: 'clean' });
  assert.deepEqual([defaults.keepalive, defaults.connectTimeout, defaults.protocolVersion], [60, 30_000, 5]);
  assert.deepEqual(connectOptions({ token: 't', clientId: 'c', session: 'clean', receiveMaximum: 10 }).properties, { receiveMaximum: 10 });
});
